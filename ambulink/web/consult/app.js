// The consult page: /consult?case=<case_id> (without ?case: pick from the open cases).
//
// Sign-in: the token from the link's fragment (#token=...) or the demo login form. Then the
// member socket /ws/rooms/{case_id} (docs/rooms.md) feeds the alarm banner, the ECG, vitals, the
// timeline and presence; actions, acks and media state go back on it. Audio and video travel on
// one peer connection to the hub (video.js). `window.consult` exposes the parts for tests.

import { api, claims, clearToken, currentToken, demoLogin, openSocket } from "/web/js/session.js";
import { Actions } from "./actions.js";
import { AlarmBanner } from "./alarms.js";
import { alarmName, analysisNotice } from "/web/js/alarm_text.js";
import { EcgView, twelveLeadIndices } from "./ecg.js";
import { Timeline } from "./timeline.js";
import { MediaRoom } from "./video.js";
import { renderVitals } from "./vitals.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const caseId = params.get("case");
const asObserver = params.get("as") === "observer";
const STALE_AGE_S = 3;
const RECONNECT_MS = 2000;

const state = {
  socket: null, you: null, joined: false, refused: false, ended: false,
  media: null, evidenceFor: null, evidenceUrl: null,
};
const ecg = new EcgView($("ecg"));
const send = (message) => {
  if (state.socket?.readyState === WebSocket.OPEN) state.socket.send(JSON.stringify(message));
};
const banner = new AlarmBanner($("alarms"), send, {
  onEvidence: (alarm) => showEvidence(alarm),
  canAck: () => state.you?.permissions.includes("ack") ?? false,
});
const timeline = new Timeline($("timeline"), $("eta"));
const actions = new Actions($("actions"), send);
window.consult = { ecg, banner, timeline, actions, state };

function status(text) { $("status").textContent = text; }
function notice(text) { $("notice").textContent = text; $("notice").hidden = !text; }
function refuse(text) { $("room-error").textContent = text; $("room-error").hidden = false; }

async function main() {
  const token = currentToken();
  const expired = !token || (claims(token)?.exp ?? 0) * 1000 < Date.now();
  if (expired) return showLogin();
  const who = claims(token);
  $("you").textContent = `${who.role}: ${who.sub}`;
  if (!caseId) return listCases();
  await openRoom(caseId);
}

function showLogin() {
  clearToken();
  $("login").hidden = false;
  status("signed out");
  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const role = $("login-role").value;
      await demoLogin($("password").value, { role, unit: $("login-unit").value.trim() || null, name: $("login-name").value });
      location.reload();   // the token is in sessionStorage now: start clean with it
    } catch (error) { $("login-error").textContent = error.message; }
  });
}

async function listCases() {
  status("signed in");
  const cases = await api("/api/cases");
  $("cases").hidden = false;
  $("case-list").replaceChildren(...cases.map((c) => {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = `/consult?case=${encodeURIComponent(c.case_id)}`;
    link.textContent = `${c.unit_id} — case ${c.case_id.slice(0, 8)} (since ${new Date(c.created_at * 1000).toLocaleTimeString()})`;
    item.append(link);
    return item;
  }));
  if (!cases.length) $("case-list").textContent = "No open cases.";
}

async function openRoom(id) {
  $("room").hidden = false;
  $("case-label").textContent = `case ${id.slice(0, 8)}`;
  status("joining…");
  loadStream(id);
  connect(id);
  setInterval(showDataAge, 250);
}

async function loadStream(id) {
  try {
    const streams = await api(`/api/cases/${encodeURIComponent(id)}/streams`);
    if (streams.length) { ecg.setStream(streams[0]); leadPicker(); }
    return streams.length > 0;
  } catch (error) { notice(`streams: ${error.message}`); return false; }
}

