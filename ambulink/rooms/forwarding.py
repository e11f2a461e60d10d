"""Passthrough forwarding: one publisher's encoded frames to many viewers, never re-encoded.

A ``PublishedTrack`` takes a publisher's frames from its tapped receiver (``encoded.py``) and
hands each to the ``ForwardedTrack`` of every viewer slot attached to it. A ``ForwardedTrack`` is
the track of one hub sender: its ``recv`` returns ``av.Packet`` objects, so aiortc's
``RTCRtpSender`` packetizes them (``Encoder.pack``) instead of encoding. Each viewer has its own
bounded queue: a viewer that starts, or falls so far behind that its queue fills, drops frames up
to the next keyframe and asks the publisher for one, so one slow viewer never delays the others
or the publisher. Keyframe requests from viewers (PLI/FIR at the hub's sender) and from queues go
to the publisher as one throttled RTCP PLI on its media SSRC.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import MediaStreamTrack, RTCRtpSender
from aiortc.mediastreams import MediaStreamError
from av.packet import Packet

from ambulink.rooms.encoded import AUDIO_CLOCK_HZ, VIDEO_CLOCK_HZ, EncodedFrame

logger = logging.getLogger(__name__)

# At most one PLI per publisher in this long: a keyframe is 5-10 inter frames of bitrate, and a
# viewer's PLI storm (every lost packet) or 7 viewers joining at once must not make the publisher
# send nothing but keyframes on a weak 4G uplink. 500 ms bounds a new viewer's black screen.
KEYFRAME_REQUEST_INTERVAL_S = 0.5
# Frames a viewer may be behind before it drops to the next keyframe: 8 video frames are
# ~270 ms at 30 fps (stale video is worse than a skip in a consult); 10 Opus frames are 200 ms.
VIDEO_QUEUE_FRAMES = 8
AUDIO_QUEUE_FRAMES = 10
VIDEO_FRAME_TICKS = VIDEO_CLOCK_HZ // 30  # timestamp step when a slot switches publisher
AUDIO_FRAME_TICKS = AUDIO_CLOCK_HZ // 50  # 20 ms Opus frames
_TIME_BASE = {
    "video": fractions.Fraction(1, VIDEO_CLOCK_HZ),
    "audio": fractions.Fraction(1, AUDIO_CLOCK_HZ),
}


@dataclass
class KeyframeThrottle:
    """Lets a keyframe request through at most every ``interval_s`` (monotonic seconds)."""

    interval_s: float = KEYFRAME_REQUEST_INTERVAL_S
    last_s: float | None = None
    sent: int = 0
    suppressed: int = 0

    def allow(self, now: float) -> bool:
        if self.last_s is not None and now - self.last_s < self.interval_s:
            self.suppressed += 1
            return False
        self.last_s = now
        self.sent += 1
        return True


@dataclass(eq=False)
class PublishedTrack:
    """One publisher's camera or microphone, fanned out to attached viewer slots.

    ``send_keyframe_request`` sends the RTCP PLI (e.g. ``ReceiverTap.request_keyframe``); it is
    called at most every ``KEYFRAME_REQUEST_INTERVAL_S``.
    """

    member_id: str
    kind: str
    send_keyframe_request: Callable[[], Awaitable[None]] | None = None
    clock: Callable[[], float] = time.monotonic
    throttle: KeyframeThrottle = field(default_factory=KeyframeThrottle)
    frames: int = 0
    keyframes: int = 0
    last_keyframe: EncodedFrame | None = None
    listeners: list[Callable[[EncodedFrame], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._viewers: set[ForwardedTrack] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def viewers(self) -> int:
        return len(self._viewers)

    def on_frame(self, frame: EncodedFrame) -> None:
        """A complete frame from the publisher (on the event loop; never blocks)."""
        self.frames += 1
        if frame.keyframe:
            self.keyframes += 1
            if self.kind == "video":
                self.last_keyframe = frame
        for listener in self.listeners:
            listener(frame)
        for viewer in self._viewers:
            viewer.push(frame)

    def subscribe(self, viewer: ForwardedTrack) -> None:
        self._viewers.add(viewer)

    def unsubscribe(self, viewer: ForwardedTrack) -> None:
        self._viewers.discard(viewer)

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe (throttled; audio needs none)."""
        if self.kind != "video" or self.send_keyframe_request is None:
            return
        if not self.throttle.allow(self.clock()):
            return
        task = asyncio.ensure_future(self.send_keyframe_request())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        """The publisher is gone: every attached viewer slot goes idle."""
        for viewer in list(self._viewers):
            viewer.attach(None)
        for task in self._tasks:
            task.cancel()


