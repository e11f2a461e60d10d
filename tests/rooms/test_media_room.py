"""Room media over real aiortc peers on loopback, without HTTP: a publisher's camera and mic
reach two viewers through the hub's router, forwarded without decoding."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from aiortc import RTCSessionDescription

from ambulink.rooms.forwarding import ForwardedTrack
from ambulink.rooms.media_offer import answer_member_offer
from ambulink.rooms.media_room import MediaRouter
from ambulink.rtc import restrict_ice_hosts
from tests.e2e.conftest import poll_until
from tests.rooms.media_peers import (
    Answerer,
    MemberPeer,
    decoded_waiting,
    decoder_queue,
    first_codec,
)

CASE = "case-1"


@pytest.fixture(autouse=True)
def loopback_ice() -> Iterator[None]:
    restrict_ice_hosts(("127.0.0.1",))
    yield
    restrict_ice_hosts(())


def answerer(router: MediaRouter, member_id: str, role: str, case_id: str = CASE) -> Answerer:
    async def answer(sdp: str) -> RTCSessionDescription:
        return await answer_member_offer(router, case_id, member_id, role, role != "observer", sdp)

    return answer


async def forwarding_scenario() -> None:
    router = MediaRouter()
    publisher = MemberPeer("pub", publish=True, slots=1, video_first="video/H264")
    viewers = [MemberPeer(f"view{i}", slots=2) for i in range(2)]
    try:
        answer = await publisher.connect(answerer(router, "crew:pub", "crew"))
        # The publisher offered H.264 first; the hub pinned VP8 before the remote description.
        assert first_codec(publisher.pc.localDescription.sdp, "video") == "H264"
        assert first_codec(answer.sdp, "video") == "VP8"
        for i, viewer in enumerate(viewers):
            await viewer.connect(answerer(router, f"specialist:v{i}", "specialist"))
        await poll_until(
            lambda: all(
                len(v.seen("crew:pub")) >= 20 and v.heard("crew:pub") >= 50 for v in viewers
            ),
            30,
            "both viewers decoding the publisher's video and audio",
        )
        for viewer in viewers:
            numbers = viewer.seen("crew:pub")
            assert numbers == sorted(numbers) and numbers[-1] > numbers[0]  # advancing, in order
            assert viewer.slot_messages[-1] == [
                {
                    "mid": viewer.mid_of("crew:pub", "video"),
                    "kind": "video",
                    "member_id": "crew:pub",
                    "role": "crew",
                },
                {
                    "mid": viewer.mid_of("crew:pub", "audio"),
                    "kind": "audio",
                    "member_id": "crew:pub",
                    "role": "crew",
                },
            ]
        # One transport per member (max-bundle), whatever the number of slots.
        for media_member in router.rooms[CASE].members.values():
            assert media_member.pc is not None
            transports = {t.sender.transport for t in media_member.pc.getTransceivers()}
            assert len(transports) == 1
        # The hub never decoded: every frame bypassed the decoder, whose output stays empty.
        member = router.rooms[CASE].members["crew:pub"]
        assert member.pc is not None
        receivers = [t.receiver for t in member.pc.getTransceivers() if t.receiver.track]
        bypassed = 0
        for receiver in receivers:
            queue = decoder_queue(receiver)
            bypassed += queue.bypassed
            assert queue._original.qsize() == 0
            assert decoded_waiting(receiver) == 0  # decoded frames would land here
        assert bypassed >= 70
        video = member.published["video"]
        assert video.frames >= 20 and video.keyframes >= 1
        slots = [s.track for v in router.rooms[CASE].members.values() for s in v.slots]
        assert all(isinstance(t, ForwardedTrack) for t in slots)
        assert sum(t.forwarded for t in slots if t.kind == "video") >= 40

        # A viewer leaves: its connection closes, the others go on.
        await router.remove(CASE, "specialist:v1")
        assert router.peer_connections == 2
        seen = len(viewers[0].seen("crew:pub"))
        await poll_until(lambda: len(viewers[0].seen("crew:pub")) >= seen + 10, 20, "more video")

        # The publisher leaves: the viewer is told its slots are empty.
        viewers[0].slots_changed.clear()
        await router.remove(CASE, "crew:pub")
        await asyncio.wait_for(viewers[0].slots_changed.wait(), 10)
        assert viewers[0].slot_messages[-1] == []
    finally:
        for peer in [publisher, *viewers]:
            await peer.close()
        await router.close()
    assert router.peer_connections == 0 and router.tasks == 0


def test_publisher_reaches_two_viewers_without_decoding() -> None:
    asyncio.run(asyncio.wait_for(forwarding_scenario(), 90))
