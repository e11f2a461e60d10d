"""The consult page in real headless Chromium (Debian's, driven by Playwright) against a real hub.

The ECG renderer is checked on a real 12-lead record (PTB s0010_re); the room tests run a full
consult: the simulated ambulance (the real client with a camera test pattern and a tone), three
Chromium pages and four aiortc participants, eight parties in all.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import websockets
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from websockets.asyncio.client import ClientConnection

from ambulink.ambulance_client import media
from ambulink.ambulance_client.media import MediaChoice
from ambulink.ambulance_client.source import RecordReplay
from ambulink.ambulance_client.uplink import AmbulanceClient, ClientSettings
from ambulink.ambulance_client.vitals import VitalsSimulator
from ambulink.data import record_path
from ambulink.hub.alarms import AlarmLedger
from ambulink.hub.alarms.model import AlarmKind, alarm_to_json
from ambulink.rooms.encoded import tap_receiver
from ambulink.rooms.timeline import Entry
from tests.e2e.conftest import RunningHub, poll_until, running_hub, within
from tests.web.browser import chromium, needs_chromium

pytestmark = needs_chromium

PX_PER_MM = 4  # EcgView's default: 25 mm/s → 100 px/s, 10 mm/mV → 40 px/mV
ROW_PX = 30 * PX_PER_MM


def waveform_messages(source: RecordReplay, blocks: range) -> list[dict[str, Any]]:
    """``waveform`` messages as the hub sends them (one 40 ms frame each), from a real record."""
    out = []
    for k in blocks:
        block = source.block_at(k)
        chunk = {
            "first_sample": block.first_sample,
            "lead_off": 0,
            "samples": block.samples.T.tolist(),
        }
        stream = {"stream_id": 1, "fs": source.fs, "gain": source.gain, "chunks": [chunk]}
        out.append({"type": "waveform", "streams": [stream]})
    return out


DRAW = """async ([stream, live, late, lead]) => {
  const { EcgView } = await import("/web/consult/ecg.js");
  const dark = (d, i) => d[i] < 90 && d[i + 1] < 90 && d[i + 2] < 90;
  const blue = (d, i) => d[i] < 60 && d[i + 1] > 60 && d[i + 1] < 120 && d[i + 2] > 160;
  const measure = (canvas, x0, x1, y0, y1, test) => {
    const d = canvas.getContext("2d").getImageData(x0, y0, x1 - x0, y1 - y0).data;
    let n = 0, top = null, bottom = null;
    for (let y = 0; y < y1 - y0; y++) for (let x = 0; x < x1 - x0; x++) {
      if (!test(d, 4 * (y * (x1 - x0) + x))) continue;
      n++; if (top === null) top = y; bottom = y;
    }
    return { n, top, bottom };
  };
  let t = 0;
  const canvas = document.createElement("canvas");
  document.body.append(canvas);
  const view = new EcgView(canvas, { now: () => t });
  view.setStream(stream);
  const twelve = { layout: view.layout, width: canvas.width, height: canvas.height };
  for (const m of live) view.addWaveform(m);
  view.draw();
  const cells = [];
  for (let row = 0; row < 4; row++) for (let col = 0; col < 4; col++) {
    if (row === 3 && col) continue;
    const x1 = row === 3 ? canvas.width : (col + 1) * canvas.width / 4;
    const x0 = col * canvas.width / 4 + 2;
    cells.push(measure(canvas, x0, x1 - 2, row * 120, (row + 1) * 120, dark).n);
  }
  view.selectLeads([lead]);
  view.draw();
  const ink = measure(canvas, 200, canvas.width, 0, canvas.height, dark);
  const strip = { width: canvas.width, height: canvas.height, ink };
  t = 1500;
  const age = view.dataAgeS(), backfillingBefore = view.backfilling();
  for (const m of late) view.addWaveform(m);
  view.draw();
  const late_ink = measure(canvas, 0, canvas.width, 0, canvas.height, blue).n;
  return { twelve, cells, strip, age, backfillingBefore, backfilling: view.backfilling(),
           behindS: view.backfill.behindS, blue: late_ink };
}"""


async def draw_scenario(data_dir: Path) -> tuple[dict[str, Any], RecordReplay, range]:
    source = RecordReplay(record_path("ptbdb/s0010_re"), block_ms=40.0)
    # 12 s of live frames with a 1 s hole (an outage) 4 s before the end, filled late.
    hole = range(200, 225)
    live = [m for k, m in enumerate(waveform_messages(source, range(300))) if k not in hole]
    late = waveform_messages(source, hole)
    stream = {"stream_id": 1, "fs": source.fs, "gain": source.gain, "leads": source.leads}
    async with running_hub(data_dir / "hub") as hub, chromium() as browser:
        page = await browser.new_page()
        await page.goto(f"{hub.url}/healthz")  # any page of the hub's origin can import modules
        result = await page.evaluate(DRAW, [stream, live, late, source.leads.index("ii")])
    return result, source, range(300)


@needs_chromium
def test_the_ecg_view_draws_a_real_12_lead_at_25_mm_s_and_10_mm_mv(tmp_path: Path) -> None:
    result, source, blocks = asyncio.run(draw_scenario(tmp_path))
    # The standard page: 10 s wide at 25 mm/s, 3 rows of 4 leads and a rhythm strip.
    assert result["twelve"] == {"layout": "12-lead", "width": 1000, "height": 4 * ROW_PX}
    assert min(result["cells"]) > 100, f"a 12-lead cell without a trace: {result['cells']}"
    # One selected lead: a 10 s strip whose trace spans exactly the lead's range at 10 mm/mV.
    assert (result["strip"]["width"], result["strip"]["height"]) == (1000, ROW_PX)
    samples = np.concatenate([source.block_at(k).samples for k in blocks])
    lead_ii = samples[-10 * source.fs :, source.leads.index("ii")].astype(np.float32)
    drawn = lead_ii[2 * source.fs :] / np.float32(source.gain)  # x from 200 px = 2 s in
    expected_px = float(drawn.max() - drawn.min()) * 10 * PX_PER_MM
    ink = result["strip"]["ink"]
    assert abs((ink["bottom"] - ink["top"]) - expected_px) <= 3, (ink, expected_px)
    # Data age: seconds since the live edge last moved; late frames do not move it.
    assert result["age"] == 1.5
    assert not result["backfillingBefore"]
    # The last late frame (block 224) was 76 frames of 40 ms behind the live edge.
    assert result["backfilling"] and result["behindS"] == pytest.approx((300 - 224) * 0.04)
    assert result["blue"] > 50, "backfilled samples are not drawn in their own colour"


LABELS = """async () => {
  const { EcgView } = await import("/web/consult/ecg.js");
  const { MediaRoom } = await import("/web/consult/video.js");
  const view = new EcgView(document.createElement("canvas"));
  view.setStream({ fs: 250, gain: 200, leads: ["ECG", "ECG"] });  // VFDB's two channels
  const vfdb = view.stream.leads;
  view.setStream({ fs: 360, gain: 200, leads: ["MLII", "V5"] });
  const mitdb = view.stream.leads;
  const grid = document.createElement("div");
  document.body.append(grid);
  const room = new MediaRoom(grid, { caseId: "c", selfId: "specialist:me", canPublish: false });
  room.setPresence([
    { member_id: "crew:tablet-amb-2", role: "crew", connected: true, video: false, audio: true },
    { member_id: "specialist:me", role: "specialist", connected: true, video: true, audio: true },
  ]);
  const overlay = (id) => getComputedStyle(
    grid.querySelector(`[data-member-id="${id}"]`), "::before").content;
  return { vfdb, mitdb, crew: overlay("crew:tablet-amb-2"), me: overlay("specialist:me") };
}"""


async def labels_scenario(data_dir: Path) -> dict[str, Any]:
    async with running_hub(data_dir / "hub") as hub, chromium() as browser:
        page = await browser.new_page()
        await page.goto(f"{hub.url}/consult")  # the page's stylesheet, before sign-in
        result: dict[str, Any] = await page.evaluate(LABELS)
        return result


@needs_chromium
def test_repeated_lead_names_are_numbered_and_a_party_without_video_says_so(
    tmp_path: Path,
) -> None:
    seen = asyncio.run(labels_scenario(tmp_path))
    assert seen["vfdb"] == ["ECG 1", "ECG 2"]
    assert seen["mitdb"] == ["MLII", "V5"]
    assert seen["crew"] == '"camera off"'
    assert seen["me"] == "none"


def vf_alarm_states() -> list[dict[str, Any]]:
    """A VF alarm's states as the hub's ledger makes them: raised, repeated (a redelivery with
    the same counter), audio paused, acknowledged."""
    ledger = AlarmLedger()
    (raised,) = ledger.raise_alarm("case-1", AlarmKind.VF, now=10.0, onset_at=time.time() - 2)
    alarm_id = raised.alarm.alarm_id
    (paused,) = ledger.pause_audio(alarm_id, "specialist:a", 120, role="specialist", now=11.0)
    (acked,) = ledger.acknowledge(alarm_id, "crew:b", "crew", now=12.0)
    states = [raised.alarm, raised.alarm, paused.alarm, acked.alarm]
    return [alarm_to_json(a) for a in states]


BANNER = """async (states) => {
  const { AlarmBanner } = await import("/web/consult/alarms.js");
  const element = document.createElement("div");
  element.id = "alarms";
  document.body.append(element);
  const sent = [];
  const banner = new AlarmBanner(element, (m) => sent.push(m));
  const seen = [];
  for (const alarm of states) {
    const fresh = banner.handle(alarm);
    const bar = element.querySelector(".banner");
    seen.push({ fresh, shown: bar ? bar.className : null, sounding: banner.shouldSound(),
                paused: !!element.querySelector(".paused"),
                colour: bar ? getComputedStyle(bar).backgroundColor : null });
  }
  banner.close();
  return { seen, sent };
}"""


async def banner_scenario(data_dir: Path, states: list[dict[str, Any]]) -> dict[str, Any]:
    async with running_hub(data_dir / "hub") as hub, chromium() as browser:
        page = await browser.new_page()
        await page.goto(f"{hub.url}/consult")  # the page's stylesheet colours the banner
        result: dict[str, Any] = await page.evaluate(BANNER, states)
    return result


@needs_chromium
def test_the_alarm_banner_follows_the_ledger(tmp_path: Path) -> None:
    states = vf_alarm_states()
    result = asyncio.run(banner_scenario(tmp_path, states))
    raised, repeat, paused, acked = result["seen"]
    assert raised["fresh"] and raised["shown"] == "banner high" and raised["sounding"]
    assert raised["colour"] in ("rgb(200, 16, 46)", "rgb(122, 10, 28)")  # red, flashing
    assert repeat["fresh"] is False  # same (id, counter): no second banner, no second receipt
    assert paused["fresh"] and paused["paused"] and not paused["sounding"]
    assert acked["fresh"] and acked["shown"] is None and not acked["sounding"]
    alarm_id = states[0]["alarm_id"]
    assert result["sent"] == [{"type": "receipt", "alarm_id": alarm_id}] * 3


# --- the consult room: eight parties, a ninth refused, an observer that cannot act -------------

UNIT = "amb-5"
PASSWORD = "consult-test-password"
AMBULANCE = f"crew:tablet-{UNIT}"
# Bounds on waits. They are liveness bounds, not speed targets (those are loadtest/'s): with
# four Chromium pages, four aiortc peers, the hub and the ambulance on 2 cores, both saturated,
# a page took up to 55 s to decode the ambulance's video (each page encodes its camera and
# decodes everyone else's), so the bounds are generous; a working room returns long before.
ROOM_WAIT_S = 120.0  # aiortc members: a message or media to arrive
PAGE_LIVE_MS = 120_000  # a page: joined, connected, decoding the ambulance's media
REACT_MS = 20_000  # a page: showing what another member just did


class Participant:
    """A room member in aiortc: the member socket (websockets) and one peer connection with
    8 video and 8 audio receive-only transceivers, counting the frames each slot delivers.

    Frames are counted as the complete encoded frames each receiver reassembles (the tap the
    hub itself forwards with), not decoded: four members decoding every browser's camera and
    microphone as well as the ambulance's starved a 2-core machine's one Python process, in
    which the hub and the ambulance also run. The browsers show that the frames decode."""

    def __init__(self, base_url: str, case_id: str, token: str) -> None:
        self.base_url = base_url
        self.case_id = case_id
        self.token = token
        self.messages: list[dict[str, Any]] = []
        self.slots: list[dict[str, Any]] = []
        self.frames: dict[str, int] = {}  # by transceiver mid
        self.joined: dict[str, Any] | None = None
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self.pc: RTCPeerConnection | None = None
        self.socket: ClientConnection | None = None
        self.offer_reply: tuple[int, Any] | None = None

    async def join(self, *, publish: bool = False) -> None:
        url = self.base_url.replace("http://", "ws://") + f"/ws/rooms/{self.case_id}"
        self.socket = await websockets.connect(url, origin=self.base_url)  # type: ignore[arg-type]
        await self.socket.send(json.dumps({"type": "auth", "token": self.token}))
        self._spawn(self._read())
        self.joined = await self.wait_for(lambda m: m["type"] in ("joined", "error"), "joined")
        if self.joined["type"] == "error":
            return
        pc = self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        for kind in ("video", "audio"):
            for i in range(8):
                if i == 0 and publish:
                    track = media.TestPatternTrack() if kind == "video" else media.ToneTrack()
                    pc.addTransceiver(track, direction="sendrecv")
                else:
                    pc.addTransceiver(kind, direction="recvonly")
        # After the transceivers (under max-bundle the first m-line owns the transport).
        channel = pc.createDataChannel("room-media")

        @channel.on("message")
        def on_slots(text: str) -> None:
            message = json.loads(text)
            if message.get("type") == "slots":
                self.slots = message["slots"]
                self._changed.set()

        await pc.setLocalDescription(await pc.createOffer())
        async with httpx.AsyncClient(base_url=self.base_url, timeout=20.0) as http:
            reply = await http.post(
                f"/api/rooms/{self.case_id}/media/offer",
                json={"sdp": pc.localDescription.sdp, "type": "offer"},
                headers={"Authorization": f"Bearer {self.token}"},
            )
        self.offer_reply = (reply.status_code, reply.json())
        if reply.status_code == 200:
            await pc.setRemoteDescription(RTCSessionDescription(**reply.json()))
            for transceiver in pc.getTransceivers():  # before media flows (the tap's contract)
                if transceiver.kind in ("audio", "video") and transceiver.mid is not None:
                    mid = str(transceiver.mid)
                    tap_receiver(transceiver.receiver, lambda _frame, mid=mid: self._count(mid))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read(self) -> None:
        assert self.socket is not None
        try:
            async for text in self.socket:
                self.messages.append(json.loads(text))
                self._changed.set()
        except websockets.ConnectionClosed:
            pass

    def _count(self, mid: str) -> None:
        self.frames[mid] = self.frames.get(mid, 0) + 1
        self._changed.set()

    def frames_from(self, member_id: str, kind: str) -> int:
        mids = [
            str(s["mid"]) for s in self.slots if s["member_id"] == member_id and s["kind"] == kind
        ]
        return sum(self.frames.get(mid, 0) for mid in mids)

    async def wait_for(self, match: Any, what: str, timeout_s: float = ROOM_WAIT_S) -> Any:
        """The first message (already received or coming) that ``match``es."""

        async def wait() -> Any:
            seen = 0
            while True:
                for message in self.messages[seen:]:
                    if match(message):
                        return message
                seen = len(self.messages)
                self._changed.clear()
                await self._changed.wait()

        return await within(timeout_s, what, wait())

    async def wait_until(self, condition: Any, what: str, timeout_s: float = ROOM_WAIT_S) -> None:
        async def wait() -> None:
            while not condition():
                self._changed.clear()
                await self._changed.wait()

        await within(timeout_s, what, wait())

    async def close(self) -> None:
        if self.pc is not None:
            await self.pc.close()
        if self.socket is not None:
            await self.socket.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def consult_url(base: str, case_id: str, token: str) -> str:
    return f"{base}/consult?case={case_id}#token={token}"


INBOUND = "([id]) => window.consult.media ? window.consult.media.inbound(id) : null"
MEDIA_FLOWING = """async ([id, base]) => {
  const tile = document.querySelector(`.party[data-member-id="${id}"] video`);
  if (!tile || tile.videoWidth === 0 || !window.consult.media) return false;
  const s = await window.consult.media.inbound(id);
  return s.video.framesDecoded >= base.video.framesDecoded + 10
    && s.audio.bytes > base.audio.bytes + 2000;
}"""
CANVAS_SUM = """() => {
  const c = document.getElementById('ecg');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let h = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i] < 90 && d[i + 1] < 90) h = (h * 31 + i) | 0;
  return h;
}"""
WATCH_ACK = """(banner) => {
  window.bannerGoneAt = null;
  new MutationObserver(() => {
    if (!document.querySelector(banner) && window.bannerGoneAt === null) {
      window.bannerGoneAt = Date.now();
    }
  }).observe(document.getElementById("alarms"), { childList: true, subtree: true });
  document.addEventListener("click", (event) => {
    if (event.target.matches(`${banner} button.ack`)) window.ackClickedAt = Date.now();
  }, true);
}"""
STALL_S = 10.0  # a page whose newest sample is older than this has stalled
WATCH_AGE = """() => {
  window.maxDataAgeS = 0;
  setInterval(() => { const a = window.consult.ecg.dataAgeS();
    if (a !== null) window.maxDataAgeS = Math.max(window.maxDataAgeS, a); }, 100);
}"""


def ambulance(hub: RunningHub, data_dir: Path, *, with_media: bool) -> AmbulanceClient:
    """The simulated ambulance: the real client replaying an acute MI 12-lead (PTB s0010_re)."""
    return AmbulanceClient(
        ClientSettings(hub_url=hub.url, unit_id=UNIT, buffer_dir=data_dir / "tablet"),
        RecordReplay(record_path("ptbdb/s0010_re"), block_ms=40.0),
        hub.crew_token(UNIT),
        vitals=VitalsSimulator(None, seed=7),
        media=MediaChoice(camera="test", mic="tone") if with_media else None,
    )


async def open_case(hub: RunningHub, client: AmbulanceClient) -> str:
    await poll_until(lambda: client.case_id is not None, 10, "the ambulance opening a case")
    case_id = client.case_id
    assert case_id is not None
    return case_id


async def page_joins(page: Any, url: str) -> None:
    await page.goto(url)
    await page.wait_for_selector("#status:has-text('live')", timeout=PAGE_LIVE_MS)


async def ninth_refused(page: Any, url: str) -> str:
    await page.goto(url)
    await page.wait_for_selector("#room-error:has-text('full')", timeout=PAGE_LIVE_MS)
    text: str = await page.inner_text("#room-error")
    return text


async def media_flows(page: Any) -> None:
    """The ambulance's video decodes (more frames, a picture size) and its audio arrives."""
    base = await page.evaluate(INBOUND, [AMBULANCE])
    await page.wait_for_function(
        MEDIA_FLOWING, arg=[AMBULANCE, base], polling=250, timeout=PAGE_LIVE_MS
    )


