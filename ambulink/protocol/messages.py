"""The JSON messages of DESIGN §3.2: frozen pydantic models discriminated by ``type``, with ``v``.

``decode_message`` turns JSON text into a ``Message`` or raises ``ProtocolError`` with one clear
line (unknown type → the known types; unknown ``v`` → the supported versions). Error texts name
fields and rules, never the values sent, so they can be logged (values may be vital signs).

Ids (``case_id``, ``unit_id``, ``patient_ref``) are opaque: 1-128 characters of ``A-Z a-z 0-9 .
_ -``, starting with a letter or digit, so that they are safe in MQTT topics and Redis keys. They
are never patient data. Times are Unix seconds (``at``, ``sent_at``, ``started_at``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeAlias, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import ErrorDetails, from_json

from ambulink.errors import ProtocolError
from ambulink.protocol.ecg_frame import (
    MAX_FS_HZ,
    MAX_LEADS,
    MIN_FS_HZ,
    PROTOCOL_VERSION,
    SUPPORTED_VERSIONS,
)

MAX_MESSAGE_BYTES = 65536
MAX_MISSING_RANGES = 1024
_U32_MAX = 2**32 - 1
_U64_MAX = 2**64 - 1


def _printable(text: str) -> str:
    if not text.isprintable():
        raise ValueError("must hold printable characters only (no control characters)")
    return text


Id = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
]
LeadName = Annotated[
    str, StringConstraints(min_length=1, max_length=8, pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
]
Unit = Annotated[str, StringConstraints(min_length=1, max_length=16), AfterValidator(_printable)]
UnixSeconds = Annotated[float, Field(ge=0.0)]
StreamId = Annotated[int, Field(ge=0, le=_U32_MAX)]
Seq = Annotated[int, Field(ge=0, le=_U64_MAX)]
NonNegative = Annotated[float, Field(ge=0.0)]


class _Model(BaseModel):
    # Decoding is strict (no "5" for 5); building in Python is lax (lists for tuples).
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class _Message(_Model):
    v: Literal[1] = PROTOCOL_VERSION


class Measurement(_Model):
    """One vital sign: ``value`` (≥ 0) in ``unit`` ("/min", "%", "mm[Hg]", "Cel"...) at ``at``."""

    value: NonNegative
    unit: Unit
    at: UnixSeconds


class StreamOpen(_Message):
    """Client → hub, once per ECG stream, before its frames: what the frames' leads are."""

    type: Literal["stream_open"] = "stream_open"
    case_id: Id
    unit_id: Id
    stream_id: StreamId
    fs: Annotated[int, Field(ge=MIN_FS_HZ, le=MAX_FS_HZ)]
    leads: Annotated[list[LeadName], Field(min_length=1, max_length=MAX_LEADS)]
    gain: Annotated[float, Field(gt=0.0)]  # ADC units per mV
    started_at: UnixSeconds
    patient_ref: Id | None = None


class Vitals(_Message):
    """Client → hub: the latest vital signs of a case; ``None`` where not measured."""

    type: Literal["vitals"] = "vitals"
    case_id: Id
    at: UnixSeconds
    hr: Measurement | None = None
    spo2: Measurement | None = None
    nibp_sys: Measurement | None = None
    nibp_dia: Measurement | None = None
    nibp_mean: Measurement | None = None
    rr: Measurement | None = None
    etco2: Measurement | None = None
    temp: Measurement | None = None


class Heartbeat(_Message):
    """Both ways, 1 Hz; ``seq`` counts the sender's heartbeats."""

    type: Literal["heartbeat"] = "heartbeat"
    sent_at: UnixSeconds
    seq: Seq


class Ack(_Message):
    """Hub → client: every frame of the stream up to ``seq`` (inclusive) is durably stored."""

    type: Literal["ack"] = "ack"
    case_id: Id
    stream_id: StreamId
    seq: Annotated[int, Field(ge=-1, le=_U64_MAX)]  # -1: nothing stored yet


class Resume(_Message):
    """Client → hub on reconnect: the last seq the hub acked, or -1 if it acked none yet."""

    type: Literal["resume"] = "resume"
    case_id: Id
    stream_id: StreamId
    last_acked: Annotated[int, Field(ge=-1, le=_U64_MAX)]


def _ordered_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    previous_end = -1
    for first, last in ranges:
        if first > last:
            raise ValueError("each range [a, b] needs a <= b")
        if first <= previous_end:
            raise ValueError("ranges must be sorted and must not overlap")
        previous_end = last
    return ranges


class Missing(_Message):
    """Hub → client: seq ranges ``[a, b]`` (inclusive, sorted, disjoint) the hub lacks."""

    type: Literal["missing"] = "missing"
    case_id: Id
    stream_id: StreamId
    ranges: Annotated[
        list[tuple[Seq, Seq]],
        Field(max_length=MAX_MISSING_RANGES),
        AfterValidator(_ordered_ranges),
    ]


UnitStatus: TypeAlias = Literal[
    "available", "dispatched", "en_route", "on_scene", "transporting", "at_hospital"
]


class Status(_Message):
    type: Literal["status"] = "status"
    unit_id: Id
    status: UnitStatus
    at: UnixSeconds


