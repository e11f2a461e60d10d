"""The ambulance's camera and microphone reach the hub over the uplink, video as VP8, and are
taken there as encoded frames (forwarded into the case's room, never decoded)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ambulink.rooms.encoded import vp8_keyframe_size
from tests.e2e.conftest import HubFactory, poll_until

UNIT = "amb-7"


def video_codec(sdp: str) -> str:
    """The first codec the SDP offers for its video section."""
    lines = sdp.splitlines()
    video = next(line for line in lines if line.startswith("m=video"))
    first_pt = video.split()[3]
    rtpmap = next(line for line in lines if line.startswith(f"a=rtpmap:{first_pt} "))
    return rtpmap.split()[1].split("/")[0]


async def media_scenario(hub_factory: HubFactory, buffer_dir: Path) -> None:
    async with hub_factory() as hub:
        client = hub.camera_client(UNIT, buffer_dir)
        stop = asyncio.Event()
        running = asyncio.create_task(client.run(until=stop))
        try:
            await poll_until(lambda: bool(hub.hub.uplinks), 10, "an uplink")
            (session,) = hub.hub.uplinks
            await poll_until(
                lambda: (
                    session.media_frames.get("video", 0) >= 15
                    and session.media_frames.get("audio", 0) >= 50
                ),
                20,
                "video and audio frames at the hub",
            )
            assert video_codec(session.pc.localDescription.sdp) == "VP8"
            # Taken as encoded VP8 frames (the hub does not decode): the keyframe tells the size.
            keyframe = session.published["video"].last_keyframe
            assert keyframe is not None and vp8_keyframe_size(keyframe.data) == (320, 240)
            seen = session.media_frames["video"]
            await poll_until(lambda: session.media_frames["video"] >= seen + 10, 10, "more video")
        finally:
            stop.set()
            await asyncio.wait_for(running, 15)


def test_camera_and_microphone_reach_the_hub(hub_factory: HubFactory, tmp_path: Path) -> None:
    asyncio.run(media_scenario(hub_factory, tmp_path / "tablet"))
