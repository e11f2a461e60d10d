"""The demo's moving fleet: every unit of the demo region drives a route, changes status, and
reports status, position and link once a second (docs/fleet.md).

Units with a simulated tablet (the ECG cases) send their reports over the uplink's data channel,
as a tablet does when no MQTT broker is configured; the other units have no tablet in the demo
and hand their reports to the hub in process, through the same ``FleetService.apply``. ``amb-1``
crosses a dead zone of ~30 s on each leg: its uplink is really cut, its disk buffer fills, and
after the zone it reconnects and backfills, so dispatch sees its data age rise, then recover.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from ambulink.ambulance_client.telematics import (
    ChannelTransport,
    TelematicsRunner,
    Transport,
    simulated_route,
)
from ambulink.ambulance_client.uplink import AmbulanceClient
from ambulink.hub.fleet_service import FleetService
from ambulink.hub.tokens import TokenIssuer

DEAD_ZONE_UNIT = "amb-1"
DEAD_ZONE_RADIUS_M = 210.0  # ~30 s across at 14 m/s


class InProcessTransport:
    """Reports of a demo unit without a tablet, handed to the hub's fleet in process."""

    def __init__(self, fleet: FleetService) -> None:
        self.fleet = fleet

    async def send(self, kind: str, data: dict[str, Any]) -> bool:
        await self.fleet.apply(str(data["unit_id"]), kind, data)
        return True


def start_fleet(
    tasks: asyncio.TaskGroup,
    hub: Any,
    clients: Mapping[str, AmbulanceClient],
    issuer: TokenIssuer,
    base_url: str,
) -> list[str]:
    """Start a ``TelematicsRunner`` per unit of the hub's fleet; returns lines to print (the
    dispatch and crew page URLs, tokens in the fragment)."""
    fleet: FleetService | None = hub.fleet
    if fleet is None:
        return []
    hospitals = list(fleet.fleet.hospitals.values())
    for index, unit_id in enumerate(fleet.fleet.units):
        home = hospitals[index % len(hospitals)]
        client = clients.get(unit_id)
        transport: Transport = (
            ChannelTransport(client) if client is not None else InProcessTransport(fleet)
        )
        zone_m = DEAD_ZONE_RADIUS_M if unit_id == DEAD_ZONE_UNIT else None
        route = simulated_route(index, (home.lat, home.lon), dead_zone_m=zone_m)
        runner = TelematicsRunner(
            unit_id,
            route,
            transport,
            client=client,
            offset_s=(17.0 * index) % 120.0,
            destination=home.hospital_id,
        )
        tasks.create_task(runner.run())
    dispatch = issuer.mint("demo-dispatch", "dispatch")
    lines = [
        f"dispatch page (token valid 10 min): {base_url}/dispatch#token={dispatch}",
        f"  {DEAD_ZONE_UNIT} drives through a ~30 s radio dead zone: watch its data age",
    ]
    for unit_id in clients:
        crew = issuer.mint(f"demo-crew-{unit_id}", "crew", unit=unit_id)
        lines.append(f"crew page {unit_id}: {base_url}/crew#token={crew}")
    return lines
