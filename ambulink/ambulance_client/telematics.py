"""The tablet's fleet reports (docs/fleet.md): status, position and link, once a second.

Two transports carry the same payloads: MQTT (aiomqtt, the unit's own credentials, QoS 1, the
status retained) when a broker is configured, else the uplink's data channel through
``AmbulanceClient.send_telematics``. A status that could not be sent (no link) is sent again
on the next tick, so a change made in a dead zone reaches dispatch when the unit leaves it.

``RouteSimulator`` is pure: where a simulated unit is at time ``t`` on a back-and-forth route,
what its status is, and what its radio sees (``none`` inside the dead zone). ``TelematicsRunner``
drives it in real time and, in the dead zone, really cuts the client's uplink (its disk buffer
fills, then drains after it).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from ambulink.ambulance_client.uplink import AmbulanceClient
from ambulink.protocol.telematics import (
    LinkReport,
    PositionReport,
    Radio,
    StatusReport,
    UnitStatus,
    encode_report,
    parse_mqtt_url,
    topic,
)

logger = logging.getLogger(__name__)

EARTH_RADIUS_M = 6_371_000.0


class Transport(Protocol):
    async def send(self, kind: str, data: dict[str, Any]) -> bool:
        """Send one report; False when it could not go now (no link)."""
        ...


class ChannelTransport:
    """Reports inside the uplink's data channel (no broker configured)."""

    def __init__(self, client: AmbulanceClient) -> None:
        self.client = client

    async def send(self, kind: str, data: dict[str, Any]) -> bool:
        return self.client.send_telematics(kind, data)


class MqttTransport:
    """Reports to the broker as the unit (``mqtt://unit:password@host:port``)."""

    def __init__(self, client: Any) -> None:
        self._client = client  # an aiomqtt.Client, connected

    async def send(self, kind: str, data: dict[str, Any]) -> bool:
        import aiomqtt

        payload = encode_report(_model(kind, data))
        try:
            await self._client.publish(
                topic(data["unit_id"], kind), payload, qos=1, retain=kind == "status"
            )
        except aiomqtt.MqttError:
            return False
        return True


@asynccontextmanager
async def mqtt_transport(url: str, unit_id: str) -> AsyncIterator[MqttTransport]:
    """A connected ``MqttTransport`` with a persistent session (client id ``tablet-<unit>``)."""
    import aiomqtt

    target = parse_mqtt_url(url)
    async with aiomqtt.Client(
        target.host,
        target.port,
        username=target.username,
        password=target.password,
        identifier=f"tablet-{unit_id}",
        clean_session=False,
    ) as client:
        yield MqttTransport(client)


def _model(kind: str, data: dict[str, Any]) -> StatusReport | PositionReport | LinkReport:
    match kind:
        case "status":
            return StatusReport.model_validate(data)
        case "position":
            return PositionReport.model_validate(data)
        case _:
            return LinkReport.model_validate(data)


@dataclass(frozen=True)
class DeadZone:
    """A circle (centre in degrees, radius in m) with no radio coverage."""

    lat: float
    lon: float
    radius_m: float


@dataclass(frozen=True)
class RoutePoint:
    lat: float
    lon: float
    speed_mps: float
    heading_deg: float
    status: UnitStatus
    radio: Radio
    rtt_ms: float
    loss_pct: float
    uplink_kbps: float
    signal_dbm: float

    @property
    def in_dead_zone(self) -> bool:
        return self.radio == "none"


def _distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    p1, p2 = math.radians(a[0]), math.radians(b[0])
    dp, dl = p2 - p1, math.radians(b[1] - a[1])
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def _bearing_deg(a: tuple[float, float], b: tuple[float, float]) -> float:
    p1, p2 = math.radians(a[0]), math.radians(b[0])
    dl = math.radians(b[1] - a[1])
    x = math.sin(dl) * math.cos(p2)
    y = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(x, y)) % 360.0


@dataclass(frozen=True)
class RouteSimulator:
    """A unit driving ``waypoints`` out and back at ``speed_mps``: ``en_route`` out, ``on_scene``
    for ``dwell_s`` at the far end, ``transporting`` back, ``at_hospital`` for ``dwell_s`` at
    the start, and again. Pure: ``at(t)`` for ``t`` seconds since the start."""

    waypoints: Sequence[tuple[float, float]]
    speed_mps: float = 14.0
    dwell_s: float = 60.0
    dead_zone: DeadZone | None = None

    def __post_init__(self) -> None:
        if len(self.waypoints) < 2 or self.speed_mps <= 0 or self.dwell_s < 0:
            raise ValueError("a route needs 2+ waypoints, a positive speed, dwell >= 0")

    @property
    def legs_m(self) -> list[float]:
        return [_distance_m(a, b) for a, b in zip(self.waypoints, self.waypoints[1:], strict=False)]

    def at(self, t: float) -> RoutePoint:
        legs = self.legs_m
        length = sum(legs)
        drive = length / self.speed_mps
        cycle = 2 * (drive + self.dwell_s)
        phase = t % cycle
        if phase < drive:
            status: UnitStatus = "en_route"
            along, forward, moving = phase * self.speed_mps, True, True
        elif phase < drive + self.dwell_s:
            status, along, forward, moving = "on_scene", length, True, False
        elif phase < 2 * drive + self.dwell_s:
            status = "transporting"
            along = length - (phase - drive - self.dwell_s) * self.speed_mps
            forward, moving = False, True
        else:
            status, along, forward, moving = "at_hospital", 0.0, False, False
        lat, lon, heading = self._place(legs, along, forward)
        return self._radio(lat, lon, heading, self.speed_mps if moving else 0.0, status)

    def _place(self, legs: list[float], along: float, forward: bool) -> tuple[float, float, float]:
        for i, leg in enumerate(legs):
            a, b = self.waypoints[i], self.waypoints[i + 1]
            if along <= leg or i == len(legs) - 1:
                f = 0.0 if leg == 0 else min(max(along / leg, 0.0), 1.0)
                lat = a[0] + (b[0] - a[0]) * f
                lon = a[1] + (b[1] - a[1]) * f
                heading = _bearing_deg(a, b) if forward else _bearing_deg(b, a)
                return lat, lon, heading
            along -= leg
        raise AssertionError("unreachable: the last leg returns")

    def _radio(
        self, lat: float, lon: float, heading: float, speed: float, status: UnitStatus
    ) -> RoutePoint:
        zone = self.dead_zone
        d = math.inf if zone is None else _distance_m((lat, lon), (zone.lat, zone.lon))
        if zone is not None and d <= zone.radius_m:
            return RoutePoint(lat, lon, speed, heading, status, "none", 0.0, 100.0, 0.0, -140.0)
        if zone is not None and d <= 3 * zone.radius_m:  # the edge of coverage
            return RoutePoint(lat, lon, speed, heading, status, "3G", 320.0, 6.0, 400.0, -108.0)
        return RoutePoint(lat, lon, speed, heading, status, "LTE", 55.0, 0.3, 4000.0, -82.0)