function connect(id) {
  state.socket = openSocket(`/ws/rooms/${encodeURIComponent(id)}`, (m) => handle(id, m), {
    extra: asObserver ? { as: "observer" } : {},
    onClose: () => {
      if (state.refused || state.ended) return;
      if (!state.joined) { refuse("The hub closed the room connection before the join completed."); return; }
      status("reconnecting…");
      setTimeout(() => connect(id), RECONNECT_MS);   // the seat is kept for 30 s
    },
  });
}

function handle(id, message) {
  switch (message.type) {
    case "joined": return joined(id, message);
    case "presence": state.media?.setPresence(message.members); return presence(message.members);
    case "timeline": return timeline.setAll(message.entries);
    case "timeline_entry": return timeline.add(message.entry);
    case "alarm": return banner.handle(message.alarm);
    case "vitals": return renderVitals($("vitals"), message.data);
    case "waveform":
      if (!ecg.stream || ecg.stream.leads[0] === "lead 1") loadStreamOnce(id);
      return ecg.addWaveform(message);
    case "waveform_skipped":
      ecg.noteSkipped(message.frames);
      $("skipped").hidden = false;
      $("skipped").textContent = `${message.frames} frames skipped (slow link)`;
      return;
    case "event": return analysisEvent(message.data);
    case "kicked":
      state.ended = true;
      state.media?.close();
      refuse(`You were removed from this room by ${message.by}.`);
      status("removed");
      return;
    case "error":
      if (message.code === "invalid_token") {
        state.refused = true;
        refuse(`Your sign-in is not valid any more (${message.message}); sign in again.`);
        $("room").hidden = true;
        state.media?.close();
        showLogin();
        return;
      }
      if (!state.joined) {
        state.refused = true;
        refuse(`Cannot join this room: ${message.message} (${message.code})`);
        status("refused");
        $("room").hidden = true;
      } else notice(`Refused: ${message.message}`);
      return;
    default: return;
  }
}

let streamAsked = false;
function loadStreamOnce(id) {
  if (streamAsked) return;
  streamAsked = true;
  loadStream(id).then((found) => { if (!found) streamAsked = false; });
}

function joined(id, message) {
  const first = !state.joined;
  state.joined = true;
  state.you = message.you;
  notice("");
  status("live");
  $("leave").hidden = false;
  $("you").textContent = `${message.you.member_id} (${message.you.role})`;
  actions.setPermissions(message.you.permissions);
  banner.render();
  if (!first) return;
  const canPublish = message.you.permissions.includes("publish");
  state.media = new MediaRoom($("videos"), {
    caseId: id, selfId: message.you.member_id, canPublish, onStatus: (t) => { $("media-status").textContent = t; },
    onKick: message.you.permissions.includes("kick") ? (memberId) => send({ type: "kick", member_id: memberId }) : null,
  });
  state.media.start().then(() => {
    if (!canPublish || !state.media.local) return;
    $("mute").disabled = $("camera").disabled = false;
    send({ type: "media_state", ...state.media.state() });
  }).catch((error) => { $("media-status").textContent = `media: ${error.message}`; });
  window.consult.media = state.media;
}

$("leave").addEventListener("click", () => {
  state.ended = true;              // no reconnect after this
  send({ type: "leave" });
  state.media?.close();
  status("left the room");
  $("room").hidden = true;
  $("leave").hidden = true;
}, { once: true });

$("mute").addEventListener("click", () => toggle("mute", (on) => state.media.setMicrophone(on), "Mute", "Unmute"));
$("camera").addEventListener("click", () => toggle("camera", (on) => state.media.setCamera(on), "Camera off", "Camera on"));
function toggle(id, apply, offText, onText) {
  const pressed = $(id).getAttribute("aria-pressed") !== "true";   // pressed = muted / camera off
  $(id).setAttribute("aria-pressed", String(pressed));
  $(id).textContent = pressed ? onText : offText;
  send({ type: "media_state", ...apply(!pressed) });
}

function presence(members) {
  const connected = members.filter((m) => m.connected).length;
  $("case-label").textContent = `case ${caseId.slice(0, 8)} · ${connected}/${members.length} present`;
}

