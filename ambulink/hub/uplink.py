"""One ambulance's WebRTC uplink at the hub: the ``telemetry`` data channel, acks, heartbeats.

The tablet opens a peer connection per (re)connection (aiortc has no ICE restart), with a
reliable ordered data channel ``telemetry``: binary messages are ECG frames, text messages are
JSON (``stream_open``, ``vitals``, ``heartbeat``, ``resume``). The hub answers each stored batch
with an ``ack`` per stream (highest contiguous durable seq), sends a heartbeat every second and
announces NO SIGNAL when three are missed. Malformed input gets an ``error`` message and is
counted; it never ends the session.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCSessionDescription,
)

from ambulink.errors import ProtocolError
from ambulink.hub.ingest import Ingest
from ambulink.hub.store import StoreRejected, StreamConflict, UnknownStream
from ambulink.hub.tokens import Forbidden, Grant
from ambulink.protocol.ecg_frame import EcgFrame, decode_ecg_frame, split_ecg_frames
from ambulink.protocol.messages import (
    Ack,
    ErrorMessage,
    Heartbeat,
    Message,
    Missing,
    Resume,
    StreamOpen,
    Telematics,
    Vitals,
    decode_message,
    encode_message,
)
from ambulink.rooms.encoded import tap_receiver
from ambulink.rooms.forwarding import PublishedTrack
from ambulink.rooms.media_room import MediaMember, MediaRouter
from ambulink.rooms.model import Room, RoomError, RoomRegistry

logger = logging.getLogger(__name__)

MAX_BATCH = 500
ACK_EVERY_S = 0.1
REREQUEST_TICKS = 20  # look for a damaged frame's gap for 2 s of ack ticks
CLOSE_TIMEOUT_S = 5.0
MAX_RANGES = 1024
FLOOD_LIMIT = 200  # malformed messages ...
FLOOD_WINDOW_S = 10.0  # ... in this long end the connection


@dataclass(frozen=True)
class NoSignal:
    """No heartbeat for ``silent_s`` seconds (monotonic), more than the allowed misses."""

    silent_s: float


@dataclass
class HeartbeatWatch:
    """NO SIGNAL once ``allowed_misses`` heartbeat intervals pass without one (monotonic s)."""

    last_seen_s: float
    interval_s: float = 1.0
    allowed_misses: int = 3

    def seen(self, now: float) -> None:
        self.last_seen_s = now

    def check(self, now: float) -> NoSignal | None:
        silent_s = now - self.last_seen_s
        return NoSignal(silent_s) if silent_s > self.interval_s * self.allowed_misses else None


@dataclass
class UplinkCounters:
    frames: int = 0
    bad_frames: int = 0
    bad_messages: int = 0
    acks: int = 0


@dataclass(eq=False)
class UplinkSession:
    """The hub side of one peer connection from one ambulance (unit)."""

    grant: Grant
    ingest: Ingest
    heartbeat_interval_s: float = 1.0
    heartbeat_misses: int = 3
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep  # paces the heartbeats
    counters: UplinkCounters = field(default_factory=UplinkCounters)
    media: MediaRouter | None = None  # with ``rooms``: camera and mic go to the case's room
    rooms: RoomRegistry | None = None
    # FleetService.apply: a telematics report on the data channel (no MQTT broker)
    telematics: Callable[[str, str, dict[str, Any]], Awaitable[bool]] | None = None

    def __post_init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.case_id: str | None = None
        self.channel: RTCDataChannel | None = None
        self.closed = asyncio.Event()
        self.published: dict[str, PublishedTrack] = {}  # camera and mic, tapped (not decoded)
        self.media_frames: dict[str, int] = {}  # encoded frames received, by kind
        self.member_id = f"{self.grant.role}:{self.grant.sub}"  # as a room member
        self.room: Room | None = None
        self._media_member: MediaMember | None = None
        self._frames: asyncio.Queue[EcgFrame] = asyncio.Queue()
        self._streams: dict[int, StreamOpen] = {}  # opened on this connection
        self._durable: dict[int, int] = {}  # stream -> highest contiguous durable seq
        self._acked: dict[int, int] = {}  # stream -> last seq acked to the tablet
        self._highest_seen: dict[int, int] = {}
        self._ack_due = asyncio.Event()
        self._rerequest_ticks = 0  # ack ticks left to look for the gap a damaged frame left
        self._bad_inputs: deque[float] = deque()
        self._watch = HeartbeatWatch(self.clock(), self.heartbeat_interval_s, self.heartbeat_misses)
        self._no_signal = False
        self._heartbeat_seq = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.log = logging.LoggerAdapter(logger, {"unit_id": self.grant.unit})

        @self.pc.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            if channel.label != "telemetry":
                self.log.warning("ignoring data channel %r", channel.label)
                return
            self.channel = channel
            channel.on("message", self._on_message)

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            # Taken as encoded frames (never decoded here) and forwarded into the case's room.
            self.log.info("uplink %s track received", track.kind)
            receiver = next(r for r in self.pc.getReceivers() if r.track is track)
            published = PublishedTrack(self.member_id, track.kind)
            published.listeners.append(lambda _: self._count_frame(track.kind))
            tap = tap_receiver(receiver, published.on_frame)
            published.send_keyframe_request = tap.request_keyframe
            self.published[track.kind] = published
            if self.room is not None and self.media is not None:
                self.media.room(self.room.case_id).publish(self.member_id, published)

        @self.pc.on("connectionstatechange")
        async def on_state() -> None:
            self.log.info("uplink connection %s", self.pc.connectionState)
            if self.pc.connectionState in ("failed", "closed"):
                await self.close()

    def _count_frame(self, kind: str) -> None:
        self.media_frames[kind] = self.media_frames.get(kind, 0) + 1

    def _join_room(self, case_id: str) -> None:
        """Publish the camera and mic into the case's room as the crew member (once the
        session knows its case); a full room refuses the media, never the ECG."""
        if self.media is None or self.rooms is None or self.grant.unit is None:
            return
        room = self.rooms.room(case_id, self.grant.unit)
        try:
            room.join(self.member_id, "crew", time.time())
        except RoomError as exc:
            self.log.warning("uplink media not in the room: %s", exc.code)
            return
        self.room = room
        room.set_media(
            self.member_id, video="video" in self.published, audio="audio" in self.published
        )
        media_room = self.media.room(case_id)
        if self.member_id in media_room.members:  # a previous connection of this uplink
            media_room.detach(self.member_id)
        self._media_member = MediaMember(self.member_id, "crew")
        media_room.add(self._media_member)
        for published in self.published.values():
            media_room.publish(self.member_id, published)
        self.rooms.changed(room)

    def _leave_room(self) -> None:
        """Session end: the media stops; the seat is kept for a reconnect (grace period)."""
        room, self.room = self.room, None
        if room is None or self.media is None or self.rooms is None:
            return
        media_room = self.media.rooms.get(room.case_id)
        mine = self._media_member
        if media_room is not None and mine is not None:
            if media_room.members.get(self.member_id) is mine:  # not a newer connection's
                media_room.detach(self.member_id)
            if not media_room.members:
                self.media.rooms.pop(room.case_id, None)
        room.disconnect(self.member_id, time.time())
        self.rooms.changed(room)

    async def answer(self, sdp: str, kind: str) -> RTCSessionDescription:
        """Take the tablet's offer; return the hub's answer (ICE candidates included)."""
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return self.pc.localDescription

    async def run(self) -> None:
        """Store frames and keep heartbeats until the connection closes.

        A failure inside (e.g. the store is unavailable) propagates, after closing the
        connection: the tablet keeps its unacknowledged frames and reconnects.
        """
        try:
            async with asyncio.TaskGroup() as tasks:
                workers = [
                    tasks.create_task(self._write_frames()),
                    tasks.create_task(self._send_acks()),
                    tasks.create_task(self._heartbeats()),
                ]
                await self.closed.wait()
                for worker in workers:
                    worker.cancel()
        finally:
            await self.close()

    async def close(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            self._leave_room()
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await self.pc.close()
            except TimeoutError:
                self.log.warning("peer connection did not close within %.0f s", CLOSE_TIMEOUT_S)

    # -- incoming -------------------------------------------------------------------------

    def _on_message(self, data: str | bytes) -> None:
        if isinstance(data, bytes):
            # One or more frames back to back (the tablet packs what is waiting).
            try:
                parts = split_ecg_frames(data)
            except ProtocolError as exc:
                self._bad_frame(str(exc))
                return
            for part in parts:
                if not self._on_frame(part):
                    return  # the rest is not trusted either; the hub re-requests what it lacks
            return
        try:
            message = decode_message(data)
        except ProtocolError as exc:
            self.counters.bad_messages += 1
            self._refuse(exc.code, str(exc))
            return
        task = asyncio.ensure_future(self._handle(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_frame(self, data: bytes) -> bool:
        """Check one frame and queue it for the store; False when it was refused."""
        try:
            frame = decode_ecg_frame(data)
        except ProtocolError as exc:
            self._bad_frame(str(exc))
            return False
        opened = self._streams.get(frame.stream_id)
        if opened is None:
            self._send_error(
                "no_stream", f"send stream_open for stream {frame.stream_id} before its frames"
            )
            return False
        if (frame.n_leads, frame.fs) != (len(opened.leads), opened.fs):
            self.counters.bad_frames += 1
            self._refuse(
                "bad_frame",
                f"stream {frame.stream_id} seq {frame.seq}: {frame.n_leads} leads at "
                f"{frame.fs} Hz, but the stream was opened with {len(opened.leads)} leads "
                f"at {opened.fs} Hz",
            )
            return False
        self.counters.frames += 1
        self._frames.put_nowait(frame)
        return True

    def _bad_frame(self, text: str) -> None:
        """A frame that cannot be read: counted, refused, and what follows it re-requested."""
        self.counters.bad_frames += 1
        self._rerequest_ticks = REREQUEST_TICKS
        self._ack_due.set()
        self._refuse("bad_frame", text)

    async def _handle(self, message: Message) -> None:
        self._watch.seen(self.clock())
        try:
            match message:
                case Heartbeat():
                    return
                case StreamOpen():
                    self._check_case(message.case_id, message.unit_id)
                    contiguous = await self.ingest.open_stream(message)
                    self._streams[message.stream_id] = message
                    self._send(
                        Ack(case_id=message.case_id, stream_id=message.stream_id, seq=contiguous)
                    )
                case Resume():
                    # The tablet resends every unacked frame after the ack; the store ignores
                    # what it already holds.
                    self._check_case(message.case_id, None)
                    contiguous = await self.ingest.contiguous_seq(
                        message.case_id, message.stream_id
                    )
                    self._send(
                        Ack(case_id=message.case_id, stream_id=message.stream_id, seq=contiguous)
                    )
                case Vitals():
                    self._check_case(message.case_id, None)
                    await self.ingest.store_vitals(message)
                case Telematics() if self.telematics is not None and self.grant.unit:
                    await self.telematics(self.grant.unit, message.kind, message.data)
                case _:
                    self._send_error(
                        "unexpected", f"the hub does not take {message.type} on an uplink"
                    )
        except Forbidden as exc:
            self._send_error(exc.code, str(exc))

    def _check_case(self, case_id: str, unit_id: str | None) -> None:
        if unit_id is not None:
            self.grant.require("crew", unit=unit_id)
        if self.case_id is None:
            self.case_id = case_id
            self._join_room(case_id)
        elif self.case_id != case_id:
            raise Forbidden(f"this uplink carries case {self.case_id}, not {case_id}")

    # -- outgoing -------------------------------------------------------------------------

    def _send(self, message: Message) -> None:
        channel = self.channel
        if channel is not None and channel.readyState == "open":
            channel.send(encode_message(message))

    def _refuse(self, code: str, text: str) -> None:
        """Answer malformed input with an error; a flood of it ends the connection (the tablet
        reconnects and resends from its buffer, other uplinks are not affected)."""
        now = self.clock()
        self._bad_inputs.append(now)
        while self._bad_inputs and self._bad_inputs[0] < now - FLOOD_WINDOW_S:
            self._bad_inputs.popleft()
        if len(self._bad_inputs) > FLOOD_LIMIT:
            self._send_error(
                "flood",
                f"more than {FLOOD_LIMIT} malformed messages in {FLOOD_WINDOW_S:g} s; closing",
            )
            task = asyncio.ensure_future(self.close())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        self._send_error(code, text)

    def _send_error(self, code: str, text: str) -> None:
        self.log.info("uplink input refused: %s", code)
        self._send(ErrorMessage(code=code, message=text))

    async def _write_frames(self) -> None:
        while True:
            batch = [await self._frames.get()]
            while not self._frames.empty() and len(batch) < MAX_BATCH:
                batch.append(self._frames.get_nowait())
            assert self.case_id is not None
            try:
                acks = await self.ingest.store_frames(self.case_id, batch)
            except (StoreRejected, UnknownStream, StreamConflict) as exc:
                # Checked on arrival already; if the store still refuses, say so and go on:
                # the tablet keeps the frames and resends what stays unacknowledged.
                self._send_error(exc.code, str(exc))
                continue
            for frame in batch:
                seen = self._highest_seen.get(frame.stream_id, -1)
                self._highest_seen[frame.stream_id] = max(seen, frame.seq)
            self._durable.update(acks)
            self._ack_due.set()

    async def _send_acks(self) -> None:
        """Ack what became durable at most every ``ACK_EVERY_S``, not every stored batch: at
        one 40 ms frame per batch, an ack per frame doubled the SCTP messages on the link."""
        while True:
            if self._rerequest_ticks == 0:
                await self._ack_due.wait()
            self._ack_due.clear()
            assert self.case_id is not None
            for stream_id, seq in list(self._durable.items()):
                if self._acked.get(stream_id) != seq:
                    self._acked[stream_id] = seq
                    self.counters.acks += 1
                    self._send(Ack(case_id=self.case_id, stream_id=stream_id, seq=seq))
            if self._rerequest_ticks > 0:
                # The frames after the damaged one may still be on their way to the store.
                self._rerequest_ticks -= 1
                if await self._request_missing():
                    self._rerequest_ticks = 0
            await asyncio.sleep(ACK_EVERY_S)

    async def _request_missing(self) -> bool:
        """After a frame was rejected, ask the tablet again for every seq the store lacks
        below the highest one seen on this connection; True if something was asked for."""
        assert self.case_id is not None
        asked = False
        for stream_id, highest in self._highest_seen.items():
            ranges = await self.ingest.missing(self.case_id, stream_id, highest)
            if ranges:
                asked = True
                self._send(
                    Missing(case_id=self.case_id, stream_id=stream_id, ranges=ranges[:MAX_RANGES])
                )
        return asked

    async def _heartbeats(self) -> None:
        while True:
            await self.sleep(self.heartbeat_interval_s)
            self._heartbeat_seq += 1
            self._send(Heartbeat(sent_at=time.time(), seq=self._heartbeat_seq))
            silent = self._watch.check(self.clock())
            if silent is not None and not self._no_signal:
                self._no_signal = True
                self.log.warning("no signal from the unit for %.1f s", silent.silent_s)
                if self.case_id is not None:
                    await self.ingest.publish_event(
                        self.case_id,
                        {
                            "kind": "no_signal",
                            "unit_id": self.grant.unit,
                            "silent_s": silent.silent_s,
                            "at": time.time(),
                        },
                    )
            elif silent is None and self._no_signal:
                self._no_signal = False
                self.log.info("the unit's heartbeats are back")
                if self.case_id is not None:
                    await self.ingest.publish_event(
                        self.case_id,
                        {"kind": "signal_restored", "unit_id": self.grant.unit, "at": time.time()},
                    )
