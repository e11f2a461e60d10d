"""The aiortc internals the passthrough SFU relies on: an upgrade that moves them fails here."""

from __future__ import annotations

import asyncio
from importlib.metadata import version

import aiortc
from aiortc import RTCPeerConnection
from aiortc.codecs import get_encoder
from aiortc.codecs.vpx import vp8_depayload
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RTCP_PSFB_FIR, RTCP_PSFB_PLI, RtcpPsfbPacket
from av.frame import Frame

from ambulink.rooms.encoded import (
    REQUIRED_RECEIVER_ATTRIBUTES,
    EncodedFrame,
    check_aiortc_internals,
    tap_receiver,
)
from ambulink.rooms.forwarding import ForwardedTrack, PublishedTrack, forward_keyframe_requests
from tests.rooms.media_peers import decoder_queue
from tests.rooms.test_forwarding import vp8_frames


def test_aiortc_is_the_pinned_version() -> None:
    assert version("aiortc") == "1.16.0"
    assert aiortc.__version__ == "1.16.0"


def test_receiver_and_sender_have_what_the_sfu_replaces() -> None:
    async def scenario() -> None:
        pc = RTCPeerConnection()
        try:
            transceiver = pc.addTransceiver("video")
            receiver = transceiver.receiver
            for name in REQUIRED_RECEIVER_ATTRIBUTES:
                assert hasattr(receiver, name), name
            check_aiortc_internals(receiver)
            frames: list[EncodedFrame] = []
            tap = tap_receiver(receiver, frames.append)
            # The receiver now puts frames into the bypass, which never hands them to a decoder.
            queue = decoder_queue(receiver)
            data = vp8_frames(1)[0].data
            queue.put((None, type("F", (), {"data": data, "timestamp": 0})()))
            assert frames == [EncodedFrame(data, 0, True)] and tap.frames_to_decoder == 0
            queue.put(None)  # the stop sentinel still reaches the decoder thread's queue
            assert tap.frames_to_decoder == 1
            assert callable(transceiver.sender._send_keyframe)
        finally:
            await pc.close()

    asyncio.run(scenario())


def test_pli_and_fir_at_a_hub_sender_reach_the_publisher() -> None:
    async def scenario() -> None:
        pc = RTCPeerConnection()
        try:
            track = ForwardedTrack("video")
            requests: list[str] = []

            async def request() -> None:
                requests.append("pli")

            source = PublishedTrack("crew:amb", "video", request)
            track.attach(source)
            sender = pc.addTransceiver(track, direction="sendonly").sender
            forward_keyframe_requests(sender, track)
            for fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
                packet = RtcpPsfbPacket(fmt=fmt, ssrc=1, media_ssrc=sender._ssrc)
                await sender._handle_rtcp_packet(packet)  # what aiortc calls on RTCP input
            assert track.keyframe_requests == 2
            # attach asked once; the two viewer requests came within the throttle interval.
            assert source.throttle.sent == 1 and source.throttle.suppressed == 2
        finally:
            await pc.close()

    asyncio.run(scenario())


def test_a_sender_packs_forwarded_packets_instead_of_encoding() -> None:
    async def scenario() -> None:
        frames = vp8_frames(1)
        track = ForwardedTrack("video")
        source = PublishedTrack("crew:amb", "video")
        track.attach(source)
        source.on_frame(frames[0])
        packet = await track.recv()
        assert not isinstance(packet, Frame)  # RTCRtpSender._next_encoded_frame: pack, not encode
        codec = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
        payloads, timestamp = get_encoder(codec).pack(packet)
        assert b"".join(vp8_depayload(p) for p in payloads) == frames[0].data
        assert timestamp == 0

    asyncio.run(scenario())
