"""The hub's FastAPI application: built from settings, owning its connections in the lifespan."""

from __future__ import annotations

import asyncio
import io
import logging
import secrets
import tempfile
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from ambulink.errors import AmbulinkError, ConfigError, RecordNotFound
from ambulink.hub import room_media
from ambulink.hub.alarm_service import AlarmService
from ambulink.hub.alarms import AlarmLedger
from ambulink.hub.analysis import open_analysis
from ambulink.hub.audit import AuditLog
from ambulink.hub.bus import Bus, open_bus
from ambulink.hub.fleet_api import fleet_routes, fleet_socket, open_fleet
from ambulink.hub.fleet_service import FleetService
from ambulink.hub.http_errors import error_response, invalid_request_response
from ambulink.hub.ingest import Ingest
from ambulink.hub.room_service import RoomService
from ambulink.hub.room_socket import room_socket
from ambulink.hub.settings import HubSettings
from ambulink.hub.store import CaseStore
from ambulink.hub.store_types import StoredStream
from ambulink.hub.timeline import Timeline
from ambulink.hub.tokens import Grant, InvalidToken, TokenIssuer
from ambulink.hub.uplink import UplinkSession
from ambulink.hub.viewers import dispatch_socket, viewer_socket
from ambulink.reports.ecg_image import render_12lead, render_strip
from ambulink.rooms.media_room import MediaRouter
from ambulink.rooms.model import RoomRegistry
from ambulink.rtc import restrict_ice_hosts
from ambulink.signal.analyzer import (
    MIN_ST_LEADS,
    STANDARD_12,
    choose_analysis_lead,
    choose_confirming_lead,
)
from ambulink.signal.quality import FLAT_MV

logger = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parents[1] / "web"


@dataclass
class Hub:
    """What the routes need: settings, tokens, store, bus, ingest and the live uplinks."""

    settings: HubSettings
    tokens: TokenIssuer
    store: CaseStore
    bus: Bus
    ingest: Ingest
    alarms: AlarmService
    audit: AuditLog
    fleet: FleetService | None = None  # units, hospitals and telematics (docs/fleet.md)
    rooms: RoomRegistry = field(default_factory=RoomRegistry)
    room_service: RoomService | None = None  # set in the lifespan: joins, timeline, presence
    media: MediaRouter = field(default_factory=MediaRouter)  # room media (passthrough SFU)
    uplinks: set[UplinkSession] = field(default_factory=set)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def start_uplink(self, session: UplinkSession) -> None:
        self.uplinks.add(session)
        task = asyncio.create_task(session.run())

        def done(t: asyncio.Task[None]) -> None:
            self.uplinks.discard(session)
            self.tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                session.log.error("uplink ended with an error", exc_info=t.exception())

        task.add_done_callback(done)
        self.tasks.add(task)


class CaseCreate(BaseModel):
    unit_id: str = Field(min_length=1, max_length=128)