function analysisEvent(event) {
  const text = analysisNotice(event);
  if (text) notice(text);
}

function showDataAge() {
  const age = ecg.dataAgeS();
  const el = $("data-age");
  el.textContent = age === null ? "no data yet" : `data age ${age.toFixed(1)} s`;
  el.classList.toggle("stale", age !== null && age > STALE_AGE_S);
  el.dataset.ageS = age === null ? "" : age.toFixed(2);
  const backfilling = ecg.backfilling();
  $("backfill").hidden = !backfilling;
  if (backfilling) $("backfill").textContent = `backfilling ${ecg.backfill.behindS.toFixed(0)} s behind (blue)`;
}

function leadPicker() {
  const leads = ecg.stream.leads;
  const legend = $("leads").querySelector("legend");
  const twelve = twelveLeadIndices(leads) ? checkbox("lead-12", "12-lead", ecg.layout === "12-lead") : null;
  const boxes = leads.map((name, i) => checkbox(`lead-${i}`, name, ecg.layout === "strips" && ecg.selected.includes(i)));
  twelve?.input.addEventListener("change", () => {
    for (const b of boxes) b.input.checked = false;
    if (twelve.input.checked) ecg.selectLeads([], "12-lead");
    else { boxes[0].input.checked = true; ecg.selectLeads([0]); }
  });
  for (const b of boxes) {
    b.input.addEventListener("change", () => {
      const chosen = boxes.filter((x) => x.input.checked).map((x) => boxes.indexOf(x));
      if (chosen.length) { if (twelve) twelve.input.checked = false; ecg.selectLeads(chosen); }
      else if (twelve) { twelve.input.checked = true; ecg.selectLeads([], "12-lead"); }
      else b.input.checked = true;          // keep at least one lead on screen
    });
  }
  $("leads").replaceChildren(legend, ...[twelve, ...boxes].filter(Boolean).map((b) => b.label));
}

function checkbox(id, text, checked) {
  const label = document.createElement("label");
  const input = Object.assign(document.createElement("input"), { type: "checkbox", id, checked });
  label.append(input, ` ${text}`);
  return { label, input };
}

async function showEvidence(alarm) {
  const e = alarm.evidence;
  const key = `${alarm.alarm_id}:${e.start}:${e.end}`;
  if (state.evidenceFor === key || e.start === undefined) return;
  state.evidenceFor = key;
  try {
    const query = new URLSearchParams({ start: String(e.start), end: String(e.end) });
    const response = await fetch(`/api/cases/${encodeURIComponent(alarm.case_id)}/streams/${e.stream_id}/evidence.png?${query}`, {
      headers: { Authorization: `Bearer ${currentToken()}` },
    });
    if (!response.ok) throw new Error(`evidence image: HTTP ${response.status}`);
    if (state.evidenceUrl) URL.revokeObjectURL(state.evidenceUrl);
    state.evidenceUrl = URL.createObjectURL(await response.blob());
    $("evidence-image").src = state.evidenceUrl;
    const where = Array.isArray(e.territories) && e.territories.length ? ` — ${e.territories.join(", ")}` : "";
    $("evidence-caption").textContent = `${alarmName(alarm.kind)}${where}`;
    // Why the analysis raised it, in its own words (STEMI: criteria met, reciprocal change, ...).
    // Then its notes: leads it could not judge, electrodes to check.
    const reasons = Array.isArray(e.reasons) ? e.reasons : [];
    const notes = Array.isArray(e.notes) ? e.notes : [];
    $("evidence-reasons").replaceChildren(
      ...reasons.map((text) => Object.assign(document.createElement("li"), { textContent: text })),
      ...notes.map((text) => Object.assign(document.createElement("li"), { textContent: text, className: "note" })),
    );
    $("evidence").hidden = false;
  } catch (error) {
    state.evidenceFor = null;
    notice(error.message);
  }
}

main().catch((error) => { refuse(error.message); });
