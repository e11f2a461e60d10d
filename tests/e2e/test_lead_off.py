"""A detached electrode, end to end: the real client sends MLII flat with its lead-off bit, the
hub moves beats and rhythm to V1 and back, and raises then clears one lead-off alarm."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import websockets

from ambulink.ambulance_client.source import Detachment, RecordReplay
from ambulink.ambulance_client.uplink import AmbulanceClient, ClientSettings
from ambulink.data import record_path
from tests.e2e.conftest import HubFactory, RunningHub, poll_until, within

UNIT = "amb-3"
SPEED = 4.0
OFF_S, ON_S = 10.0, 20.0  # MLII's electrode is off over this span of stream time


class Viewer:
    """A case viewer's WebSocket: analysis events and alarm states as they arrive."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.alarms: list[dict[str, Any]] = []

    async def run(self, hub: RunningHub, case_id: str, ready: asyncio.Event) -> None:
        url = hub.url.replace("http://", "ws://") + f"/ws/cases/{case_id}"
        async with websockets.connect(url) as socket:
            await socket.send(
                json.dumps({"type": "auth", "token": hub.issuer.mint("dr", "specialist")})
            )
            async for raw in socket:
                message = json.loads(raw)
                if message["type"] == "ready":
                    ready.set()
                elif message["type"] == "event":
                    self.events.append(message["data"])
                elif message["type"] == "alarm":
                    self.alarms.append(message["alarm"])

    def moves(self) -> list[tuple[str, bool]]:
        return [(e["lead"], e["backup"]) for e in self.events if e["kind"] == "analysis_lead"]

    def lead_off(self) -> list[tuple[str, list[str]]]:
        return [
            (a["phase"], a["evidence"]["leads"]) for a in self.alarms if a["kind"] == "lead_off"
        ]


async def scenario(hub_factory: HubFactory, buffer_dir: Path) -> Viewer:
    async with hub_factory() as hub:
        source = RecordReplay(
            record_path("mitdb/119"), block_ms=40.0, speed=SPEED,
            detach=Detachment("MLII", OFF_S, ON_S, 1000.0),
        )  # fmt: skip
        client = AmbulanceClient(
            ClientSettings(hub_url=hub.url, unit_id=UNIT, buffer_dir=buffer_dir),
            source,
            hub.crew_token(UNIT),
        )
        stop = asyncio.Event()
        running = asyncio.create_task(client.run(until=stop))
        viewer = Viewer()
        try:
            await poll_until(lambda: client.case_id is not None, 10, "a case")
            assert client.case_id is not None
            ready = asyncio.Event()
            watching = asyncio.create_task(viewer.run(hub, client.case_id, ready))
            await within(10, "the viewer connected", ready.wait())
            await poll_until(
                lambda: (
                    len(viewer.moves()) >= 2 and any(p == "cleared" for p, _ in viewer.lead_off())
                ),
                (ON_S + 15.0) / SPEED + 15.0,
                "the hand-over, the hand-back and the lead-off alarm cleared",
            )
            watching.cancel()
            return viewer
        finally:
            stop.set()
            await asyncio.wait_for(running, 15)


def test_a_detached_electrode_moves_the_analysis_and_raises_one_lead_off_alarm(
    hub_factory: HubFactory, tmp_path: Path
) -> None:
    viewer = asyncio.run(scenario(hub_factory, tmp_path / "tablet"))
    assert viewer.moves()[:2] == [("V1", True), ("MLII", False)]
    assert viewer.lead_off()[0] == ("active", ["MLII"])
    assert viewer.lead_off()[-1] == ("cleared", ["MLII"])
    hr = [e for e in viewer.events if e["kind"] == "hr"]
    fs = 360.0
    during = [e for e in hr if (OFF_S + 2) * fs <= e["sample"] < (ON_S - 1) * fs]
    assert during, "no heart rate while MLII was off"  # V1 carried it
    assert all(40 <= e["average_bpm"] <= 140 for e in during), during
    raised = {e["label"] for e in viewer.events if e["kind"] == "episode_start"}
    assert not raised & {"ASYSTOLE", "PAUSE"}
