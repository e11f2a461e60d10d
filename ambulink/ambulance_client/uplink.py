"""The tablet's uplink: monitor samples → frames → disk buffer → WebRTC data channel → hub.

Every frame goes to the disk buffer before it is sent and leaves it only when the hub acks it as
durable. A connection is one ``RTCPeerConnection`` (aiortc has no ICE restart); when it fails, or
the hub's heartbeats stop for ``hub_silence_s``, the client says "hub unreachable", waits a
jittered exponential backoff (capped at 5 s) and connects anew. On each connection it announces
the stream, learns from the hub's ack what is durable, and backfills everything after it from the
buffer while live frames keep priority.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

import httpx
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from ambulink.ambulance_client.backoff import Backoff
from ambulink.ambulance_client.buffer import FrameBuffer
from ambulink.ambulance_client.media import MediaChoice, open_tracks
from ambulink.ambulance_client.source import RecordReplay
from ambulink.ambulance_client.vitals import VitalsSimulator, vitals_message
from ambulink.errors import AmbulinkError, ProtocolError
from ambulink.protocol.ecg_frame import encode_ecg_frame, pack_ecg_frames
from ambulink.protocol.messages import (
    Ack,
    ErrorMessage,
    Heartbeat,
    Missing,
    StreamOpen,
    Telematics,
    Vitals,
    decode_message,
    encode_message,
)
from ambulink.rtc import add_sendonly

logger = logging.getLogger(__name__)

T = TypeVar("T")

HIGH_WATER_BYTES = 256 * 1024  # stop backfilling while this much waits in the channel
BACKFILL_BATCH = 50
MAX_RESEND = 5000  # frames resent for one `missing` message (200 s of 40 ms frames)


async def _uninterrupted(operation: Awaitable[T]) -> T:
    """Await ``operation`` to its end even if the caller is cancelled meanwhile (the
    cancellation is raised after it). ICE gathering and ``RTCPeerConnection.close`` cut short
    by a cancellation leave UDP sockets open (aioice closes only the sockets it has
    registered), and the tablet reconnects many times over a tunnel."""
    task = asyncio.ensure_future(operation)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise


class LinkDown(AmbulinkError):
    """The connection to the hub failed or went silent."""

    code = "link_down"


class LinkState(Enum):
    CONNECTING = "connecting"
    UP = "up"
    UNREACHABLE = "hub unreachable"


@dataclass(frozen=True)
class ClientSettings:
    hub_url: str  # e.g. http://127.0.0.1:8000
    unit_id: str
    buffer_dir: Path  # one buffer file per case, and case.json naming the current case
    case_id: str | None = None
    stream_id: int = 1
    vitals_every_s: float = 2.0
    heartbeat_interval_s: float = 1.0
    hub_silence_s: float = 3.0
    connect_timeout_s: float = 10.0
    # Live frames wait at most this long to share one data-channel message: 40 ms frames go
    # 3 to a message. Each message costs the hub's Python SCTP/DTLS about the same whatever its
    # size, so this sets the hub's ingest cost per ambulance; the wait (<= 80 ms) stays inside
    # the live p99 budget of 250 ms from sample to durable ack (docs/benchmarks.md).
    live_pacing_s: float = 0.12


@dataclass
class ClientStatus:
    """What the crew page shows: link state, frames waiting, what the hub holds."""

    link: LinkState = LinkState.CONNECTING
    connections: int = 0
    frames_made: int = 0
    frames_sent: int = 0
    backfilled: int = 0
    acked_seq: int = -1
    made_seq: int = -1  # the newest frame made; made_seq - acked_seq frames wait in the buffer
    last_error: str | None = None
    history: list[tuple[float, str]] = field(default_factory=list)

    def set_link(self, state: LinkState, now: float) -> None:
        if state is not self.link:
            self.link = state
            self.history.append((now, state.value))


class AmbulanceClient:
    """Streams one monitor source of one case to the hub, losing nothing."""

    def __init__(
        self,
        settings: ClientSettings,
        source: RecordReplay,
        token: Callable[[], str],
        *,
        vitals: VitalsSimulator | None = None,
        media: MediaChoice | None = None,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        http: httpx.AsyncClient | None = None,
        open_buffer: Callable[[Path], FrameBuffer] = FrameBuffer.open,
    ) -> None:
        self.settings = settings
        self.source = source
        self.token = token  # a fresh crew token for this unit (tokens live at most 10 min)
        self.vitals = vitals
        self.media = media or MediaChoice()
        self.backoff = backoff or Backoff()
        self.clock = clock
        self.status = ClientStatus()
        self.case_id = settings.case_id
        self.started_at = time.time()
        self._http = http
        self._open_buffer = open_buffer  # a seam for tests (e.g. a buffer that loses frames)
        self._disk = ThreadPoolExecutor(max_workers=1, thread_name_prefix="buffer")
        self._buffer: FrameBuffer | None = None
        self._live: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
        self._new_frames = asyncio.Event()
        self._channel: RTCDataChannel | None = None
        self._last_from_hub = 0.0
        self._acked = asyncio.Condition()
        self._trims: set[asyncio.Future[None]] = set()
        self._hub_ack = asyncio.Event()  # the hub answered this connection's stream_open
        self._link_changed = asyncio.Event()
        self.produced = asyncio.Event()  # set when a replay without loop has made its last frame
        self.link_cut = False  # a simulated dead zone: no connection while set (``cut_link``)
        self._uncut = asyncio.Event()
        self._session_closed: asyncio.Event | None = None
        self.log = logging.LoggerAdapter(logger, {"unit_id": settings.unit_id})

    async def _on_disk(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._disk, fn, *args)

    @property
    def buffer(self) -> FrameBuffer:
        if self._buffer is None:
            raise AmbulinkError("the client is not running")
        return self._buffer

    async def run(self, *, until: asyncio.Event | None = None) -> None:
        """Produce, buffer and send until ``until`` is set (or forever).

        After a crash the client resumes the case named in ``case.json`` from its buffer:
        unacknowledged frames are sent, and the replay continues after the last frame made.
        """
        own_http = self._http is None
        http = self._http or httpx.AsyncClient(base_url=self.settings.hub_url, timeout=10.0)
        try:
            await self._open_case(http)
            async with asyncio.TaskGroup() as tasks:
                producer = tasks.create_task(self._produce())
                connector = tasks.create_task(self._connect_forever(http))
                if until is not None:
                    await until.wait()
                    producer.cancel()
                    connector.cancel()
        finally:
            if own_http:
                await http.aclose()
            if self._buffer is not None:
                await self._on_disk(self._buffer.close)
            self._disk.shutdown(wait=True)

    async def _open_case(self, http: httpx.AsyncClient) -> None:
        folder = self.settings.buffer_dir
        folder.mkdir(parents=True, exist_ok=True)
        state_file = folder / "case.json"
        if self.case_id is None and state_file.exists():
            state = json.loads(state_file.read_text())
            self.case_id, self.started_at = str(state["case_id"]), float(state["started_at"])
            self.log.info("resuming case %s from the buffer", self.case_id)
        if self.case_id is None:
            self.case_id = await self._create_case(http)
            self.started_at = time.time()
        state_file.write_text(json.dumps({"case_id": self.case_id, "started_at": self.started_at}))
        self._buffer = await self._on_disk(self._open_buffer, folder / f"{self.case_id}.sqlite3")

    def _set_link(self, state: LinkState, now: float) -> None:
        self.status.set_link(state, now)
        self._link_changed.set()

    async def wait_link(self, state: LinkState, *, since: float = -math.inf) -> float:
        """The (monotonic) time the link was first ``state`` at or after ``since``; waits."""
        while True:
            times = [t for t, s in self.status.history if s == state.value and t >= since]
            if times:
                return times[0]
            self._link_changed.clear()
            await self._link_changed.wait()

    async def wait_acked(self, seq: int) -> None:
        """Return once the hub has acked every frame up to ``seq``."""
        async with self._acked:
            await self._acked.wait_for(lambda: self.status.acked_seq >= seq)

    # -- production -------------------------------------------------------------------------

    async def _produce(self) -> None:
        """One frame per source block, paced in real time (times speed), never drifting: frame
        ``k`` is made at ``t0 + (k - k0) * block_s / speed``; seq ``k`` is block ``k``. A
        replay without loop ends after its last block; the uplink keeps delivering the rest."""
        src = self.source
        stream = self.settings.stream_id
        k0 = k = await self._on_disk(self.buffer.next_seq, stream)
        t0 = self.clock()
        block_s = src.block_ms / 1000.0
        next_vitals = 0.0
        while src.n_blocks is None or k < src.n_blocks:  # a replay without loop ends
            delay = t0 + (k - k0) * block_s / src.speed - self.clock()
            if delay > 0:
                await asyncio.sleep(delay)
            frame = src.frame_at(k, stream)
            data = encode_ecg_frame(frame)
            await self._on_disk(self.buffer.put, stream, k, data)
            self._live.put_nowait((k, data))
            self.status.frames_made += 1
            self.status.made_seq = k
            self._new_frames.set()
            k += 1
            t_s = frame.first_sample / src.fs
            if self.vitals is not None and t_s >= next_vitals:
                next_vitals = t_s + self.settings.vitals_every_s
                self._send_json(self._vitals_message(t_s))
        self.produced.set()

    def _vitals_message(self, t_s: float) -> Vitals:
        assert self.vitals is not None and self.case_id is not None
        return vitals_message(self.vitals.sample(t_s), self.case_id, time.time())

    # -- connection -------------------------------------------------------------------------

    async def _create_case(self, http: httpx.AsyncClient) -> str:
        failures = 0
        while True:
            try:
                response = await http.post(
                    "/api/cases",
                    json={"unit_id": self.settings.unit_id},
                    headers={"Authorization": f"Bearer {self.token()}"},
                )
                response.raise_for_status()
                case_id: str = response.json()["case_id"]
                return case_id
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code in (401, 403):
                    raise AmbulinkError(
                        f"the hub refused to open a case: {exc.response.text}"
                    ) from exc
                failures += 1
            except httpx.TransportError:
                failures += 1
            self._set_link(LinkState.UNREACHABLE, self.clock())
            await asyncio.sleep(self.backoff.delay(failures))

    async def _connect_forever(self, http: httpx.AsyncClient) -> None:
        failures = 0
        while True:
            while self.link_cut:
                self._uncut.clear()
                await self._uncut.wait()
            self._set_link(LinkState.CONNECTING, self.clock())
            try:
                await self._session(http)
                failures = 0
            except (LinkDown, httpx.TransportError, httpx.HTTPStatusError, TimeoutError) as exc:
                failures += 1
                self.status.last_error = f"{type(exc).__name__}: {exc}"
                self.log.info("uplink down (%s); retry %d", type(exc).__name__, failures)
            self._set_link(LinkState.UNREACHABLE, self.clock())
            await asyncio.sleep(self.backoff.delay(failures))

    async def _session(self, http: httpx.AsyncClient) -> None:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        closed = self._session_closed = asyncio.Event()
        try:
            channel = pc.createDataChannel("telemetry", ordered=True)
            opened = asyncio.Event()
            channel.on("open", opened.set)
            channel.on("close", closed.set)
            channel.on("message", self._on_message)
            for track in open_tracks(self.media):
                add_sendonly(pc, track)

            @pc.on("connectionstatechange")
            def on_state() -> None:
                if pc.connectionState in ("failed", "closed"):
                    closed.set()

            await _uninterrupted(pc.setLocalDescription(await pc.createOffer()))
            response = await http.post(
                "/api/uplink/offer",
                json={"sdp": pc.localDescription.sdp, "type": pc.localDescription.type},
                headers={"Authorization": f"Bearer {self.token()}"},
            )
            response.raise_for_status()
            answer = response.json()
            await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
            async with asyncio.timeout(self.settings.connect_timeout_s):
                await opened.wait()
            self._channel = channel
            self._last_from_hub = self.clock()
            self.status.connections += 1
            self._hub_ack.clear()
            await self._announce()
            async with asyncio.timeout(self.settings.connect_timeout_s):
                await self._hub_ack.wait()  # now acked_seq says what the hub holds
            self._set_link(LinkState.UP, self.clock())
            async with asyncio.TaskGroup() as tasks:
                sender = tasks.create_task(self._send_frames(closed))
                beats = tasks.create_task(self._heartbeats(closed))
                await closed.wait()
                sender.cancel()
                beats.cancel()
            raise LinkDown("the data channel closed")
        finally:
            self._channel = None
            await _uninterrupted(pc.close())

    async def _announce(self) -> None:
        assert self.case_id is not None
        src = self.source
        self._send_json(
            StreamOpen(
                case_id=self.case_id,
                unit_id=self.settings.unit_id,
                stream_id=self.settings.stream_id,
                fs=src.fs,
                leads=list(src.leads),
                gain=src.gain,
                started_at=self.started_at,
            )
        )

    async def _send_frames(self, closed: asyncio.Event) -> None:
        """Live frames first; in between, backfill what the hub has not acked, oldest first."""
        stream = self.settings.stream_id
        live_from = await self._on_disk(self.buffer.next_seq, stream)
        while not self._live.empty():
            self._live.get_nowait()  # made before this connection: sent by backfill below
        backfill_after = self.status.acked_seq
        last_live = -math.inf
        while not closed.is_set():
            channel = self._channel
            if channel is None:
                return
            live_due = last_live + self.settings.live_pacing_s
            if not self._live.empty() and self.clock() >= live_due:
                live: list[bytes] = []
                while not self._live.empty():
                    seq, data = self._live.get_nowait()
                    if seq >= live_from:
                        live.append(data)
                for message in pack_ecg_frames(live):
                    channel.send(message)
                self.status.frames_sent += len(live)
                last_live = self.clock()
            backfill_after = max(backfill_after, self.status.acked_seq)
            if backfill_after + 1 < live_from and channel.bufferedAmount < HIGH_WATER_BYTES:
                rows = await self._on_disk(
                    self.buffer.pending, stream, backfill_after, BACKFILL_BATCH
                )
                rows = [(seq, data) for seq, data in rows if seq < live_from]
                for message in pack_ecg_frames([data for _, data in rows]):
                    channel.send(message)
                if rows:
                    self.status.backfilled += len(rows)
                    backfill_after = rows[-1][0]
                    await asyncio.sleep(0)  # let live frames and acks in
                    continue
            self._new_frames.clear()
            # Wake for the next frame, but send live frames at most every live_pacing_s:
            # what arrives meanwhile goes in one message (fewer transport messages per second).
            wait_s = 0.05 if self._live.empty() else max(live_due - self.clock(), 0.0)
            try:
                async with asyncio.timeout(wait_s):
                    await self._new_frames.wait()
            except TimeoutError:
                pass

    async def _heartbeats(self, closed: asyncio.Event) -> None:
        seq = 0
        while not closed.is_set():
            seq += 1
            self._send_json(Heartbeat(sent_at=time.time(), seq=seq))
            if self.clock() - self._last_from_hub > self.settings.hub_silence_s:
                self.log.warning(
                    "hub unreachable: no heartbeat for %.1f s", self.settings.hub_silence_s
                )
                closed.set()
                return
            await asyncio.sleep(self.settings.heartbeat_interval_s)

    def cut_link(self, cut: bool) -> None:
        """Simulate a radio dead zone: drop the connection and make no new one until uncut;
        frames keep going to the disk buffer and are backfilled afterwards."""
        self.link_cut = cut
        if cut and self._session_closed is not None:
            self._session_closed.set()
        if not cut:
            self._uncut.set()

    def send_telematics(self, kind: str, data: dict[str, Any]) -> bool:
        """A fleet report over the data channel (no MQTT broker); False while not connected."""
        channel = self._channel
        if channel is None or channel.readyState != "open" or self.link_cut:
            return False
        channel.send(encode_message(Telematics(kind=kind, data=data)))  # type: ignore[arg-type]
        return True

    def _send_json(self, message: StreamOpen | Vitals | Heartbeat) -> None:
        channel = self._channel
        if channel is not None and channel.readyState == "open":
            channel.send(encode_message(message))

    def _on_message(self, data: str | bytes) -> None:
        self._last_from_hub = self.clock()
        if isinstance(data, bytes):
            return
        try:
            message = decode_message(data)
        except ProtocolError as exc:
            self.log.warning("hub sent a message we cannot read: %s", exc)
            return
        match message:
            case Ack(stream_id=stream_id, seq=seq) if stream_id == self.settings.stream_id:
                self._hub_ack.set()
                if seq > self.status.acked_seq:
                    self.status.acked_seq = seq
                    task = asyncio.ensure_future(self._trim(stream_id, seq))
                    self._trims.add(task)
                    task.add_done_callback(self._trims.discard)
            case Missing(stream_id=stream_id, ranges=ranges) if (
                stream_id == self.settings.stream_id
            ):
                task = asyncio.ensure_future(self._resend(stream_id, ranges))
                self._trims.add(task)
                task.add_done_callback(self._trims.discard)
            case ErrorMessage(code=code, message=text):
                self.status.last_error = f"{code}: {text}"
                self.log.warning("hub error %s", code)
            case _:
                pass

    async def _resend(self, stream_id: int, ranges: list[tuple[int, int]]) -> None:
        """The hub lacks these seqs (a frame was damaged on the way): send them again."""
        wanted = [seq for a, b in ranges for seq in range(a, min(b, a + MAX_RESEND) + 1)]
        rows = await self._on_disk(self.buffer.get, stream_id, wanted[:MAX_RESEND])
        channel = self._channel
        if channel is None or channel.readyState != "open":
            return  # the next connection backfills them anyway
        for message in pack_ecg_frames([data for _, data in rows]):
            channel.send(message)
        self.status.backfilled += len(rows)

    async def _trim(self, stream_id: int, seq: int) -> None:
        await self._on_disk(self.buffer.ack, stream_id, seq)
        async with self._acked:
            self._acked.notify_all()