class DemoLogin(BaseModel):
    password: str = Field(min_length=1, max_length=128)
    role: Literal["crew", "specialist", "dispatch"] = "specialist"
    unit: str | None = Field(default=None, min_length=1, max_length=128)
    name: str = Field(default="demo", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


class Offer(BaseModel):
    sdp: str = Field(min_length=1, max_length=65536)
    type: str = Field(pattern="^offer$")


def hub_of(request: Request) -> Hub:
    hub: Hub = request.state.hub
    return hub


HubDep = Annotated[Hub, Depends(hub_of)]


def grant_of(request: Request, authorization: Annotated[str | None, Header()] = None) -> Grant:
    """The request's token, from ``Authorization: Bearer <token>`` (never from the URL)."""
    hub = hub_of(request)
    if authorization is None or not authorization.startswith("Bearer "):
        raise InvalidToken("send Authorization: Bearer <token>")
    return hub.tokens.verify(authorization.removeprefix("Bearer ").strip())


GrantDep = Annotated[Grant, Depends(grant_of)]


def create_app(settings: HubSettings) -> FastAPI:
    """The hub: REST, the uplink signalling endpoint, the viewer WebSocket and web pages."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Hub]]:
        restrict_ice_hosts(settings.ice_host_addresses)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        async with AsyncExitStack() as stack:
            store = await CaseStore.open(settings.store_path)
            stack.push_async_callback(store.close)
            bus = await stack.enter_async_context(open_bus(settings.redis_url))
            analysis = open_analysis(settings.analysis)
            stack.callback(analysis.close)
            ingest = await stack.enter_async_context(Ingest(store, bus, analysis).running())
            alarms = await stack.enter_async_context(
                AlarmService(
                    bus, settings.data_dir / "alarms.sqlite3", ledger=AlarmLedger(settings.alarms)
                ).running()
            )
            ingest.listeners.append(alarms.on_event)
            audit = await AuditLog(settings.data_dir / "audit.sqlite3").open()
            stack.push_async_callback(audit.close)
            fleet = await stack.enter_async_context(open_fleet(settings, bus, alarms, ingest))
            hub = Hub(
                settings,
                TokenIssuer(settings.token_secret, settings.token_ttl_s),
                store,
                bus,
                ingest,
                alarms,
                audit,
            )
            timeline = await Timeline(settings.data_dir / "timeline.sqlite3", bus).open()
            stack.push_async_callback(timeline.close)
            hub.room_service = await stack.enter_async_context(
                RoomService(hub.rooms, timeline, bus, store, audit).running()
            )
            ingest.open_listeners.append(hub.room_service.on_stream_open)
            hub.fleet = fleet
            try:
                yield {"hub": hub}
            finally:
                for session in list(hub.uplinks):
                    await session.close()
                await hub.media.close()
                if hub.tasks:
                    await asyncio.gather(*hub.tasks, return_exceptions=True)

    app = FastAPI(title="ambulink hub", lifespan=lifespan)
    app.add_exception_handler(AmbulinkError, error_response)
    app.add_exception_handler(RequestValidationError, invalid_request_response)

    @app.get("/healthz")
    async def health() -> dict[str, str]:
        """Liveness for a load balancer; says nothing about cases."""
        return {"status": "ok"}

    @app.post("/api/demo/login")
    async def demo_login(body: DemoLogin, hub: HubDep) -> dict[str, object]:
        """A token for the demo's web pages (specialist by default; crew needs ``unit``); only
        when a demo password is set. ``name`` tells demo users apart in rooms and audit."""
        expected = hub.settings.demo_password
        if expected is None or not secrets.compare_digest(body.password, expected):
            raise InvalidToken("wrong demo password (or this hub is not running a demo)")
        if body.role == "crew" and body.unit is None:
            raise ConfigError("a crew login needs the unit it crews")
        unit = body.unit if body.role == "crew" else None
        token = hub.tokens.mint(f"demo-{body.role}-{body.name}", body.role, unit=unit)
        return {"token": token, "role": body.role, "expires_in_s": hub.settings.token_ttl_s}

    @app.post("/api/token/refresh")
    async def refresh_token(hub: HubDep, grant: GrantDep) -> dict[str, object]:
        """The caller's token renewed (same claims, a new short lifetime) while it is valid;
        pages call this before expiry. Sessions end 12 h after sign-in."""
        return {"token": hub.tokens.refresh(grant), "expires_in_s": hub.settings.token_ttl_s}

    @app.post("/api/cases", status_code=201)
    async def create_case(body: CaseCreate, hub: HubDep, grant: GrantDep) -> dict[str, str]:
        grant.require("crew", unit=body.unit_id)
        case_id = await hub.store.create_case(body.unit_id)
        if hub.fleet is not None:
            hub.fleet.open_case(body.unit_id, case_id)
        return {"case_id": case_id}

    @app.get("/api/cases")
    async def list_cases(hub: HubDep, grant: GrantDep) -> list[dict[str, object]]:
        grant.require("crew", "specialist", "dispatch")
        return [_plain(c) for c in await hub.store.list_cases()]

    @app.get("/api/cases/{case_id}/streams")
    async def list_streams(case_id: str, hub: HubDep, grant: GrantDep) -> list[dict[str, object]]:
        grant.require("crew", "specialist", "dispatch")
        return [_plain(s) for s in await hub.store.list_streams(case_id)]

    @app.get("/api/cases/{case_id}/vitals")
    async def list_vitals(case_id: str, hub: HubDep, grant: GrantDep) -> Response:
        grant.require("crew", "specialist", "dispatch")
        rows = await hub.store.list_vitals(case_id)
        body = "[" + ",".join(text for _, text in rows) + "]"
        return Response(body, media_type="application/json")

    @app.get("/api/cases/{case_id}/streams/{stream_id}/wfdb")
    async def export_wfdb(case_id: str, stream_id: int, hub: HubDep, grant: GrantDep) -> Response:
        """The stored stream as a WFDB record (.hea + .dat) in a zip file."""
        grant.require("crew", "specialist")
        with tempfile.TemporaryDirectory() as folder:
            header = await hub.store.export_wfdb(case_id, stream_id, Path(folder))
            data = io.BytesIO()
            with zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED) as archive:
                for path in sorted(Path(folder).iterdir()):
                    archive.write(path, path.name)
        return Response(
            data.getvalue(),
            media_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="{header.stem}.zip"'},
        )

    @app.get("/api/cases/{case_id}/streams/{stream_id}/evidence.png")
    async def evidence_image(
        case_id: str, stream_id: int, start: int, end: int, hub: HubDep, grant: GrantDep
    ) -> Response:
        """An alarm's evidence as a picture at 25 mm/s, 10 mm/mV: the standard 12-lead page for
        a 12-lead stream (STEMI), else a strip of the analysed lead."""
        grant.require("crew", "specialist", "dispatch")
        if not 0 <= start < end or end - start > MAX_EVIDENCE_SAMPLES:
            raise ConfigError(
                f"evidence must be 1-{MAX_EVIDENCE_SAMPLES} samples from start >= 0, "
                f"got {start}-{end}"
            )
        stored = await hub.store.read_samples(case_id, stream_id)
        png = await asyncio.get_running_loop().run_in_executor(
            None, render_evidence, stored, start, end
        )
        return Response(png, media_type="image/png")

    @app.post("/api/uplink/offer")
    async def uplink_offer(offer: Offer, hub: HubDep, grant: GrantDep) -> dict[str, str]:
        """WebRTC signalling for one ambulance uplink: the tablet's offer in, the answer out."""
        grant.require("crew")
        session = UplinkSession(
            grant,
            hub.ingest,
            telematics=None if hub.fleet is None else hub.fleet.apply,
            media=hub.media,
            rooms=hub.rooms,
            heartbeat_interval_s=hub.settings.heartbeat_interval_s,
            heartbeat_misses=hub.settings.heartbeat_misses,
        )
        answer = await session.answer(offer.sdp, offer.type)
        hub.start_uplink(session)
        return {"sdp": answer.sdp, "type": answer.type}

    app.add_api_websocket_route("/ws/cases/{case_id}", viewer_socket)
    app.include_router(room_media.router)
    app.add_api_websocket_route("/ws/dispatch", dispatch_socket)
    app.add_api_websocket_route("/ws/fleet", fleet_socket)
    app.include_router(fleet_routes(grant_of))
    app.add_api_websocket_route("/ws/rooms/{case_id}", room_socket)

    @app.get("/", include_in_schema=False)
    async def index_page() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", media_type="text/html")

    @app.get("/viewer")
    async def viewer_page() -> FileResponse:
        return FileResponse(WEB_DIR / "viewer.html", media_type="text/html")

    def page(name: str) -> Callable[[], Awaitable[FileResponse]]:
        async def serve() -> FileResponse:
            return FileResponse(WEB_DIR / f"{name}.html", media_type="text/html")

        return serve

    for name in PAGES:  # the browser apps; each signs in with a token (see web/js/session.js)
        app.add_api_route(f"/{name}", page(name), methods=["GET"], include_in_schema=False)
    app.mount("/web", StaticFiles(directory=WEB_DIR, html=False), name="web")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s", request.url.path)
        return JSONResponse(
            {"error": {"code": "internal", "message": "internal error; see the hub's log"}},
            status_code=500,
        )

    return app


PAGES = ("consult", "dispatch", "crew")
MAX_EVIDENCE_SAMPLES = 60 * 2000  # a minute at the highest sampling rate


def strip_lead(signals_mv: np.ndarray, fs: float, leads: list[str]) -> int:
    """The lead a one-strip evidence image shows: the analysis lead, or the backup lead that
    carried the beats when the analysis lead was flat (off) for most of the strip."""
    lead = choose_analysis_lead(leads)
    backup = choose_confirming_lead(leads, lead)
    second = max(int(fs), 1)
    blocks = [signals_mv[i : i + second, lead] for i in range(0, len(signals_mv), second)]
    flat = sum(float(np.ptp(b)) < FLAT_MV for b in blocks if b.size)
    return backup if backup is not None and flat > len(blocks) / 2 else lead


def render_evidence(stored: StoredStream, start: int, end: int) -> bytes:
    """PNG of stream samples ``[start, end)``: a 12-lead page when the stream has the standard
    leads, else a strip of the lead rhythm analysis uses."""
    lo = max(start - stored.first_sample, 0)
    hi = max(min(end - stored.first_sample, len(stored.samples)), lo)
    if hi == lo:
        raise RecordNotFound(f"the stream holds no samples in {start}-{end}")
    signals = stored.samples[lo:hi].astype(np.float64) / stored.gain
    leads = list(stored.leads)
    title = f"evidence, samples {start}-{end}"
    if len(STANDARD_12.intersection(name.strip().upper() for name in leads)) >= MIN_ST_LEADS:
        return render_12lead(signals, stored.fs, leads, title=title).png
    lead = strip_lead(signals, stored.fs, leads)
    seconds = min((hi - lo) / stored.fs, 60.0)
    return render_strip(signals[:, lead], stored.fs, leads[lead], seconds=seconds, title=title).png


def _plain(item: object) -> dict[str, object]:
    from dataclasses import asdict, is_dataclass

    if is_dataclass(item) and not isinstance(item, type):
        return asdict(item)
    raise TypeError(f"cannot serialise {type(item).__name__}")