class Position(_Message):
    type: Literal["position"] = "position"
    unit_id: Id
    lat: Annotated[float, Field(ge=-90.0, le=90.0)]
    lon: Annotated[float, Field(ge=-180.0, le=180.0)]
    speed_mps: NonNegative | None = None
    heading_deg: Annotated[float, Field(ge=0.0, le=360.0)] | None = None
    at: UnixSeconds


class Link(_Message):
    """A unit's uplink quality: round-trip time, packet loss and bitrate."""

    type: Literal["link"] = "link"
    unit_id: Id
    rtt_ms: NonNegative | None = None
    loss_pct: Annotated[float, Field(ge=0.0, le=100.0)] | None = None
    bitrate_kbps: NonNegative | None = None
    at: UnixSeconds


class Telematics(_Message):
    """Client → hub without an MQTT broker: one fleet report (``ambulink.protocol.telematics``
    checks ``data``, as it does for the same payload arriving over MQTT)."""

    type: Literal["telematics"] = "telematics"
    kind: Literal["status", "position", "link"]
    data: dict[str, Any]


class ErrorMessage(_Message):
    """Either way: ``code`` (e.g. ``protocol_error``, as ``AmbulinkError.code``) and a message."""

    type: Literal["error"] = "error"
    code: Annotated[
        str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
    ]
    message: Annotated[str, StringConstraints(max_length=1024), AfterValidator(_printable)]


Message = Annotated[
    StreamOpen
    | Vitals
    | Heartbeat
    | Ack
    | Resume
    | Missing
    | Status
    | Position
    | Link
    | Telematics
    | ErrorMessage,
    Field(discriminator="type"),
]

_ADAPTER: TypeAdapter[Message] = TypeAdapter(Message)
MESSAGE_TYPES: dict[str, type[BaseModel]] = {
    model.model_fields["type"].default: model for model in get_args(get_args(Message)[0])
}
_MESSAGE_CLASSES = tuple(MESSAGE_TYPES.values())
_KNOWN = ", ".join(sorted(MESSAGE_TYPES))
_VERSIONS = ", ".join(str(v) for v in SUPPORTED_VERSIONS)


def decode_message(data: str | bytes) -> Message:
    """Parse one JSON message; anything malformed raises ``ProtocolError`` saying what."""
    if isinstance(data, str):
        try:
            raw = data.encode("utf-8")
        except UnicodeEncodeError:
            raise ProtocolError("message text is not valid Unicode (lone surrogate)") from None
    elif isinstance(data, bytes | bytearray | memoryview):
        raw = bytes(data)
    else:
        raise ProtocolError(f"a message is JSON text (str or bytes), got {type(data).__name__}")
    if len(raw) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message is {len(raw)} bytes; the limit is {MAX_MESSAGE_BYTES}")
    try:
        parsed = from_json(raw)
    except ValueError as exc:
        raise ProtocolError(f"message is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise ProtocolError(f"a message is a JSON object, got {_json_kind(parsed)}")
    kind = parsed.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(f"message needs a string 'type', one of: {_KNOWN}")
    if kind not in MESSAGE_TYPES:
        raise ProtocolError(f"unknown message type {kind[:40]!r}; known types: {_KNOWN}")
    if "v" not in parsed:
        raise ProtocolError(
            f"{kind!r} message has no 'v' (protocol version); supported versions: {_VERSIONS}"
        )
    version = parsed["v"]
    if type(version) is not int:
        raise ProtocolError(
            f"{kind!r} message: 'v' must be an integer protocol version, got "
            f"{_json_kind(version)}; supported versions: {_VERSIONS}"
        )
    if version not in SUPPORTED_VERSIONS:
        raise ProtocolError(
            f"{kind!r} message has protocol version {str(version)[:20]}; "
            f"supported versions: {_VERSIONS}"
        )
    try:
        return _ADAPTER.validate_json(raw, strict=True)
    except ValidationError as exc:
        raise ProtocolError(f"invalid {kind!r} message: {_summary(exc)}") from None


def encode_message(message: Message) -> str:
    """Compact JSON text of ``message`` (every field, ``type`` and ``v`` included)."""
    if not isinstance(message, _MESSAGE_CLASSES):
        raise ProtocolError(f"expected a protocol message, got {type(message).__name__}")
    text = message.model_dump_json()
    if len(text.encode("utf-8")) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"{message.type!r} message exceeds {MAX_MESSAGE_BYTES} bytes")
    return text


def _summary(exc: ValidationError, shown: int = 3) -> str:
    """pydantic's errors in one line: field and rule of the first few, then how many more."""
    errors = exc.errors(include_url=False, include_input=False)
    parts = [_describe(error) for error in errors[:shown]]
    if len(errors) > shown:
        parts.append(f"and {len(errors) - shown} more")
    return "; ".join(parts)


def _describe(error: ErrorDetails) -> str:
    # loc starts with the union tag ("vitals", "hr", "value"): drop the tag.
    path = ".".join(str(part) for part in error["loc"][1:]) or "message"
    if error["type"] == "extra_forbidden":
        return f"{path}: unknown field"
    return f"{path}: {error['msg'].removeprefix('Value error, ')}"


def _json_kind(value: object) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return "a boolean"
        case int() | float():
            return "a number"
        case str():
            return "a string"
        case list():
            return "an array"
        case _:
            return "an object"
