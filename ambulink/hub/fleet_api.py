"""Fleet REST routes and the ``/ws/fleet`` socket (docs/fleet.md).

The socket authenticates like every member socket (``viewers.authenticate``: Origin check, then
the token as the first message). Dispatch and admin get every unit and, every 10 s, the network
weather; a crew token gets only its own unit. Each socket follows the bus topic
``fleet:updates`` itself, so a slow dispatcher only delays itself.
"""

# No `from __future__ import annotations`: FastAPI must see the factory-local GrantDep.

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, Field

from ambulink.hub.alarm_service import AlarmService
from ambulink.hub.alarms.model import alarm_to_json
from ambulink.hub.bus import Bus
from ambulink.hub.fleet import Fleet, UnknownUnit
from ambulink.hub.fleet_region import fleet_config
from ambulink.hub.fleet_service import FLEET_TOPIC, FleetService
from ambulink.hub.ingest import Ingest
from ambulink.hub.settings import HubSettings
from ambulink.hub.tokens import Forbidden, Grant
from ambulink.hub.viewers import MemberSession, authenticate, now_id
from ambulink.protocol.telematics import UnitStatus

logger = logging.getLogger(__name__)

WEATHER_EVERY_S = 10.0
READ_BLOCK_MS = 250
READ_COUNT = 2000


@asynccontextmanager
async def open_fleet(
    settings: HubSettings, bus: Bus, alarms: AlarmService, ingest: Ingest
) -> AsyncIterator[FleetService]:
    """The hub's fleet for its lifetime: the model, its publishing loops, the ECG hook that
    gives data age, and the MQTT session when ``settings.mqtt_url`` is set."""
    service = FleetService(
        Fleet(fleet_config(settings.fleet_path)),
        bus,
        lambda: [alarm_to_json(a) for a in alarms.ledger.active()],
    )
    ingest.stored_listeners.append(service.on_ecg_stored)
    async with service.running():
        if settings.mqtt_url is None:
            yield service
            return
        from ambulink.hub.mqtt import fleet_mqtt  # aiomqtt only when a broker is configured

        async with fleet_mqtt(settings.mqtt_url, service.apply) as link:
            service.status_out = link.publish_status
            service.mqtt = link
            yield service


class StatusChange(BaseModel):
    status: UnitStatus
    destination: str | None = Field(default=None, max_length=128)


class Readiness(BaseModel):
    ready: bool


def _fleet(request: Request) -> FleetService:
    service: FleetService | None = getattr(request.state.hub, "fleet", None)
    if service is None:
        raise UnknownUnit("this hub runs no fleet")
    return service


def fleet_routes(grant_of: Callable[..., Grant]) -> APIRouter:
    """The REST routes; ``grant_of`` is the hub's token dependency."""
    router = APIRouter()
    GrantDep = Annotated[Grant, Depends(grant_of)]

    @router.get("/api/fleet")
    async def get_fleet(request: Request, grant: GrantDep) -> dict[str, object]:
        grant.require("dispatch")
        snapshot = _fleet(request).snapshot()
        return {"units": snapshot["units"], "hospitals": snapshot["hospitals"]}

    @router.get("/api/units/{unit_id}")
    async def get_unit(unit_id: str, request: Request, grant: GrantDep) -> dict[str, object]:
        _require_unit(grant, unit_id, ("dispatch",))
        service = _fleet(request)
        service.fleet.unit(unit_id)
        return service.unit_json(unit_id)

    @router.post("/api/units/{unit_id}/status")
    async def post_status(
        unit_id: str, body: StatusChange, request: Request, grant: GrantDep
    ) -> dict[str, object]:
        _require_unit(grant, unit_id, ("dispatch",))
        keep = "destination" not in body.model_fields_set
        return await _fleet(request).set_status(unit_id, body.status, body.destination, keep)

    @router.post("/api/cases/{case_id}/close")
    async def close_case(case_id: str, request: Request, grant: GrantDep) -> dict[str, object]:
        hub = request.state.hub
        owner = (await hub.store.get_case(case_id)).unit_id
        grant.require("crew", unit=owner)
        _fleet(request).close_case(owner, case_id)
        return {"case_id": case_id, "unit_id": owner, "closed": True}

    @router.post("/api/hospitals/{hospital_id}/ready")
    async def post_ready(
        hospital_id: str, body: Readiness, request: Request, grant: GrantDep
    ) -> dict[str, object]:
        grant.require("dispatch", "specialist")
        return _fleet(request).set_ready(hospital_id, body.ready)

    return router


def _require_unit(grant: Grant, unit_id: str, roles: tuple[str, ...]) -> None:
    """Dispatch (and admin) for any unit; a crew only for its own."""
    if grant.role == "crew":
        grant.require("crew", unit=unit_id)
    else:
        grant.require(*roles)  # type: ignore[arg-type]


async def fleet_socket(websocket: WebSocket) -> None:
    """``/ws/fleet``: the fleet snapshot, then unit and hospital changes (and the weather)."""
    hub: Any = websocket.state.hub
    grant = await authenticate(websocket, hub, "fleet", ("dispatch", "crew"))
    if grant is None:
        return
    service: FleetService | None = getattr(hub, "fleet", None)
    if service is None or (grant.role == "crew" and grant.unit is None):
        why = "this hub runs no fleet" if service is None else "a crew token without a unit"
        await websocket.send_json({"type": "error", "code": Forbidden.code, "message": why})
        await websocket.close(code=1008)
        return
    only = grant.unit if grant.role == "crew" else None
    weather = grant.role in ("dispatch", "admin")
    member = MemberSession(websocket, hub, grant, None)  # sends bounded by STALLED_S
    cursor = now_id()  # taken before the snapshot: no change between them is missed
    receiving = asyncio.create_task(_drain(websocket))
    try:
        await member.send(service.snapshot(only))
        next_weather = time.monotonic()
        while not receiving.done():
            if weather and time.monotonic() >= next_weather:
                next_weather = time.monotonic() + WEATHER_EVERY_S
                await member.send(service.weather())
            entries = await hub.bus.read(
                FLEET_TOPIC, after=cursor, count=READ_COUNT, block_ms=READ_BLOCK_MS
            )
            for entry_id, fields in entries:
                cursor = entry_id
                unit = fields.get("unit", b"").decode()
                if only is not None and unit not in ("", only):
                    continue
                await member.send_text(fields["json"].decode())
    except WebSocketDisconnect:
        return
    except TimeoutError:
        await hub.audit.append(f"{grant.role}:{grant.sub}", "leave", "fleet", "stalled")
        await websocket.close(code=1008, reason="stalled")
    finally:
        receiving.cancel()


async def _drain(websocket: WebSocket) -> None:
    """The fleet socket takes no messages; this only notices the browser leaving."""
    while True:
        try:
            await websocket.receive_text()
        except (WebSocketDisconnect, RuntimeError):
            return
