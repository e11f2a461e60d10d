"""Assemble an ambulance client from a record path: source, simulated vitals, uplink."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable
from pathlib import Path

from ambulink.ambulance_client.media import MediaChoice
from ambulink.ambulance_client.source import RecordReplay
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
) -> AmbulanceClient:
    """A client replaying ``record`` (looping, from ``start_s``) for ``unit_id``, with
    simulated vitals."""
    source = RecordReplay(record, block_ms=40.0, speed=speed, loop=True, start_s=start_s)
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
    until: asyncio.Event | None = None,
) -> None:
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
    )
    await client.run(until=until)