async def page_is_live(page: Any) -> None:
    """The page decodes the ambulance's video, receives its audio and draws its waveform."""
    await page.wait_for_function("() => window.consult.ecg.edge > 0", timeout=PAGE_LIVE_MS)
    await page.evaluate(WATCH_AGE)
    await page.wait_for_function(
        "() => window.consult.media?.pc?.connectionState === 'connected'", timeout=PAGE_LIVE_MS
    )
    await media_flows(page)
    before = await page.evaluate(CANVAS_SUM)
    await page.wait_for_function(
        f"() => ({CANVAS_SUM})() !== {before}", polling=100, timeout=REACT_MS
    )
    await page.wait_for_selector("#vitals .tile[data-vital='hr']", timeout=PAGE_LIVE_MS)


async def full_room_scenario(data_dir: Path, screenshot: Path) -> dict[str, Any]:
    t0 = time.monotonic()
    marks: dict[str, float] = {}

    def mark(what: str) -> None:
        marks[what] = round(time.monotonic() - t0, 1)

    async with running_hub(data_dir / "hub") as hub:
        client = ambulance(hub, data_dir, with_media=True)
        stop = asyncio.Event()
        running = asyncio.create_task(client.run(until=stop))
        participants: list[Participant] = []
        try:
            case_id = await open_case(hub, client)
            rooms = hub.hub.rooms.rooms
            await poll_until(
                lambda: case_id in rooms and AMBULANCE in rooms[case_id].members,
                10,
                "the ambulance publishing into its room",
            )
            mark("ambulance in room")
            mint = hub.issuer.mint
            tokens = [
                mint("cardiologist", "specialist"),
                mint("emergency-physician", "specialist"),
                mint(f"medic-{UNIT}", "crew", unit=UNIT),
            ]
            participants = [
                Participant(hub.url, case_id, mint(f"aiortc-{i}", "specialist")) for i in range(4)
            ]
            async with chromium() as browser:
                pages = [
                    await browser.new_page(viewport={"width": 1400, "height": 950}) for _ in tokens
                ]
                await asyncio.gather(
                    *(
                        page_joins(p, consult_url(hub.url, case_id, t))
                        for p, t in zip(pages, tokens, strict=True)
                    ),
                    *(p.join() for p in participants),
                )
                assert all(p.offer_reply and p.offer_reply[0] == 200 for p in participants)
                mark("eight joined")
                # Eight parties: the room refuses a ninth with a clear message; meanwhile every
                # member gets the ambulance's video, audio and waveform.
                ninth = await browser.new_page()
                late = consult_url(hub.url, case_id, mint("late-consultant", "specialist"))
                refusal, *_ = await asyncio.gather(
                    ninth_refused(ninth, late),
                    *(page_is_live(p) for p in pages),
                    *(
                        p.wait_until(
                            lambda p=p: (
                                p.frames_from(AMBULANCE, "video") >= 10
                                and p.frames_from(AMBULANCE, "audio") >= 25
                            ),
                            "an aiortc member receiving the ambulance's video and audio",
                        )
                        for p in participants
                    ),
                )
                assert len(rooms[case_id].members) == 8
                mark("live everywhere")
                # An acute MI: the STEMI alarm reaches every page, with its 12-lead evidence.
                stemi = "#alarms .banner[data-kind='stemi']"
                await asyncio.gather(*(p.wait_for_selector(stemi, timeout=45_000) for p in pages))
                await pages[0].wait_for_function(
                    "() => document.getElementById('evidence-image').naturalWidth > 0",
                    timeout=15_000,
                )
                reasons = await pages[0].eval_on_selector_all(
                    "#evidence-reasons li", "items => items.map((li) => li.textContent)"
                )
                mark("stemi everywhere")
                # Decisions and advice go on the timeline of every member, the crew included.
                crew = pages[2]
                assert await crew.is_disabled("button[data-action='confirm_stemi']")
                await pages[0].click("button[data-action='confirm_stemi']")
                await pages[0].fill("#action-text", "Aspirin 300 mg; straight to the cath lab")
                await pages[0].click("button[data-action='advice']")
                decided = "#timeline li[data-decision='confirm_stemi']"
                await asyncio.gather(
                    *(p.wait_for_selector(decided, timeout=REACT_MS) for p in pages)
                )
                await crew.wait_for_selector("#timeline li.advice:has-text('Aspirin 300 mg')")
                await participants[0].wait_for(
                    lambda m: m["type"] == "timeline_entry" and m["entry"]["kind"] == "advice",
                    "the advice at an aiortc member",
                )
                await pages[0].screenshot(path=str(screenshot), full_page=True)

                mark("actions everywhere")
                # The banner is coloured by priority; an audio pause shows in every page.
                colour = await pages[2].eval_on_selector(
                    stemi, "b => [b.className, getComputedStyle(b).backgroundColor]"
                )
                await pages[0].click(f"{stemi} button.pause")
                paused = f"{stemi} .paused"
                await asyncio.gather(
                    *(p.wait_for_selector(paused, timeout=REACT_MS) for p in pages)
                )
                # One acknowledgement clears the banner everywhere.
                await asyncio.gather(*(p.evaluate(WATCH_ACK, stemi) for p in pages))
                await pages[1].click(f"{stemi} button.ack")
                await asyncio.gather(
                    *(p.wait_for_selector(stemi, state="detached", timeout=REACT_MS) for p in pages)
                )
                clicked_at = await pages[1].evaluate("() => window.ackClickedAt")
                gone_at = [await p.evaluate("() => window.bannerGoneAt") for p in pages]
                await participants[0].wait_for(
                    lambda m: (
                        m["type"] == "alarm"
                        and m["alarm"]["kind"] == "stemi"
                        and bool(m["alarm"]["acks"])
                    ),
                    "the acknowledged STEMI at an aiortc member",
                )
                mark("ack everywhere")
                # The microphone toggle reaches the others' presence.
                await pages[1].click("#mute")
                await participants[0].wait_for(
                    lambda m: (
                        m["type"] == "presence"
                        and any(
                            x["member_id"] == "specialist:emergency-physician"
                            and x["audio"] is False
                            for x in m["members"]
                        )
                    ),
                    "a muted member in presence",
                )
                mark("mute seen")
                # ... and the ambulance's video and audio still flow on every page.
                await asyncio.gather(*(media_flows(p) for p in pages))
                mark("media still flowing")
                max_ages = [await page.evaluate("() => window.maxDataAgeS") for page in pages]
                frames = [p.frames_from(AMBULANCE, "video") for p in participants]
            return {
                "refusal": refusal,
                "banner": colour,
                "max_data_age_s": max_ages,
                "ack_to_gone_ms": [t - clicked_at for t in gone_at],
                "aiortc_video_frames": frames,
                "marks": marks,
                "evidence_reasons": reasons,
            }
        finally:
            await asyncio.gather(*(p.close() for p in participants))
            stop.set()
            await asyncio.wait_for(running, 15)


