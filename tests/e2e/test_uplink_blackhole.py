"""A silent blackhole (every packet dropped, nothing closed) is noticed on both sides within
5 s (DESIGN §3.3): the hub publishes NO SIGNAL for the case, the tablet says "hub unreachable".

Nothing closes the connection here: no ICE failure, no DTLS alert, no SCTP abort reaches either
side, so only the 1 Hz heartbeats can tell.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from ambulink.ambulance_client.source import RecordReplay
from ambulink.ambulance_client.uplink import AmbulanceClient, ClientSettings, LinkState
from ambulink.data import record_path
from ambulink.hub.ingest import events_topic
from tests.e2e.conftest import HubFactory, RunningHub, within

DETECT_BAR_S = 5.0


async def no_signal_after(hub: RunningHub, case_id: str, since_wall_s: float) -> dict[str, object]:
    """The first ``no_signal`` event of the case published after ``since_wall_s``."""
    cursor = "0"
    while True:
        entries = await hub.hub.bus.read(events_topic(case_id), after=cursor, block_ms=200)
        for entry_id, fields in entries:
            cursor = entry_id
            event = json.loads(fields["json"])
            if event.get("kind") == "no_signal" and float(event["at"]) >= since_wall_s:
                return dict(event)


async def blackhole_scenario(hub_factory: HubFactory, tmp_path: Path) -> tuple[float, float]:
    async with hub_factory() as hub:
        source = RecordReplay(record_path("mitdb/100"), block_ms=40.0, speed=1.0)
        settings = ClientSettings(hub_url=hub.url, unit_id="amb-3", buffer_dir=tmp_path / "tablet")
        client = AmbulanceClient(settings, source, hub.crew_token("amb-3"))
        stop = asyncio.Event()
        running = asyncio.create_task(client.run(until=stop))
        try:
            await within(20, "the first frames acked", client.wait_acked(25))
            assert client.case_id is not None
            (session,) = [s for s in hub.hub.uplinks if s.case_id == client.case_id]
            hub.network.blackout(True)
            t_black, t_black_wall = time.monotonic(), time.time()
            event = await within(
                2 * DETECT_BAR_S,
                "NO SIGNAL on the bus",
                no_signal_after(hub, client.case_id, t_black_wall),
            )
            hub_s = time.monotonic() - t_black
            assert event["unit_id"] == "amb-3"
            assert not session.closed.is_set(), "the hub's session closed: not a silent blackhole"
            assert hub.network.counters.dropped_blackout > 0

            seen = await within(
                2 * DETECT_BAR_S,
                "the client saying 'hub unreachable'",
                client.wait_link(LinkState.UNREACHABLE, since=t_black),
            )
            return hub_s, seen - t_black
        finally:
            stop.set()
            await within(10, "the client stopping", running)


def test_silent_blackhole_raises_no_signal_and_hub_unreachable(
    hub_factory: HubFactory, tmp_path: Path
) -> None:
    hub_s, client_s = asyncio.run(blackhole_scenario(hub_factory, tmp_path))
    print(
        f"\nblackhole: hub NO SIGNAL after {hub_s:.2f} s, client unreachable after {client_s:.2f} s"
    )
    assert hub_s <= DETECT_BAR_S
    assert client_s <= DETECT_BAR_S