class ForwardedTrack(MediaStreamTrack):
    """The track of one hub sender (one viewer slot): encoded frames of the attached publisher.

    ``recv`` returns ``av.Packet`` (so aiortc packs instead of encoding), waiting while the slot
    is idle. Timestamps are rebased so a slot that switches publisher keeps counting forward.
    """

    def __init__(self, kind: str, max_frames: int | None = None) -> None:
        super().__init__()
        self.kind = kind
        self.max_frames = max_frames or (
            VIDEO_QUEUE_FRAMES if kind == "video" else AUDIO_QUEUE_FRAMES
        )
        self.source: PublishedTrack | None = None
        self.dropped = 0
        self.forwarded = 0
        self.keyframe_requests = 0  # from the viewer (PLI/FIR at the hub's sender)
        self._queue: deque[EncodedFrame] = deque()
        self._ready = asyncio.Event()
        self._awaiting_keyframe = True
        self._offset: int | None = None  # out timestamp = in timestamp + offset
        self._last_out: int | None = None
        self._step = VIDEO_FRAME_TICKS if kind == "video" else AUDIO_FRAME_TICKS

    @property
    def queued(self) -> int:
        return len(self._queue)

    def attach(self, source: PublishedTrack | None) -> None:
        """Forward ``source`` from its next keyframe on (None: idle)."""
        if source is self.source:
            return
        if self.source is not None:
            self.source.unsubscribe(self)
        self.dropped += len(self._queue)
        self._queue.clear()
        self.source = source
        self._offset = None
        self._awaiting_keyframe = True
        if source is not None:
            source.subscribe(self)
            source.request_keyframe()

    def push(self, frame: EncodedFrame) -> None:
        """One frame from the source; drops to the next keyframe when the queue is full."""
        if self.readyState != "live":
            return
        if len(self._queue) >= self.max_frames:
            self.dropped += len(self._queue)
            self._queue.clear()
            self._awaiting_keyframe = True
        if self._awaiting_keyframe:
            if not frame.keyframe:
                self.dropped += 1
                if self.source is not None:  # throttled: repeats only if the last was lost
                    self.source.request_keyframe()
                return
            self._awaiting_keyframe = False
        self._queue.append(frame)
        self._ready.set()

    def request_keyframe(self) -> None:
        """The viewer lost pictures (PLI/FIR at the hub's sender)."""
        self.keyframe_requests += 1
        if self.source is not None:
            self.source.request_keyframe()

    async def recv(self) -> Packet[Any]:
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        frame = self._queue.popleft()
        if self._offset is None:
            start = 0 if self._last_out is None else self._last_out + self._step
            self._offset = start - frame.timestamp
        out = frame.timestamp + self._offset
        self._last_out = out
        packet = Packet(frame.data)
        packet.pts = out
        packet.time_base = _TIME_BASE[self.kind]
        self.forwarded += 1
        return packet

    def stop(self) -> None:
        if self.source is not None:
            self.source.unsubscribe(self)
            self.source = None
        super().stop()
        self._ready.set()


def forward_keyframe_requests(sender: RTCRtpSender, track: ForwardedTrack) -> None:
    """PLI/FIR that a viewer sends to ``sender`` go to ``track``'s publisher, not to an encoder.

    aiortc's ``RTCRtpSender._handle_rtcp_packet`` calls ``self._send_keyframe()`` for both; the
    hub has no encoder to force, so the instance's method is replaced.
    """
    if not callable(getattr(sender, "_send_keyframe", None)):
        from ambulink.rooms.encoded import IncompatibleAiortc

        raise IncompatibleAiortc("aiortc's RTCRtpSender lacks _send_keyframe; pin 1.16.0")
    sender._send_keyframe = track.request_keyframe  # type: ignore[method-assign]