@needs_chromium
def test_a_full_room_of_eight_sees_hears_and_acts_together(tmp_path: Path) -> None:
    started = time.monotonic()
    screenshot = tmp_path / "consult.png"
    outcome = asyncio.run(full_room_scenario(tmp_path, screenshot))
    print(f"full room: {outcome}, {time.monotonic() - started:.1f} s")
    assert "full" in outcome["refusal"] and "8" in outcome["refusal"]
    assert outcome["banner"] == ["banner medium", "rgb(255, 204, 51)"]
    # the evidence says why, in the analysis' words (s0010_re: the posterior equivalent)
    assert any("ST depression" in r for r in outcome["evidence_reasons"]), outcome
    # the waveform never stalls on a page (how fresh it is on a quiet machine is measured, not
    # asserted: three Chromium pages and seven peers share two cores here)
    assert max(outcome["max_data_age_s"]) < STALL_S, outcome["max_data_age_s"]
    assert min(outcome["aiortc_video_frames"]) >= 10
    assert screenshot.stat().st_size > 50_000
    keep = os.environ.get("AMBULINK_SCREENSHOT_DIR")  # e.g. docs/images, to refresh the README's
    if keep:
        shutil.copy(screenshot, Path(keep) / "consult.png")


async def entries(hub: RunningHub, case_id: str) -> list[Entry]:
    """The case's timeline as the hub holds it."""
    service = hub.hub.room_service
    assert service is not None
    return await service.timeline.entries(case_id)


