"""Encoded frames taken from an aiortc receiver before its decoder (passthrough SFU, DESIGN §3.5).

aiortc (pinned at 1.16.0) reassembles RTP packets into frames in the receiver's jitter buffer and
hands them to a decoder thread through a queue. ``tap_receiver`` replaces both, on one receiver:

- video frames leave the jitter buffer when the packet with the RTP marker bit (the last packet
  of a frame) is in, instead of when the next frame's first packet arrives (one frame interval,
  33 ms at 30 fps, saved); audio packets (one Opus frame each) leave as they come;
- complete frames go to a callback instead of the decoder: the decoder thread still exists but
  only waits, so the hub never spends CPU decoding a tapped track. Stopping the receiver still
  reaches the thread (the ``None`` sentinel is passed through) and ends the remote track.

These are private attributes (name-mangled ``_RTCRtpReceiver__...``); ``check_aiortc_internals``
fails loudly when an aiortc upgrade moves them, and ``tests/rooms/test_forwarding_internals.py``
runs it.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiortc import RTCRtpReceiver
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket
from aiortc.utils import uint16_gt

from ambulink.errors import AmbulinkError

VIDEO_CLOCK_HZ = 90_000
AUDIO_CLOCK_HZ = 48_000  # Opus RTP clock, whatever the sampling rate
VIDEO_JITTER_CAPACITY = 512  # packets, as aiortc's own video receiver (a 640x480 keyframe: ~40)

_JITTER = "_RTCRtpReceiver__jitter_buffer"
_DECODER_QUEUE = "_RTCRtpReceiver__decoder_queue"
_KIND = "_RTCRtpReceiver__kind"
REQUIRED_RECEIVER_ATTRIBUTES = (_JITTER, _DECODER_QUEUE, _KIND, "_send_rtcp_pli", "_track")


class IncompatibleAiortc(AmbulinkError):
    """The installed aiortc lacks an internal the passthrough SFU relies on."""

    code = "incompatible_aiortc"


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One complete encoded frame (VP8 or Opus) as received; ``timestamp`` in RTP clock units
    from the start of its stream, ``keyframe`` True for a VP8 keyframe and every Opus frame."""

    data: bytes
    timestamp: int
    keyframe: bool


def vp8_is_keyframe(data: bytes) -> bool:
    """RFC 6386 §9.1: bit 0 of the frame tag is 0 for a key frame."""
    return len(data) >= 3 and data[0] & 0x01 == 0


def vp8_keyframe_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a VP8 key frame (from its start code and size fields), or None."""
    if not vp8_is_keyframe(data) or len(data) < 10 or data[3:6] != b"\x9d\x01\x2a":
        return None
    width = int.from_bytes(data[6:8], "little") & 0x3FFF
    height = int.from_bytes(data[8:10], "little") & 0x3FFF
    return width, height


class MarkerJitterBuffer(JitterBuffer):
    """aiortc's video jitter buffer, releasing a frame as soon as its marker packet is in."""

    def __init__(self) -> None:
        super().__init__(capacity=VIDEO_JITTER_CAPACITY, is_video=True)
        self.media_ssrc: int | None = None

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        self.media_ssrc = packet.ssrc  # RTX is unwrapped before: this is the media SSRC
        return super().add(packet)

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        origin = self._origin
        if origin is None:
            return None
        first = self._packets[origin % self._capacity]
        if first is None:
            return None
        packets: list[RtpPacket] = []
        for count in range(self._capacity):
            packet = self._packets[(origin + count) % self._capacity]
            if packet is None or packet.timestamp != first.timestamp:
                break
            packets.append(packet)
            if packet.marker:
                self.remove(count + 1)
                data = b"".join(p._data for p in packets)  # type: ignore[attr-defined]
                return JitterFrame(data=data, timestamp=first.timestamp)
        # No marker yet (or lost): aiortc's rule, the frame is complete once the next begins.
        return super()._remove_frame(sequence_number)


