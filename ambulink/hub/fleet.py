"""The fleet as dispatch sees it (docs/fleet.md): units, hospitals, link weather. Pure: no I/O,
no clock; every method that needs the time takes ``now`` (Unix seconds).

Reports come in through ``Fleet.apply`` whatever carried them (MQTT or the data channel). A
report from an unknown unit, out of range, or stamped in the future is refused and counted; the
unit keeps its last good state, and a position that would mean moving faster than
``MAX_IMPLIED_SPEED_MPS`` since the last fix is refused too, so the map never shows a jump.
Older reports than the unit's newest (a redelivery, a duplicate) are ignored, not counted.

ETA is the great-circle distance to the destination hospital divided by the unit's speed, with
a 40 km/h floor when it is slower or stopped: a straight-line estimate, not a road route.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ambulink.errors import AmbulinkError, ConfigError, ProtocolError
from ambulink.protocol.telematics import (
    LinkReport,
    PositionReport,
    Report,
    StatusReport,
    check_fresh,
    kind_of,
    parse_report,
)

EARTH_RADIUS_M = 6_371_000.0
ETA_FLOOR_MPS = 40 / 3.6  # 40 km/h
MAX_IMPLIED_SPEED_MPS = 100.0  # 360 km/h between two fixes: a GNSS glitch, not an ambulance
STATUS_HISTORY = 20
LINK_HISTORY_S = 600.0
LINK_HISTORY_STEP_S = 10.0
WEATHER_WINDOW_S = 3600.0
WEATHER_CELL_DEG = 0.01
WEATHER_BUCKET_S = 60.0

Quality = Literal["good", "fair", "poor", "none"]


class UnknownUnit(AmbulinkError, LookupError):
    code = "unknown_unit"


class UnknownHospital(AmbulinkError, LookupError):
    code = "unknown_hospital"


@dataclass(frozen=True)
class Hospital:
    hospital_id: str
    name: str
    lat: float
    lon: float
    cath_lab: bool = False
    stroke_unit: bool = False


@dataclass(frozen=True)
class FleetConfig:
    """The units the hub accepts reports from, and the hospitals they take patients to."""

    units: tuple[str, ...]
    hospitals: tuple[Hospital, ...]

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> FleetConfig:
        """``{"units": ["amb-1", ...], "hospitals": [{"hospital_id", "name", "lat", "lon",
        "cath_lab"?, "stroke_unit"?}, ...]}``; ``ConfigError`` naming what is wrong."""
        units = data.get("units")
        hospitals = data.get("hospitals")
        if not isinstance(units, list) or not all(isinstance(u, str) and u for u in units):
            raise ConfigError("fleet config: 'units' must be a list of unit ids")
        if not isinstance(hospitals, list):
            raise ConfigError("fleet config: 'hospitals' must be a list of objects")
        parsed = []
        for i, item in enumerate(hospitals):
            try:
                assert isinstance(item, dict)
                lat, lon = float(item["lat"]), float(item["lon"])
                if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                    raise ValueError("lat/lon out of range")
                parsed.append(
                    Hospital(
                        str(item["hospital_id"]),
                        str(item["name"]),
                        lat,
                        lon,
                        bool(item.get("cath_lab", False)),
                        bool(item.get("stroke_unit", False)),
                    )
                )
            except (AssertionError, KeyError, TypeError, ValueError) as exc:
                raise ConfigError(
                    f"fleet config: hospital {i} needs hospital_id, name, lat, lon ({exc})"
                ) from None
        return cls(tuple(units), tuple(parsed))

    @classmethod
    def load(cls, path: Path) -> FleetConfig:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"fleet config {path} cannot be read as JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"fleet config {path} must hold a JSON object")
        return cls.from_mapping(data)


def great_circle_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def link_score(link: LinkReport) -> float:
    """0 (no link) .. 1 (good): loss weighs most, then round-trip time, then bitrate."""
    if link.radio == "none":
        return 0.0
    score = 1.0
    score -= 0.5 * min(link.loss_pct / 10.0, 1.0)
    score -= 0.3 * min(max(link.rtt_ms - 50.0, 0.0) / 450.0, 1.0)
    score -= 0.2 * (1.0 - min(link.uplink_kbps / 1000.0, 1.0))
    return max(score, 0.0)


def link_quality(link: LinkReport) -> Quality:
    score = link_score(link)
    if link.radio == "none" or score <= 0.0:
        return "none"
    return "good" if score >= 0.75 else "fair" if score >= 0.5 else "poor"


@dataclass
class UnitState:
    unit_id: str
    status: str = "available"
    status_since: float | None = None
    status_at: float = -1.0
    status_seq: int = -1
    status_history: deque[tuple[str, float]] = field(
        default_factory=lambda: deque(maxlen=STATUS_HISTORY)
    )
    case_id: str | None = None
    destination: str | None = None
    position: PositionReport | None = None
    link: LinkReport | None = None
    link_history: deque[LinkReport] = field(default_factory=deque)
    rejected: int = 0


@dataclass
class Fleet:
    """Units and hospitals; see the module docstring."""

    config: FleetConfig
    units: dict[str, UnitState] = field(init=False)
    hospitals: dict[str, Hospital] = field(init=False)
    ready: dict[str, bool] = field(init=False)
    unknown_rejected: int = 0
    last_ecg_at: dict[str, float] = field(default_factory=dict)  # case_id -> newest stored ECG
    closed_cases: set[str] = field(default_factory=set)
    weather_samples: dict[tuple[int, int], deque[list[float]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.units = {u: UnitState(u) for u in self.config.units}
        self.hospitals = {h.hospital_id: h for h in self.config.hospitals}
        self.ready = {h: False for h in self.hospitals}

    def unit(self, unit_id: str) -> UnitState:
        state = self.units.get(unit_id)
        if state is None:
            raise UnknownUnit(f"unit {unit_id!r} is not in this hub's fleet")
        return state

    def apply(
        self,
        unit_id: str,
        kind: str,
        payload: bytes | str | Mapping[str, object] | Report,
        now: float,
    ) -> bool:
        """Apply one report sent by ``unit_id`` (the MQTT topic's or the token's unit); True if
        it changed the unit, False for an old or repeated one. A refused report raises
        ``UnknownUnit`` or ``ProtocolError`` and is counted; the unit keeps its state."""
        state = self.units.get(unit_id)
        if state is None:
            self.unknown_rejected += 1
            raise UnknownUnit(f"unit {unit_id!r} is not in this hub's fleet")
        try:
            if isinstance(payload, StatusReport | PositionReport | LinkReport):
                report: Report = payload
                if kind_of(report) != kind:
                    raise ProtocolError(f"a {kind_of(report)} report sent as {kind}")
            else:
                report = parse_report(kind, payload)
            if report.unit_id != unit_id:
                raise ProtocolError(f"a report for unit {report.unit_id} sent by {unit_id}")
            check_fresh(report, now)
            match report:
                case StatusReport():
                    return self._status(state, report)
                case PositionReport():
                    return self._position(state, report)
                case LinkReport():
                    return self._link(state, report, now)
        except ProtocolError:
            state.rejected += 1
            raise

    def _status(self, state: UnitState, report: StatusReport) -> bool:
        if (report.at, report.seq) <= (state.status_at, state.status_seq):
            return False
        if report.destination is not None and report.destination not in self.hospitals:
            raise ProtocolError("status destination is not a known hospital")
        if report.status != state.status or state.status_since is None:
            state.status_since = report.at
            state.status_history.append((report.status, report.at))
        state.status, state.status_at, state.status_seq = report.status, report.at, report.seq
        state.case_id, state.destination = report.case_id, report.destination
        return True

    def _position(self, state: UnitState, report: PositionReport) -> bool:
        last = state.position
        if last is not None:
            if report.at <= last.at:
                return False
            moved_m = great_circle_m(last.lat, last.lon, report.lat, report.lon)
            if moved_m > MAX_IMPLIED_SPEED_MPS * (report.at - last.at) + report.accuracy_m:
                raise ProtocolError(
                    f"position implies more than {MAX_IMPLIED_SPEED_MPS:.0f} m/s since the last fix"
                )
        state.position = report
        return True

    def _link(self, state: UnitState, report: LinkReport, now: float) -> bool:
        if state.link is not None and report.at <= state.link.at:
            return False
        state.link = report
        history = state.link_history
        if not history or report.at - history[-1].at >= LINK_HISTORY_STEP_S:
            history.append(report)  # one sample per 10 s keeps every Unit message small
        while state.link_history and state.link_history[0].at < now - LINK_HISTORY_S:
            state.link_history.popleft()
        if state.position is not None:
            cell = (
                round(state.position.lat / WEATHER_CELL_DEG),
                round(state.position.lon / WEATHER_CELL_DEG),
            )
            # One running sum per cell and minute keeps an hour of 500 units at 1 Hz small.
            buckets = self.weather_samples.setdefault(cell, deque())
            minute = report.at // WEATHER_BUCKET_S * WEATHER_BUCKET_S
            if buckets and buckets[-1][0] == minute:
                buckets[-1][1] += link_score(report)
                buckets[-1][2] += 1
            else:
                buckets.append([minute, link_score(report), 1])
        return True

    def open_case(self, unit_id: str, case_id: str) -> bool:
        """The crew opened ``case_id`` on ``unit_id``; True if the unit is in the fleet."""
        self.closed_cases.discard(case_id)
        state = self.units.get(unit_id)
        if state is None:
            return False
        state.case_id = case_id
        return True

    def close_case(self, case_id: str) -> None:
        """Detach ``case_id`` from its unit for good: ECG still arriving for it (a stream
        finishing its backfill) does not attach it again."""
        self.closed_cases.add(case_id)
        for state in self.units.values():
            if state.case_id == case_id:
                state.case_id = None

    def ecg_stored(self, unit_id: str, case_id: str, newest_at: float) -> bool:
        """The hub stored ECG of ``case_id`` up to ``newest_at``; links the case to its unit
        when no status named it yet. True if the unit is in the fleet."""
        if newest_at > self.last_ecg_at.get(case_id, -math.inf):
            self.last_ecg_at[case_id] = newest_at
        state = self.units.get(unit_id)
        if state is None:
            return False
        if state.case_id is None and case_id not in self.closed_cases:
            state.case_id = case_id
        return True

    def set_ready(self, hospital_id: str, ready: bool) -> None:
        if hospital_id not in self.hospitals:
            raise UnknownHospital(f"hospital {hospital_id!r} is not known")
        self.ready[hospital_id] = ready

    def eta_s(self, state: UnitState) -> float | None:
        hospital = self.hospitals.get(state.destination or "")
        if hospital is None or state.position is None:
            return None
        pos = state.position
        distance = great_circle_m(pos.lat, pos.lon, hospital.lat, hospital.lon)
        return distance / max(pos.speed_mps, ETA_FLOOR_MPS)

    def data_age_s(self, state: UnitState, now: float) -> float | None:
        if state.case_id is None or state.case_id not in self.last_ecg_at:
            return None
        return max(now - self.last_ecg_at[state.case_id], 0.0)

    def unit_json(
        self, unit_id: str, now: float, alarms: Iterable[Mapping[str, object]] = ()
    ) -> dict[str, object]:
        """The contract's ``Unit``; ``alarms`` are the open alarms (``alarm_to_json``) to pick
        this unit's case's from."""
        state = self.unit(unit_id)
        open_alarms = [
            {k: a.get(k) for k in ("alarm_id", "kind", "priority", "phase")}
            for a in alarms
            if state.case_id is not None and a.get("case_id") == state.case_id
        ]
        ranks = {"high": 0, "medium": 1, "low": 2}
        open_alarms.sort(key=lambda a: ranks.get(str(a["priority"]), 3))
        link: dict[str, object] | None = None
        if state.link is not None:
            link = state.link.model_dump(exclude={"v", "unit_id"})
            link["quality"] = link_quality(state.link)
        return {
            "unit_id": unit_id,
            "status": state.status,
            "status_since": state.status_since,
            "status_history": [{"status": s, "at": at} for s, at in state.status_history],
            "case_id": state.case_id,
            "destination": state.destination,
            "eta_s": self.eta_s(state),
            "position": None
            if state.position is None
            else state.position.model_dump(exclude={"v", "unit_id"}),
            "link": link,
            "link_history": [
                {
                    "at": r.at,
                    "rtt_ms": r.rtt_ms,
                    "loss_pct": r.loss_pct,
                    "uplink_kbps": r.uplink_kbps,
                }
                for r in state.link_history
                if r.at >= now - LINK_HISTORY_S
            ],
            "data_age_s": self.data_age_s(state, now),
            "open_alarms": open_alarms,
            "top_priority": open_alarms[0]["priority"] if open_alarms else None,
            "rejected": state.rejected,
        }

    def hospital_json(self, hospital_id: str) -> dict[str, object]:
        h = self.hospitals[hospital_id]
        return {
            "hospital_id": h.hospital_id,
            "name": h.name,
            "lat": h.lat,
            "lon": h.lon,
            "cath_lab": h.cath_lab,
            "stroke_unit": h.stroke_unit,
            "ready": self.ready[hospital_id],
        }

    def weather(self, now: float) -> list[dict[str, object]]:
        """Mean link score per ~0.01° cell over the last hour, from every unit's reports."""
        cells: list[dict[str, object]] = []
        for (ilat, ilon), buckets in list(self.weather_samples.items()):
            while buckets and buckets[0][0] + WEATHER_BUCKET_S <= now - WEATHER_WINDOW_S:
                buckets.popleft()
            n = int(sum(b[2] for b in buckets))
            if n == 0:
                del self.weather_samples[(ilat, ilon)]
                continue
            cells.append(
                {
                    "lat": round(ilat * WEATHER_CELL_DEG, 6),
                    "lon": round(ilon * WEATHER_CELL_DEG, 6),
                    "quality": round(sum(b[1] for b in buckets) / n, 3),
                    "samples": n,
                }
            )
        return cells
