"""Per-viewer queues, keyframe drops and keyframe-request throttling, on real VP8 packets."""

from __future__ import annotations

import asyncio
from fractions import Fraction
from typing import Any

import av
import numpy as np
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtp import RtpPacket

from ambulink.ambulance_client.media import draw_counter, read_counter
from ambulink.rooms.encoded import (
    EncodedFrame,
    MarkerJitterBuffer,
    PacketJitterBuffer,
    vp8_is_keyframe,
    vp8_keyframe_size,
)
from ambulink.rooms.forwarding import ForwardedTrack, KeyframeThrottle, PublishedTrack

GOP = 10  # a keyframe every 10 frames


def vp8_frames(count: int) -> list[EncodedFrame]:
    """``count`` frames of a numbered picture, encoded by libvpx (through PyAV)."""
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = 320, 240, "yuv420p"
    codec.time_base = Fraction(1, 30)
    codec.gop_size = GOP
    codec.options = {"lag-in-frames": "0", "deadline": "realtime"}
    frames = []
    for i in range(count):
        image = np.zeros((240, 320, 3), np.uint8)
        draw_counter(image, i)
        picture = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        picture.pts = i
        for packet in codec.encode(picture):
            data = bytes(packet)
            assert vp8_is_keyframe(data) == packet.is_keyframe
            frames.append(EncodedFrame(data, i * 3000, vp8_is_keyframe(data)))
    return frames


def decode(packets: list[av.Packet[Any]]) -> list[int | None]:
    """Decode forwarded packets as a viewer would; the numbers drawn in the pictures."""
    decoder = av.CodecContext.create("libvpx", "r")
    numbers: list[int | None] = []
    for packet in packets:
        for picture in decoder.decode(packet):
            numbers.append(read_counter(picture.to_ndarray(format="rgb24")))
    return numbers


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_keyframe_throttle_lets_one_request_through_per_interval() -> None:
    throttle = KeyframeThrottle(interval_s=0.5)
    assert throttle.allow(10.0)
    assert not throttle.allow(10.2)
    assert not throttle.allow(10.49)
    assert throttle.allow(10.5)
    assert (throttle.sent, throttle.suppressed) == (2, 2)


def test_vp8_keyframe_size_reads_the_picture_size() -> None:
    frames = vp8_frames(2)
    assert vp8_keyframe_size(frames[0].data) == (320, 240)
    assert vp8_keyframe_size(frames[1].data) is None  # an inter frame


async def queue_scenario() -> None:
    frames = vp8_frames(3 * GOP)
    clock = FakeClock()
    requests: asyncio.Queue[float] = asyncio.Queue()

    async def send_request() -> None:
        requests.put_nowait(clock.now)

    source = PublishedTrack("crew:amb", "video", send_request, clock=clock)
    viewer = ForwardedTrack("video", max_frames=4)
    viewer.attach(source)  # a new viewer waits for a keyframe and asks for one
    assert await asyncio.wait_for(requests.get(), 5) == 100.0

    clock.now += 1.0
    for frame in frames[: GOP + 2]:  # nobody reads: the queue fills
        clock.now += 1 / 30
        source.on_frame(frame)
    # Frames 0-3 queued, frame 4 overflowed: 0-4 dropped and 5-9 (inter frames) skipped, then
    # keyframe 10 and frame 11 queued; frame 4 asked for a keyframe, 5-9 were throttled.
    assert viewer.queued == 2
    assert viewer.dropped == GOP
    assert await asyncio.wait_for(requests.get(), 5) > 100.0
    assert source.throttle.sent == 2 and source.throttle.suppressed == 5

    for frame in frames[GOP + 2 :]:
        source.on_frame(frame)
        if viewer.queued == 3:
            break
    packets = [await viewer.recv() for _ in range(viewer.queued)]
    assert [p.pts for p in packets] == [0, 3000, 6000]  # rebased onto the viewer's timeline
    assert packets[0].is_keyframe or vp8_is_keyframe(bytes(packets[0]))
    assert decode(packets) == [10, 11, 12]  # decodable from the keyframe on

    viewer.stop()
    assert source.viewers == 0


def test_a_full_queue_drops_to_the_next_keyframe_and_asks_for_one() -> None:
    asyncio.run(queue_scenario())


async def switch_scenario() -> None:
    frames = vp8_frames(GOP + 1)
    first = PublishedTrack("crew:amb", "video")
    second = PublishedTrack("specialist:x", "video")
    viewer = ForwardedTrack("video")
    viewer.attach(first)
    first.on_frame(frames[0])
    assert (await viewer.recv()).pts == 0
    viewer.attach(second)
    second.on_frame(frames[1])  # not a keyframe: the switch waits for one
    second.on_frame(frames[GOP])
    packet = await viewer.recv()
    assert packet.pts == 3000 and vp8_is_keyframe(bytes(packet))  # keeps counting forward
    assert first.viewers == 0 and second.viewers == 1 and viewer.dropped == 1


def test_a_slot_switching_publisher_starts_at_a_keyframe_and_counts_forward() -> None:
    asyncio.run(switch_scenario())


def test_audio_frames_are_all_keyframes_and_overflow_drops_the_oldest() -> None:
    async def scenario() -> None:
        source = PublishedTrack("crew:amb", "audio")
        viewer = ForwardedTrack("audio", max_frames=3)
        viewer.attach(source)
        for i in range(5):
            source.on_frame(EncodedFrame(bytes([i]), i * 960, True))
        packets = [await viewer.recv() for _ in range(viewer.queued)]
        assert [bytes(p) for p in packets] == [bytes([3]), bytes([4])]
        assert viewer.dropped == 3

    asyncio.run(scenario())


def rtp(seq: int, timestamp: int, marker: bool, data: bytes) -> RtpPacket:
    packet = RtpPacket(payload_type=96, sequence_number=seq, timestamp=timestamp, ssrc=1234)
    packet.marker = int(marker)
    packet._data = data  # type: ignore[attr-defined]
    return packet


def test_video_frames_leave_the_jitter_buffer_on_the_marker_bit() -> None:
    buffer = MarkerJitterBuffer()
    assert buffer.add(rtp(100, 3000, False, b"a")) == (False, None)
    pli, frame = buffer.add(rtp(101, 3000, True, b"b"))
    assert isinstance(frame, JitterFrame) and (frame.data, frame.timestamp) == (b"ab", 3000)
    assert buffer.media_ssrc == 1234 and not pli
    # Without a marker (lost), the frame leaves when the next one starts, as aiortc does.
    assert buffer.add(rtp(102, 6000, False, b"c"))[1] is None
    _, frame = buffer.add(rtp(103, 9000, True, b"d"))
    assert frame is not None and (frame.data, frame.timestamp) == (b"c", 6000)


def test_audio_packets_leave_at_once_and_late_ones_are_dropped() -> None:
    buffer = PacketJitterBuffer()
    _, frame = buffer.add(rtp(7, 960, True, b"x"))
    assert frame is not None and frame.data == b"x"
    assert buffer.add(rtp(6, 0, False, b"late"))[1] is None
    assert buffer.add(rtp(8, 1920, False, b"y"))[1] is not None
