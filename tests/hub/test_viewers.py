"""Member WebSockets: a member that falls behind loses waveform (counted), never alarms."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import websockets

from ambulink.ambulance_client.source import RecordReplay
from ambulink.data import record_path
from ambulink.hub.ingest import ecg_topic
from ambulink.protocol.ecg_frame import encode_ecg_frame
from tests.e2e.conftest import running_hub, within

VF_START = {
    "kind": "episode_start",
    "label": "VF",
    "onset": 10,
    "decided_at": 20,
    "onset_at": 1_800_000_000.0,
    "delayed": False,
    "stream_id": 1,
    "evidence": {"start": 0, "end": 25},
}


# Member sockets and the first message each sends after the token.
SOCKETS = {"cases": "ready", "rooms": "joined"}
ROOM_CHANGES = {"timeline", "timeline_entry", "presence"}  # the room socket's own messages


async def slow_member_scenario(data_dir: Path, kind: str = "cases") -> list[dict[str, Any]]:
    """A member behind on ``/ws/{kind}/{case_id}``: what it received, room changes left out."""
    source = RecordReplay(record_path("mitdb/100"), block_ms=40.0)
    frames = [encode_ecg_frame(source.frame_at(k, 1)) for k in range(1200)]
    async with running_hub(data_dir) as hub:
        case_id = await hub.hub.store.create_case("amb-1")
        url = hub.url.replace("http://", "ws://") + f"/ws/{kind}/{case_id}"
        received: list[dict[str, Any]] = []
        async with websockets.connect(url) as socket:
            token = hub.issuer.mint("doctor", "specialist")
            await socket.send(json.dumps({"type": "auth", "token": token}))
            assert json.loads(await socket.recv())["type"] == SOCKETS[kind]
            # A burst the member cannot take in one batch, then an alarm behind it.
            for data in frames:
                await hub.hub.bus.append(ecg_topic(case_id), {"frames": data}, maxlen=5000)
            await hub.hub.alarms.on_event(case_id, VF_START)

            async def until_both() -> None:
                kinds: set[str] = set()
                async for raw in socket:
                    message = json.loads(raw)
                    if message["type"] in ROOM_CHANGES:
                        continue
                    received.append(message)
                    kinds.add(message["type"])
                    if {"alarm", "waveform_skipped"} <= kinds:
                        return

            await within(10, "the alarm and the skipped waveform", until_both())
        return received


@pytest.mark.parametrize("kind", SOCKETS)
def test_a_member_behind_skips_waveform_but_gets_every_alarm(tmp_path: Path, kind: str) -> None:
    received = asyncio.run(slow_member_scenario(tmp_path, kind))
    kinds = [m["type"] for m in received]
    assert "waveform_skipped" in kinds
    skipped = next(m for m in received if m["type"] == "waveform_skipped")
    assert skipped["frames"] >= 500
    waveform_chunks = sum(
        len(s["chunks"]) for m in received if m["type"] == "waveform" for s in m["streams"]
    )
    assert waveform_chunks < 1200  # not every frame was pushed to the slow member
    # The alarm raised after 1200 frames does not wait behind them: it comes first, or right
    # after the one round that skipped the backlog (when the hub read the frames while the
    # alarm was still being saved; hub and test share one event loop).
    first_alarm = kinds.index("alarm")
    assert kinds[:first_alarm] in ([], ["waveform_skipped", "waveform"]), kinds[: first_alarm + 1]
    assert received[first_alarm]["alarm"]["kind"] == "vf"