class PacketJitterBuffer:
    """Audio: every RTP packet is a whole Opus frame; pass it on unless it is older than the
    last one passed (late or duplicated). No prefetch: the viewer's own jitter buffer smooths."""

    def __init__(self) -> None:
        self.media_ssrc: int | None = None
        self._last_seq: int | None = None

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        self.media_ssrc = packet.ssrc
        if self._last_seq is not None and not uint16_gt(packet.sequence_number, self._last_seq):
            return False, None
        self._last_seq = packet.sequence_number
        return False, JitterFrame(data=packet._data, timestamp=packet.timestamp)  # type: ignore[attr-defined]


class _DecoderBypass:
    """Stands in for the receiver's decoder queue: frames go to ``on_frame``; the stop sentinel
    (None) goes to the real queue, where the idle decoder thread waits for it."""

    def __init__(self, original: queue.Queue[Any], on_frame: Callable[[JitterFrame], None]) -> None:
        self._original = original
        self._on_frame = on_frame
        self.bypassed = 0

    def put(self, item: tuple[Any, JitterFrame] | None) -> None:
        if item is None:
            self._original.put(None)
            return
        self.bypassed += 1
        self._on_frame(item[1])

    def get(self) -> Any:  # if the decoder thread starts after the tap, it waits here
        return self._original.get()


def check_aiortc_internals(receiver: RTCRtpReceiver | None = None) -> None:
    """Raise ``IncompatibleAiortc`` if aiortc no longer has what ``tap_receiver`` replaces."""
    if not hasattr(JitterBuffer, "_remove_frame") or not hasattr(JitterBuffer, "remove"):
        raise IncompatibleAiortc("aiortc's JitterBuffer lost _remove_frame/remove; pin 1.16.0")
    if receiver is not None:
        missing = [a for a in REQUIRED_RECEIVER_ATTRIBUTES if not hasattr(receiver, a)]
        if missing:
            raise IncompatibleAiortc(
                f"aiortc's RTCRtpReceiver lacks {', '.join(missing)}; the passthrough SFU needs "
                "aiortc 1.16.0 (see pyproject.toml)"
            )


@dataclass
class ReceiverTap:
    """What ``tap_receiver`` installed on one receiver."""

    receiver: RTCRtpReceiver
    kind: str
    jitter: MarkerJitterBuffer | PacketJitterBuffer
    bypass: _DecoderBypass

    @property
    def media_ssrc(self) -> int | None:
        return self.jitter.media_ssrc

    @property
    def frames_to_decoder(self) -> int:
        """Frames that reached the real decoder queue since the tap (0 unless bypassed)."""
        original: queue.Queue[Any] = self.bypass._original
        return original.qsize()

    async def request_keyframe(self) -> None:
        """RTCP PLI to the publisher's media SSRC (RFC 4585 §6.3.1), not to its RTX SSRC."""
        if self.kind == "video" and self.media_ssrc is not None:
            await self.receiver._send_rtcp_pli(self.media_ssrc)


def tap_receiver(receiver: RTCRtpReceiver, on_frame: Callable[[EncodedFrame], None]) -> ReceiverTap:
    """Take ``receiver``'s complete encoded frames to ``on_frame`` instead of its decoder.

    Call before media flows (e.g. right after ``setRemoteDescription``). ``on_frame`` runs on
    the event loop, once per frame: it must not block.
    """
    check_aiortc_internals(receiver)
    kind: str = getattr(receiver, _KIND)
    jitter: MarkerJitterBuffer | PacketJitterBuffer
    if kind == "video":
        jitter = MarkerJitterBuffer()

        def to_frame(frame: JitterFrame) -> EncodedFrame:
            return EncodedFrame(frame.data, frame.timestamp, vp8_is_keyframe(frame.data))
    else:
        jitter = PacketJitterBuffer()

        def to_frame(frame: JitterFrame) -> EncodedFrame:
            return EncodedFrame(frame.data, frame.timestamp, True)

    bypass = _DecoderBypass(getattr(receiver, _DECODER_QUEUE), lambda f: on_frame(to_frame(f)))
    setattr(receiver, _JITTER, jitter)
    setattr(receiver, _DECODER_QUEUE, bypass)
    return ReceiverTap(receiver, kind, jitter, bypass)
