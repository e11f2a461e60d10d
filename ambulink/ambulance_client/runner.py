"""Assemble an ambulance client from a record path: source, simulated vitals, uplink, and
optionally simulated telematics (a route driven from a start point, reported over the uplink's
data channel or to an MQTT broker)."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path

from ambulink.ambulance_client.media import MediaChoice
from ambulink.ambulance_client.source import Detachment, RecordReplay
from ambulink.ambulance_client.telematics import (
    ChannelTransport,
    TelematicsRunner,
    Transport,
    mqtt_transport,
    simulated_route,
)
from ambulink.ambulance_client.uplink import AmbulanceClient, ClientSettings
from ambulink.ambulance_client.vitals import VitalsSimulator, heart_rate_track
from ambulink.rtc import restrict_ice_hosts


def build_client(
    record: str,
    *,
    hub_url: str,
    unit_id: str,
    buffer_dir: Path,
    token: Callable[[], str],
    speed: float = 1.0,
    vitals: bool = True,
    start_s: float = 0.0,
    media: MediaChoice | None = None,
    detach: Detachment | None = None,
) -> AmbulanceClient:
    """A client replaying ``record`` (looping, from ``start_s``) for ``unit_id``, with
    simulated vitals (and, with ``detach``, an electrode that comes off now and then)."""
    source = RecordReplay(
        record, block_ms=40.0, speed=speed, loop=True, start_s=start_s, detach=detach
    )
    simulator = None
    if vitals:
        seed = zlib.crc32(unit_id.encode())
        simulator = VitalsSimulator(heart_rate_track(record), seed=seed)
    settings = ClientSettings(hub_url=hub_url, unit_id=unit_id, buffer_dir=buffer_dir)
    return AmbulanceClient(settings, source, token, vitals=simulator, media=media)


async def run_client(
    record: str,
    *,
    hub_url: str,
    unit_id: str,
    buffer_dir: Path,
    token: Callable[[], str],
    speed: float = 1.0,
    vitals: bool = True,
    loopback: bool = False,
    media: MediaChoice | None = None,
    route_from: tuple[float, float] | None = None,
    mqtt_url: str | None = None,
    until: asyncio.Event | None = None,
    detach: Detachment | None = None,
) -> None:
    """Run a client until ``until`` is set (or forever). With ``route_from`` (lat, lon) the unit
    also drives a simulated route from there and reports status, position and link every
    second: to the broker at ``mqtt_url`` (``mqtt://unit:password@host:port``) when given,
    else inside the uplink's data channel. ``detach`` takes an electrode off now and then."""
    if loopback:
        restrict_ice_hosts(("127.0.0.1",))
    client = build_client(
        record,
        hub_url=hub_url,
        unit_id=unit_id,
        buffer_dir=buffer_dir,
        token=token,
        speed=speed,
        vitals=vitals,
        media=media,
        detach=detach,
    )
    if route_from is None:
        await client.run(until=until)
        return
    async with AsyncExitStack() as stack:
        transport: Transport = ChannelTransport(client)
        if mqtt_url is not None:
            transport = await stack.enter_async_context(mqtt_transport(mqtt_url, unit_id))
        route = simulated_route(zlib.crc32(unit_id.encode()) % 10, route_from)
        reports = TelematicsRunner(unit_id, route, transport, client=client)
        async with asyncio.TaskGroup() as tasks:
            reporting = tasks.create_task(reports.run())
            try:
                await client.run(until=until)
            finally:
                reporting.cancel()