def simulated_route(
    index: int, start: tuple[float, float], *, dead_zone_m: float | None = None
) -> RouteSimulator:
    """A 3-5 km route out of ``start`` (lat, lon), in a direction set by ``index`` (so units
    of one fleet spread out), bending at its middle; a radio dead zone of ``dead_zone_m``
    metres around the bend when given."""
    bearing = math.radians(37.0 * index)
    length_deg = 0.03 + 0.01 * (index % 3)
    mid = (
        start[0] + 0.5 * length_deg * math.cos(bearing),
        start[1] + 0.5 * length_deg * math.sin(bearing) / math.cos(math.radians(start[0])),
    )
    end = (
        start[0] + length_deg * math.cos(bearing + 0.3),
        start[1] + length_deg * math.sin(bearing + 0.3) / math.cos(math.radians(start[0])),
    )
    zone = None if dead_zone_m is None else DeadZone(mid[0], mid[1], dead_zone_m)
    return RouteSimulator(
        [start, mid, end], speed_mps=12.0 + index % 4, dwell_s=45.0, dead_zone=zone
    )


class TelematicsRunner:
    """Sends a unit's reports every ``every_s`` from a ``RouteSimulator``; in the dead zone it
    cuts the client's uplink (when a client is given) and the radio reports ``none``."""

    def __init__(
        self,
        unit_id: str,
        route: RouteSimulator,
        transport: Transport,
        *,
        client: AmbulanceClient | None = None,
        every_s: float = 1.0,
        clock: Callable[[], float] = time.time,
        offset_s: float = 0.0,
        destination: str | None = None,
    ) -> None:
        self.unit_id = unit_id
        self.route = route
        self.transport = transport
        self.client = client
        self.every_s = every_s
        self.clock = clock
        self.offset_s = offset_s  # where on its route the unit starts (s)
        self.destination = destination  # the hospital it transports to
        self.seq = 0
        self._status: UnitStatus | None = None
        self._status_at = 0.0
        self._status_pending = False

    async def run(self) -> None:
        t0 = self.clock()
        while True:
            await self.tick(self.clock() - t0 + self.offset_s)
            await asyncio.sleep(self.every_s)

    async def tick(self, t: float) -> RoutePoint:
        point = self.route.at(t)
        now = self.clock()
        if self.client is not None and point.in_dead_zone != self.client.link_cut:
            logger.info(
                "unit %s %s the dead zone",
                self.unit_id,
                "enters" if point.in_dead_zone else "leaves",
            )
            self.client.cut_link(point.in_dead_zone)
        if point.status != self._status:
            self._status, self._status_at, self.seq = point.status, now, self.seq + 1
            self._status_pending = True
        if self._status_pending:
            self._status_pending = not await self.transport.send("status", self._status_data())
        await self.transport.send(
            "position",
            {
                "v": 1,
                "unit_id": self.unit_id,
                "lat": round(point.lat, 6),
                "lon": round(point.lon, 6),
                "speed_mps": point.speed_mps,
                "heading_deg": round(point.heading_deg, 1),
                "accuracy_m": 8.0,
                "at": now,
            },
        )
        await self.transport.send("link", self._link_data(point, now))
        return point

    def _status_data(self) -> dict[str, Any]:
        case_id = None if self.client is None else self.client.case_id
        return {
            "v": 1,
            "unit_id": self.unit_id,
            "status": self._status,
            "case_id": case_id,
            "destination": self.destination if self._status == "transporting" else None,
            "at": self._status_at,
            "seq": self.seq,
        }

    def _link_data(self, point: RoutePoint, now: float) -> dict[str, Any]:
        buffered = 0
        if self.client is not None:
            buffered = max(self.client.status.made_seq - self.client.status.acked_seq, 0)
        return {
            "v": 1,
            "unit_id": self.unit_id,
            "rtt_ms": point.rtt_ms,
            "loss_pct": point.loss_pct,
            "uplink_kbps": point.uplink_kbps,
            "radio": point.radio,
            "signal_dbm": point.signal_dbm,
            "buffered_frames": buffered,
            "at": now,
        }
