// The room's audio and video: one RTCPeerConnection to the hub's forwarding unit (docs/rooms.md).
//
// The offer carries 8 video and 8 audio transceivers and the `room-media` data channel. The first
// of each kind sends this member's camera and microphone (sendrecv) when it may publish, else all
// are receive-only; the hub fills the receiving ones with the other parties' tracks and says over
// the data channel which mid carries whom (`slots`). One tile per party (from `presence`) shows its
// member id and role, its video, and plays its audio.

import { api } from "/web/js/session.js";

export const SLOTS_PER_KIND = 8;
const GATHER_TIMEOUT_MS = 5000;
const CAMERA = { width: { ideal: 320 }, height: { ideal: 240 }, frameRate: { ideal: 15 } };

export class MediaRoom {
  /**
   * @param {HTMLElement} grid  the tiles go here
   * @param {{caseId: string, selfId: string, canPublish: boolean, onStatus?: (text: string) => void,
   *          onKick?: ((memberId: string) => void) | null}} options  onKick: a "remove" button per party
   */
  constructor(grid, { caseId, selfId, canPublish, onStatus = () => {}, onKick = null }) {
    this.grid = grid;
    this.caseId = caseId;
    this.selfId = selfId;
    this.canPublish = canPublish;
    this.onStatus = onStatus;
    this.onKick = onKick;
    this.pc = null;
    this.local = null;                 // this member's MediaStream (camera + microphone)
    this.slots = [];                   // [{mid, kind, member_id, role}]
    this.members = [];                 // presence
    this.tiles = new Map();            // member_id -> {tile, video, label, state}
    this.closed = false;
  }

