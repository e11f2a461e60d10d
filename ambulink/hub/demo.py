"""``ambulink demo``: a hub and a simulated fleet replaying bundled real records.

Everything runs in one process on 127.0.0.1 with the embedded defaults (in-memory bus, SQLite
store). Each ambulance is the real client code: a WFDB replay, the disk buffer, a WebRTC uplink
with its own peer connection, and simulated vitals derived from the record's heart rate.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import uvicorn

from ambulink.ambulance_client.media import MediaChoice
from ambulink.ambulance_client.runner import build_client
from ambulink.ambulance_client.source import Detachment
from ambulink.data import record_path
from ambulink.hub.app import create_app
from ambulink.hub.demo_fleet import start_fleet
from ambulink.hub.serving import KeepLifespanState
from ambulink.hub.settings import HubSettings
from ambulink.hub.tokens import TokenIssuer


@dataclass(frozen=True)
class DemoUnit:
    unit_id: str
    record: str
    start_s: float
    what: str
    camera: bool = False  # a numbered test pattern and a tone, as the ambulance camera and mic
    detach: Detachment | None = None  # an electrode that comes off now and then


FLEET = (
    DemoUnit("amb-1", "mitdb/201", 0.0, "atrial fibrillation (MIT-BIH 201)"),
    DemoUnit("amb-2", "vfdb/422", 1300.0, "VT degenerating into VF (VFDB 422, from 21:40)"),
    DemoUnit(
        "amb-3",
        "ptbdb/s0010_re",
        0.0,
        "acute infero-lateral MI, 12-lead (PTB s0010_re), camera and microphone",
        camera=True,
    ),
    DemoUnit("amb-4", "ptbxl/00003_hr", 0.0, "normal 12-lead (PTB-XL 3)"),
    DemoUnit(
        "amb-5",
        "mitdb/119",
        0.0,
        "ventricular bigeminy (MIT-BIH 119); its MLII electrode is off 60-90 s of every 5 min"
        " (V1 carries the analysis then)",
        detach=Detachment("MLII", 60.0, 90.0, 300.0),
    ),
)


def crew_token(issuer: TokenIssuer, unit_id: str) -> Callable[[], str]:
    """A fresh crew token for ``unit_id`` each call (the tablet's login, simulated)."""
    return lambda: issuer.mint(f"tablet-{unit_id}", "crew", unit=unit_id)


class _ServerStopped(Exception):
    """The demo's hub server has stopped: the fleet's tasks are cancelled."""


async def run_demo(*, port: int, data_dir: Path, secret: str, out: TextIO) -> None:
    """Run until cancelled or the server stops (Ctrl-C, SIGTERM)."""
    try:
        await _run_demo(port=port, data_dir=data_dir, secret=secret, out=out)
    except* _ServerStopped:
        pass


async def _run_demo(*, port: int, data_dir: Path, secret: str, out: TextIO) -> None:
    if data_dir.exists():
        shutil.rmtree(data_dir)  # a fresh demo each time: new cases, empty buffers
    password = secrets.token_urlsafe(6)
    settings = HubSettings(
        port=port,
        data_dir=data_dir / "hub",
        token_secret=secret,
        ice_host_addresses=("127.0.0.1",),
        allowed_origins=(f"http://127.0.0.1:{port}", f"http://localhost:{port}"),
        demo_password=password,
    )
    app = KeepLifespanState(create_app(settings))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    issuer = TokenIssuer(secret)
    async with asyncio.TaskGroup() as tasks:
        serving = tasks.create_task(server.serve())
        while not server.started:
            if serving.done():
                return
            await asyncio.sleep(0.05)
        clients = []
        for unit in FLEET:
            client = build_client(
                record_path(unit.record),
                hub_url=f"http://127.0.0.1:{port}",
                unit_id=unit.unit_id,
                buffer_dir=data_dir / "tablets" / unit.unit_id,
                token=crew_token(issuer, unit.unit_id),
                start_s=unit.start_s,
                media=MediaChoice(camera="test", mic="tone") if unit.camera else None,
                detach=unit.detach,
            )
            clients.append((unit, client))
            tasks.create_task(client.run())
        base = f"http://127.0.0.1:{port}"
        by_unit = {unit.unit_id: client for unit, client in clients}
        fleet_lines = start_fleet(tasks, app.state["hub"], by_unit, issuer, base)
        print(f"ambulink demo: hub on {base}  (Ctrl-C to stop; {base}/ lists the pages)", file=out)
        print(f"demo login password: {password}", file=out)
        print(f"live viewer (pick a unit there): {base}/viewer", file=out)
        print(f"consult rooms (sign in, pick a case): {base}/consult", file=out)
        print("fleet:", file=out)
        for unit, _ in clients:
            print(f"  {unit.unit_id}: {unit.what}", file=out)
        for line in fleet_lines:
            print(line, file=out)
        out.flush()
        # The server stops on Ctrl-C or SIGTERM; the simulated fleet stops with it (else the
        # task group would wait for tablets that reconnect forever).
        await serving
        raise _ServerStopped
