"""Fleet telematics (docs/fleet.md): a unit's ``status``, ``position`` and ``link`` reports.

The same JSON payloads travel on MQTT topics ``ambulink/v1/units/{unit_id}/{kind}`` and, without
a broker, inside the data channel's ``telematics`` message. ``parse_report`` turns bytes (or an
already decoded object) into a frozen, range-checked model or raises ``ProtocolError`` naming the
field and rule, never the value (positions are not logged). Freshness needs the time, which this
sans-I/O module does not read: ``check_fresh(report, now)`` is separate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal, NamedTuple, TypeAlias, get_args
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from pydantic_core import from_json

from ambulink.errors import ProtocolError

TELEMATICS_VERSION: Literal[1] = 1
TOPIC_PREFIX = "ambulink/v1/units"
SUBSCRIPTION = f"{TOPIC_PREFIX}/+/+"
MAX_REPORT_BYTES = 4096
MAX_FUTURE_S = 30.0  # a report stamped further ahead than this is refused (clock or forgery)

Kind: TypeAlias = Literal["status", "position", "link"]
KINDS: tuple[str, ...] = get_args(Kind)
UnitStatus: TypeAlias = Literal[
    "available",
    "dispatched",
    "en_route",
    "on_scene",
    "transporting",
    "at_hospital",
    "out_of_service",
]
STATUSES: tuple[str, ...] = get_args(UnitStatus)
Radio: TypeAlias = Literal["5G", "LTE", "3G", "none"]

Id = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
]
UnixSeconds = Annotated[float, Field(ge=0.0)]
NonNegative = Annotated[float, Field(ge=0.0)]


class _Report(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    v: Literal[1] = TELEMATICS_VERSION
    unit_id: Id
    at: UnixSeconds


class StatusReport(_Report):
    """The unit's status; ``seq`` counts the unit's status changes (with ``at``: the order)."""

    status: UnitStatus
    case_id: Id | None = None
    destination: Id | None = None  # a hospital_id
    seq: Annotated[int, Field(ge=0, le=2**53)]


class PositionReport(_Report):
    """GNSS fix: degrees, m/s, degrees clockwise from north, metres."""

    lat: Annotated[float, Field(ge=-90.0, le=90.0)]
    lon: Annotated[float, Field(ge=-180.0, le=180.0)]
    speed_mps: Annotated[float, Field(ge=0.0, le=150.0)]
    heading_deg: Annotated[float, Field(ge=0.0, le=360.0)]
    accuracy_m: Annotated[float, Field(ge=0.0, le=100_000.0)]


class LinkReport(_Report):
    """The uplink as the tablet sees it, and how many ECG frames wait in its disk buffer."""

    rtt_ms: Annotated[float, Field(ge=0.0, le=600_000.0)]
    loss_pct: Annotated[float, Field(ge=0.0, le=100.0)]
    uplink_kbps: Annotated[float, Field(ge=0.0, le=10_000_000.0)]
    radio: Radio
    signal_dbm: Annotated[float, Field(ge=-200.0, le=0.0)]
    buffered_frames: Annotated[int, Field(ge=0, le=2**40)]


Report: TypeAlias = StatusReport | PositionReport | LinkReport
MODELS: dict[str, type[StatusReport] | type[PositionReport] | type[LinkReport]] = {
    "status": StatusReport,
    "position": PositionReport,
    "link": LinkReport,
}


def kind_of(report: Report) -> Kind:
    match report:
        case StatusReport():
            return "status"
        case PositionReport():
            return "position"
        case LinkReport():
            return "link"


def topic(unit_id: str, kind: str) -> str:
    """The MQTT topic of a unit's reports of ``kind``."""
    if kind not in KINDS:
        raise ProtocolError(f"telematics kind must be one of {', '.join(KINDS)}")
    return f"{TOPIC_PREFIX}/{unit_id}/{kind}"


def parse_topic(name: str) -> tuple[str, Kind]:
    """``(unit_id, kind)`` of a topic ``ambulink/v1/units/{unit_id}/{kind}``."""
    parts = name.split("/")
    if len(parts) != 5 or "/".join(parts[:3]) != TOPIC_PREFIX or not parts[3]:
        raise ProtocolError(f"telematics topics look like {TOPIC_PREFIX}/<unit_id>/<kind>")
    kind = parts[4]
    if kind == "status":
        return parts[3], "status"
    if kind == "position":
        return parts[3], "position"
    if kind == "link":
        return parts[3], "link"
    raise ProtocolError(f"telematics kind must be one of {', '.join(KINDS)}")


def parse_report(kind: str, payload: bytes | str | Mapping[str, object]) -> Report:
    """A report of ``kind`` from JSON bytes/text or a decoded object; ``ProtocolError`` if bad."""
    model = MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise ProtocolError(f"telematics kind must be one of {', '.join(KINDS)}")
    if isinstance(payload, Mapping):
        data: object = dict(payload)
    else:
        raw = payload.encode("utf-8", "replace") if isinstance(payload, str) else payload
        if not isinstance(raw, bytes | bytearray | memoryview):
            raise ProtocolError(f"a {kind} report is JSON, got {type(payload).__name__}")
        if len(raw) > MAX_REPORT_BYTES:
            raise ProtocolError(
                f"{kind} report is {len(raw)} bytes; the limit is {MAX_REPORT_BYTES}"
            )
        try:
            data = from_json(bytes(raw))
        except ValueError:
            raise ProtocolError(f"{kind} report is not valid JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError(f"a {kind} report is a JSON object")
    version = data.get("v")
    if type(version) is not int or version != TELEMATICS_VERSION:
        raise ProtocolError(
            f"{kind} report needs 'v': {TELEMATICS_VERSION}; supported versions: "
            f"{TELEMATICS_VERSION}"
        )
    try:
        return model.model_validate(data, strict=True)
    except ValidationError as exc:
        raise ProtocolError(f"invalid {kind} report: {_summary(exc)}") from None


def encode_report(report: Report) -> bytes:
    """Compact JSON of ``report`` (``v`` included), as published."""
    return report.model_dump_json().encode()


class MqttTarget(NamedTuple):
    host: str
    port: int
    username: str | None
    password: str | None


def parse_mqtt_url(url: str) -> MqttTarget:
    """``mqtt://user:pass@host:port`` (port 1883 by default); the error never shows the
    password."""
    try:
        parts = urlsplit(url)
        port = parts.port or 1883
    except ValueError:
        raise ProtocolError("the MQTT URL is not a valid URL") from None
    if parts.scheme != "mqtt" or not parts.hostname:
        raise ProtocolError("the MQTT URL must look like mqtt://user:pass@host:port")
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return MqttTarget(parts.hostname, port, user, password)


def check_fresh(report: Report, now: float, max_future_s: float = MAX_FUTURE_S) -> None:
    """Refuse a report stamped more than ``max_future_s`` after ``now`` (Unix s)."""
    if report.at > now + max_future_s:
        raise ProtocolError(
            f"{kind_of(report)} report is stamped {report.at - now:.0f} s in the future; "
            f"at most {max_future_s:.0f} s is accepted"
        )


def _summary(exc: ValidationError, shown: int = 3) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    parts = []
    for error in errors[:shown]:
        path = ".".join(str(p) for p in error["loc"]) or "report"
        text = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
        parts.append(f"{path}: {text}")
    if len(errors) > shown:
        parts.append(f"and {len(errors) - shown} more")
    return "; ".join(parts)