  /** Open the camera and microphone (when allowed), offer, and apply the hub's answer. */
  async start() {
    if (this.canPublish && !this.local) {
      try {
        this.local = await navigator.mediaDevices.getUserMedia({ video: CAMERA, audio: true });
      } catch (error) {
        this.onStatus(`no camera or microphone (${error.name}); receiving only`);
      }
    }
    const pc = new RTCPeerConnection({ iceServers: [] });
    this.pc = pc;
    for (const kind of ["video", "audio"]) {
      const own = this.local?.getTracks().find((t) => t.kind === kind);
      for (let i = 0; i < SLOTS_PER_KIND; i++) {
        const transceiver = i === 0 && own
          ? pc.addTransceiver(own, { direction: "sendrecv", streams: [this.local] })
          : pc.addTransceiver(kind, { direction: "recvonly" });
        if (kind === "video") preferVp8(transceiver);
      }
    }
    const channel = pc.createDataChannel("room-media");
    channel.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "slots") { this.slots = message.slots; this.render(); }
    };
    pc.onconnectionstatechange = () => {
      this.onStatus(`media ${pc.connectionState}`);
      if (pc.connectionState === "failed" && !this.closed && this.pc === pc) this._restart();
    };
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const answer = await api(`/api/rooms/${encodeURIComponent(this.caseId)}/media/offer`, {
      method: "POST", body: { sdp: pc.localDescription.sdp, type: "offer" },
    });
    await pc.setRemoteDescription(answer);
    this.render();
  }

  async _restart() {
    this.pc?.close();
    try { await this.start(); } catch (error) { this.onStatus(`media: ${error.message}`); }
  }

  /** Camera on/off (the track keeps its slot; others get black frames). */
  setCamera(on) { for (const t of this.local?.getVideoTracks() ?? []) t.enabled = on; return this.state(); }
  /** Microphone on/off. */
  setMicrophone(on) { for (const t of this.local?.getAudioTracks() ?? []) t.enabled = on; return this.state(); }
  /** What this member sends, for the `media_state` message. */
  state() {
    const on = (tracks) => tracks.some((t) => t.enabled && t.readyState === "live");
    return { video: on(this.local?.getVideoTracks() ?? []), audio: on(this.local?.getAudioTracks() ?? []) };
  }

  setPresence(members) { this.members = members; this.render(); }

  /** Tiles for every party in presence (and any slot's member), each with its tracks. */
  render() {
    const ids = new Set(this.members.map((m) => m.member_id));
    for (const s of this.slots) ids.add(s.member_id);
    ids.add(this.selfId);
    for (const [id, entry] of this.tiles) if (!ids.has(id)) { entry.tile.remove(); this.tiles.delete(id); }
    for (const id of ids) {
      const member = this.members.find((m) => m.member_id === id);
      const slotRole = this.slots.find((s) => s.member_id === id)?.role;
      const entry = this.tiles.get(id) ?? this._tile(id);
      const role = member?.role ?? slotRole ?? "";
      entry.label.textContent = `${id === this.selfId ? "you — " : ""}${id} (${role})`;
      entry.tile.dataset.role = role;
      entry.tile.classList.toggle("disconnected", member ? !member.connected : false);
      const state = [];
      entry.tile.classList.toggle("no-video", Boolean(member && !member.video));
      if (member && !member.video) state.push("camera off");
      if (member && !member.audio) state.push("muted");
      entry.state.textContent = state.join(", ");
      this._attach(id, entry);
    }
  }

  _tile(id) {
    const tile = document.createElement("figure");
    tile.className = "party";
    tile.dataset.memberId = id;
    const video = document.createElement("video");
    video.autoplay = true; video.playsInline = true;
    video.muted = id === this.selfId;       // never play one's own microphone back
    const caption = document.createElement("figcaption");
    const label = document.createElement("span");
    const state = document.createElement("small");
    caption.append(label, " ", state);
    tile.append(video, caption);
    if (this.onKick && id !== this.selfId) {
      const kick = document.createElement("button");
      kick.type = "button"; kick.className = "kick"; kick.textContent = "remove";
      kick.title = `remove ${id} from the room`;
      kick.onclick = () => { if (confirm(`Remove ${id} from this consult?`)) this.onKick(id); };
      tile.append(kick);
    }
    if (id === this.selfId) this.grid.prepend(tile); else this.grid.append(tile);
    const entry = { tile, video, label, state, tracks: "" };
    this.tiles.set(id, entry);
    return entry;
  }

  _attach(id, entry) {
    let tracks = [];
    if (id === this.selfId) tracks = this.local?.getVideoTracks() ?? [];
    else if (this.pc) {
      for (const slot of this.slots.filter((s) => s.member_id === id)) {
        const transceiver = this.pc.getTransceivers().find((t) => t.mid === String(slot.mid));
        if (transceiver) tracks.push(transceiver.receiver.track);
      }
    }
    const key = tracks.map((t) => t.id).join(",");
    if (key === entry.tracks) return;
    entry.tracks = key;
    entry.video.srcObject = tracks.length ? new MediaStream(tracks) : null;
    if (!tracks.length) return;
    entry.video.play().catch(() => {
      // Autoplay with sound needs a click on the page first: play muted until then.
      entry.video.muted = true;
      entry.video.play().catch(() => {});
      document.addEventListener("click", () => { entry.video.muted = id === this.selfId; entry.video.play().catch(() => {}); }, { once: true });
    });
  }

  /** Inbound RTP statistics of `memberId`'s slots: {video: {framesDecoded, bytes}, audio: {bytes}}. */
  async inbound(memberId) {
    const mids = new Map(this.slots.filter((s) => s.member_id === memberId).map((s) => [String(s.mid), s.kind]));
    const out = { video: { framesDecoded: 0, bytes: 0 }, audio: { bytes: 0 } };
    if (!this.pc) return out;
    for (const report of (await this.pc.getStats()).values()) {
      if (report.type !== "inbound-rtp" || !mids.has(String(report.mid))) continue;
      if (report.kind === "video") { out.video.framesDecoded += report.framesDecoded ?? 0; out.video.bytes += report.bytesReceived ?? 0; }
      else out.audio.bytes += report.bytesReceived ?? 0;
    }
    return out;
  }

  close() {
    this.closed = true;
    this.pc?.close();
    for (const track of this.local?.getTracks() ?? []) track.stop();
  }
}

function preferVp8(transceiver) {
  const codecs = RTCRtpReceiver.getCapabilities?.("video")?.codecs;
  if (!codecs || !transceiver.setCodecPreferences) return;
  const vp8 = codecs.filter((c) => c.mimeType === "video/VP8");
  const rtx = codecs.filter((c) => c.mimeType === "video/rtx");
  if (vp8.length) transceiver.setCodecPreferences([...vp8, ...rtx]);
}

/** The hub answers offers without trickle ICE: wait until every candidate is in the SDP. */
function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (pc.iceGatheringState === "complete") { pc.removeEventListener("icegatheringstatechange", done); resolve(); } };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, GATHER_TIMEOUT_MS);   // send what we have rather than hang
  });
}