async def observer_scenario(data_dir: Path) -> dict[str, Any]:
    async with running_hub(data_dir / "hub", demo_password=PASSWORD) as hub:
        client = ambulance(hub, data_dir, with_media=False)
        stop = asyncio.Event()
        running = asyncio.create_task(client.run(until=stop))
        spy: Participant | None = None
        try:
            case_id = await open_case(hub, client)
            async with chromium() as browser:
                # Signed out, without ?case: the demo login, then the list of open cases.
                page = await browser.new_page()
                await page.goto(f"{hub.url}/consult")
                await page.fill("#password", "wrong")
                await page.select_option("#login-role", "dispatch")
                await page.fill("#login-name", "dispatcher")
                await page.click("text=Sign in")
                await page.wait_for_selector("#login-error:has-text('wrong demo password')")
                await page.fill("#password", PASSWORD)
                await page.click("text=Sign in")
                await page.click(f"#case-list a[href*='{case_id}']")
                await page.wait_for_selector("#status:has-text('live')", timeout=PAGE_LIVE_MS)
                you = await page.inner_text("#you")
                disabled = [
                    await page.is_disabled(f"button[data-action='{a}']")
                    for a in ("confirm_stemi", "activate_cath_lab", "advice", "note")
                ]
                # A forged action over the observer's own socket is refused by the hub.
                await page.evaluate(
                    """() => window.consult.state.socket.send(JSON.stringify(
                         {type: "action", action: "activate_cath_lab", text: "forged"}))"""
                )
                await page.wait_for_selector("#notice:has-text('Refused')", timeout=REACT_MS)
                notice = await page.inner_text("#notice")
                decisions = await page.locator("#timeline li[data-kind='decision']").count()
                # Leaving frees the seat at once (no reconnect grace).
                members = hub.hub.rooms.rooms[case_id].members
                seated = "dispatch:demo-dispatch-dispatcher" in members
                await page.click("#leave")
                await poll_until(
                    lambda: "dispatch:demo-dispatch-dispatcher" not in members, 10, "the seat freed"
                )
            # An observer offering a camera is refused: it may not publish.
            spy = Participant(hub.url, case_id, hub.issuer.mint("dispatcher-2", "dispatch"))
            await spy.join(publish=True)
            return {
                "you": you,
                "disabled": disabled,
                "notice": notice,
                "decisions": decisions,
                "seated": seated,
                "offer": spy.offer_reply,
                "hub_decisions": [e for e in await entries(hub, case_id) if e.kind == "decision"],
            }
        finally:
            if spy is not None:
                await spy.close()
            stop.set()
            await asyncio.wait_for(running, 15)


@needs_chromium
def test_an_observer_cannot_act_or_publish(tmp_path: Path) -> None:
    outcome = asyncio.run(observer_scenario(tmp_path))
    assert outcome["you"] == "dispatch:demo-dispatch-dispatcher (observer)"
    assert outcome["disabled"] == [True, True, True, True]
    assert "may not" in outcome["notice"]
    assert outcome["decisions"] == 0 and outcome["hub_decisions"] == []
    assert outcome["seated"]
    status, body = outcome["offer"]
    assert status == 403 and body["error"]["code"] == "forbidden"
