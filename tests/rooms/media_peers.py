"""Real aiortc room members for media tests: a publisher sends the numbered test pattern and a
tone; every member decodes what its slots receive and records the frame numbers it saw."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, VideoFrame

from ambulink.ambulance_client.media import TestPatternTrack, ToneTrack, read_counter

Answerer = Callable[[str], Awaitable[RTCSessionDescription]]
DECODER_QUEUE = "_RTCRtpReceiver__decoder_queue"  # aiortc internals the hub replaces
TRACK_QUEUE = "_queue"


def decoder_queue(receiver: RTCRtpReceiver) -> Any:
    """What the receiver hands complete frames to (the hub's bypass when tapped)."""
    return getattr(receiver, DECODER_QUEUE)


def decoded_waiting(receiver: RTCRtpReceiver) -> int:
    """Frames the receiver's decoder produced that nobody read (0 if it never decoded)."""
    return int(getattr(receiver.track, TRACK_QUEUE).qsize())


def prefer(transceiver: RTCRtpTransceiver, kind: str, first: str) -> None:
    """Offer ``first`` (e.g. "video/H264") before the other codecs of ``kind``."""
    codecs = RTCRtpSender.getCapabilities(kind).codecs
    transceiver.setCodecPreferences(
        [c for c in codecs if c.mimeType == first] + [c for c in codecs if c.mimeType != first]
    )


def first_codec(sdp: str, kind: str) -> str:
    """The first codec of the first ``kind`` section of an SDP."""
    lines = sdp.splitlines()
    section = next(line for line in lines if line.startswith(f"m={kind}"))
    pt = section.split()[3]
    rtpmap = next(line for line in lines if line.startswith(f"a=rtpmap:{pt} "))
    return rtpmap.split()[1].split("/")[0]


@dataclass(eq=False)
class MemberPeer:
    """One member: ``slots`` receiving transceivers per kind, plus camera and mic if
    ``publish``; ``video_first`` puts that codec first in the offer (e.g. "video/H264")."""

    name: str
    publish: bool = False
    slots: int = 2
    video_first: str = "video/VP8"
    audio_codecs: tuple[str, ...] = ("audio/opus",)
    frames: dict[str, list[int]] = field(default_factory=dict)  # mid -> video frame numbers
    audio_frames: dict[str, int] = field(default_factory=dict)  # mid -> decoded audio frames
    slot_messages: list[list[dict[str, str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        # max-bundle, as the hub: under aiortc's default (balanced) policy the 2nd+ transceivers
        # of the second kind stay on a transport that the BUNDLE step stops (never started).
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self.camera: TestPatternTrack | None = None
        self.keyframe_requests = 0  # PLI/FIR that reached this member's camera sender
        self.slots_changed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            mid = next(t.mid for t in self.pc.getTransceivers() if t.receiver.track is track)
            task = asyncio.ensure_future(self._read(track, str(mid)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        for kind in ("video", "audio"):
            if self.publish:
                track: MediaStreamTrack
                if kind == "video":
                    track = self.camera = TestPatternTrack(320, 240, fps=15)
                else:
                    track = ToneTrack()
                sending = self.pc.addTransceiver(track, direction="sendrecv")
                self._configure(sending, kind)
                if kind == "video":
                    self._count_keyframe_requests(sending.sender)
            for _ in range(self.slots):
                self._configure(self.pc.addTransceiver(kind, direction="recvonly"), kind)
        # After the transceivers: under max-bundle a data channel made first would own the
        # transport, and aiortc's BUNDLE step would stop it.
        self.channel: RTCDataChannel = self.pc.createDataChannel("room-media")

        @self.channel.on("message")
        def on_message(data: str | bytes) -> None:
            message = json.loads(data)
            if message.get("type") == "slots":
                self.slot_messages.append(message["slots"])
                self.slots_changed.set()

    def _configure(self, transceiver: RTCRtpTransceiver, kind: str) -> None:
        if kind == "video":
            prefer(transceiver, kind, self.video_first)
        else:
            codecs = RTCRtpSender.getCapabilities(kind).codecs
            transceiver.setCodecPreferences([c for c in codecs if c.mimeType in self.audio_codecs])

    def _count_keyframe_requests(self, sender: RTCRtpSender) -> None:
        original = sender._send_keyframe

        def counted() -> None:
            self.keyframe_requests += 1
            original()

        sender._send_keyframe = counted  # type: ignore[method-assign]

    async def _read(self, track: MediaStreamTrack, mid: str) -> None:
        try:
            while True:
                frame = await track.recv()
                if isinstance(frame, VideoFrame):
                    number = read_counter(frame.to_ndarray(format="rgb24"))
                    if number is not None:
                        self.frames.setdefault(mid, []).append(number)
                elif isinstance(frame, AudioFrame):
                    self.audio_frames[mid] = self.audio_frames.get(mid, 0) + 1
        except MediaStreamError:
            return

    async def connect(self, answer: Answerer) -> RTCSessionDescription:
        """Offer, let ``answer`` produce the hub's answer, apply it; returns the answer."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        reply = await answer(self.pc.localDescription.sdp)
        await self.pc.setRemoteDescription(reply)
        return reply

    def mid_of(self, member_id: str, kind: str) -> str | None:
        """The slot that carries ``member_id``'s ``kind``, per the last slots message."""
        for slot in self.slot_messages[-1] if self.slot_messages else []:
            if slot["member_id"] == member_id and slot["kind"] == kind:
                return slot["mid"]
        return None

    def seen(self, member_id: str) -> list[int]:
        mid = self.mid_of(member_id, "video")
        return self.frames.get(mid, []) if mid is not None else []

    def heard(self, member_id: str) -> int:
        mid = self.mid_of(member_id, "audio")
        return self.audio_frames.get(mid, 0) if mid is not None else 0

    def state(self) -> str:
        """What this member received, for failure messages."""
        video = {mid: len(numbers) for mid, numbers in self.frames.items()}
        last = self.slot_messages[-1] if self.slot_messages else None
        return f"video frames by mid {video}, audio {self.audio_frames}, slots {last}"

    async def close(self) -> None:
        await self.pc.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
