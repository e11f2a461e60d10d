"""The JSON messages: round trips of every type, clear errors, and fuzzing (only messages or
ProtocolError)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from ambulink.errors import ProtocolError
from ambulink.protocol.messages import (
    MAX_MESSAGE_BYTES,
    MESSAGE_TYPES,
    Ack,
    ErrorMessage,
    Heartbeat,
    Link,
    Measurement,
    Message,
    Missing,
    Position,
    Resume,
    Status,
    StreamOpen,
    Telematics,
    Vitals,
    decode_message,
    encode_message,
)

# Hypothesis cases (generating messages costs ~5 ms each); a seeded loop adds 20,000 more.
TEXT_EXAMPLES = 800
MUTATED_EXAMPLES = 300

ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,40}", fullmatch=True)
times = st.floats(0.0, 4e9, allow_nan=False)
non_negative = st.floats(0.0, 1e9, allow_nan=False)
stream_ids = st.integers(0, 2**32 - 1)
seqs = st.integers(0, 2**64 - 1)
printable = st.text(st.characters(exclude_categories=("C", "Z")) | st.just(" "), max_size=60)
measurements = st.builds(
    Measurement,
    value=non_negative,
    unit=st.sampled_from(["/min", "%", "mm[Hg]", "Cel", "kPa", "°C"]),
    at=times,
)
maybe = st.none

BUILDERS: dict[type[BaseModel], st.SearchStrategy[Any]] = {
    StreamOpen: st.builds(
        StreamOpen,
        case_id=ids,
        unit_id=ids,
        stream_id=stream_ids,
        fs=st.integers(100, 2000),
        leads=st.lists(
            st.from_regex(r"[A-Za-z0-9][A-Za-z0-9+-]{0,7}", fullmatch=True), min_size=1, max_size=18
        ),
        gain=st.floats(1e-3, 1e6),
        started_at=times,
        patient_ref=maybe() | ids,
    ),
    Vitals: st.builds(
        Vitals,
        case_id=ids,
        at=times,
        **{
            name: maybe() | measurements
            for name in ("hr", "spo2", "nibp_sys", "nibp_dia", "nibp_mean", "rr", "etco2", "temp")
        },
    ),
    Heartbeat: st.builds(Heartbeat, sent_at=times, seq=seqs),
    Ack: st.builds(Ack, case_id=ids, stream_id=stream_ids, seq=seqs),
    Resume: st.builds(
        Resume, case_id=ids, stream_id=stream_ids, last_acked=st.integers(-1, 2**64 - 1)
    ),
    Missing: st.builds(
        Missing,
        case_id=ids,
        stream_id=stream_ids,
        ranges=st.lists(st.integers(0, 2**40), max_size=40, unique=True).map(
            lambda cuts: [(a, b) for a, b in zip(*[iter(sorted(cuts))] * 2, strict=False)]
        ),
    ),
    Status: st.builds(
        Status,
        unit_id=ids,
        status=st.sampled_from(
            ["available", "dispatched", "en_route", "on_scene", "transporting", "at_hospital"]
        ),
        at=times,
    ),
    Position: st.builds(
        Position,
        unit_id=ids,
        lat=st.floats(-90, 90),
        lon=st.floats(-180, 180),
        speed_mps=maybe() | non_negative,
        heading_deg=maybe() | st.floats(0, 360),
        at=times,
    ),
    Link: st.builds(
        Link,
        unit_id=ids,
        rtt_ms=maybe() | non_negative,
        loss_pct=maybe() | st.floats(0, 100),
        bitrate_kbps=maybe() | non_negative,
        at=times,
    ),
    Telematics: st.builds(
        Telematics,
        kind=st.sampled_from(["status", "position", "link"]),
        data=st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=4),
    ),
    ErrorMessage: st.builds(
        ErrorMessage,
        code=st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True),
        message=printable,
    ),
}
messages: st.SearchStrategy[Message] = st.one_of(*BUILDERS.values())


@settings(max_examples=200)
@given(messages)
def test_round_trip(message: Message) -> None:
    text = encode_message(message)
    decoded = decode_message(text)
    assert decoded == message and type(decoded) is type(message)
    assert encode_message(decoded) == text
    assert decode_message(text.encode()) == message


def test_every_type_is_covered_by_the_round_trip() -> None:
    assert set(BUILDERS) == set(MESSAGE_TYPES.values())


def test_encodes_compact_json_with_type_and_v() -> None:
    text = encode_message(Ack(case_id="case-1", stream_id=2, seq=41))
    assert text == '{"v":1,"type":"ack","case_id":"case-1","stream_id":2,"seq":41}'


def test_vitals_example() -> None:
    vitals = Vitals(
        case_id="c1",
        at=1_700_000_000.0,
        hr=Measurement(value=72, unit="/min", at=1_699_999_999.5),
        nibp_sys=Measurement(value=120, unit="mm[Hg]", at=1_699_999_990.0),
    )
    decoded = decode_message(encode_message(vitals))
    assert isinstance(decoded, Vitals) and decoded.hr is not None and decoded.hr.value == 72.0
    assert decoded.spo2 is None


def test_models_are_frozen_and_forbid_extra_fields() -> None:
    beat = Heartbeat(sent_at=1.0, seq=0)
    with pytest.raises(ValidationError):
        beat.seq = 1
    with pytest.raises(ValidationError):
        Heartbeat(sent_at=1.0, seq=0, extra=1)  # type: ignore[call-arg]


def error_for(data: str | bytes) -> str:
    with pytest.raises(ProtocolError) as caught:
        decode_message(data)
    text = str(caught.value)
    assert "\n" not in text
    return text


def as_json(**fields: Any) -> str:
    return json.dumps(fields)


def test_unknown_type_lists_the_known_types() -> None:
    text = error_for(as_json(type="alarm_storm", v=1))
    assert text == (
        "unknown message type 'alarm_storm'; known types: ack, error, heartbeat, link, missing, "
        "position, resume, status, stream_open, telematics, vitals"
    )


def test_unknown_version_names_the_supported_versions() -> None:
    assert error_for(as_json(type="ack", v=2, case_id="c", stream_id=0, seq=0)) == (
        "'ack' message has protocol version 2; supported versions: 1"
    )
    assert "supported versions: 1" in error_for(as_json(type="ack", case_id="c", seq=0))
    assert "'v' must be an integer" in error_for(as_json(type="ack", v="1"))


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ("{", "message is not valid JSON"),
        (b"\xff\xfe", "message is not valid JSON"),
        ('"\ud800"', "not valid Unicode"),
        ("[1, 2]", "a message is a JSON object, got an array"),
        ("null", "a message is a JSON object, got null"),
        (as_json(v=1), "message needs a string 'type', one of: ack, error"),
        (as_json(type=3, v=1), "message needs a string 'type'"),
        ("[" * 20_000 + "]" * 20_000, "message is not valid JSON: recursion limit"),
        (as_json(type="ack", v=1, case_id="c", stream_id=0), "invalid 'ack' message: seq: Field"),
        (
            as_json(type="ack", v=1, case_id="c", stream_id="0", seq=0),
            "invalid 'ack' message: stream_id: Input should be a valid integer",
        ),
        (as_json(type="ack", v=1, case_id="c", stream_id=0, seq=0, x=1), "x: unknown field"),
        (as_json(type="ack", v=1, case_id="Jane Doe", stream_id=0, seq=0), "case_id: String"),
        (as_json(type="ack", v=1, case_id="c" * 129, stream_id=0, seq=0), "at most 128"),
        (as_json(type="ack", v=1, case_id="c", stream_id=2**32, seq=0), "stream_id: Input"),
        (as_json(type="heartbeat", v=1, sent_at=1, seq=True), "seq: Input should be a valid"),
        (as_json(type="heartbeat", v=1, sent_at=float("inf"), seq=1), "sent_at: Input should"),
        (
            as_json(type="position", v=1, unit_id="u", lat=91.0, lon=0.0, at=1.0),
            "lat: Input should be less than or equal to 90",
        ),
        (
            as_json(type="status", v=1, unit_id="u", status="lost", at=1.0),
            "status: Input should be 'available', 'dispatched'",
        ),
        (
            as_json(type="missing", v=1, case_id="c", stream_id=0, ranges=[[5, 2]]),
            "ranges: each range [a, b] needs a <= b",
        ),
        (
            as_json(type="missing", v=1, case_id="c", stream_id=0, ranges=[[1, 4], [4, 6]]),
            "ranges must be sorted and must not overlap",
        ),
        (
            as_json(
                type="stream_open",
                v=1,
                case_id="c",
                unit_id="u",
                stream_id=0,
                fs=360,
                leads=["I"] * 19,
                gain=200.0,
                started_at=0.0,
            ),
            "leads: List should have at most 18 items",
        ),
        (
            as_json(type="error", v=1, code="x", message="two\nlines"),
            "message: must hold printable characters only",
        ),
    ],
)
def test_bad_messages_say_what_is_wrong(data: str | bytes, words: str) -> None:
    assert words in error_for(data)


def test_validation_errors_name_fields_not_values() -> None:
    data = as_json(
        type="vitals",
        v=1,
        case_id="c",
        at=1.0,
        hr={"value": -71.5, "unit": "/min", "at": 1.0},
        spo2={"value": -93.25, "unit": "%", "at": 1.0},
        rr={"value": -17.75, "unit": "/min", "at": 1.0},
        temp={"value": -36.625, "unit": "Cel", "at": 1.0},
    )
    text = error_for(data)
    assert text.startswith("invalid 'vitals' message: hr.value: Input should be greater than")
    assert text.endswith("; and 1 more")
    assert not any(value in text for value in ("71.5", "93.25", "17.75", "36.625"))


def test_oversize_messages_are_refused_before_parsing() -> None:
    padded = as_json(type="heartbeat", v=1, sent_at=1.0, seq=1) + " " * MAX_MESSAGE_BYTES
    assert error_for(padded).startswith("message is 65591 bytes; the limit is 65536")
    multibyte = '{"type":"error","v":1,"code":"x","message":"' + "é" * 40_000 + '"}'
    assert "the limit is 65536" in error_for(multibyte)


def test_encode_refuses_what_is_not_a_message() -> None:
    with pytest.raises(ProtocolError, match="expected a protocol message, got dict"):
        encode_message({"type": "ack"})  # type: ignore[arg-type]


def assert_message_or_protocol_error(data: str | bytes) -> None:
    try:
        decoded = decode_message(data)
    except ProtocolError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert isinstance(decoded, tuple(MESSAGE_TYPES.values()))
    assert decode_message(encode_message(decoded)) == decoded


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)


@settings(max_examples=TEXT_EXAMPLES)
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300), json_values.map(json.dumps)))
def test_arbitrary_text_gives_a_message_or_a_protocol_error(data: str | bytes) -> None:
    assert_message_or_protocol_error(data)


@st.composite
def mutated_messages(draw: st.DrawFn) -> str:
    """A valid message with fields replaced, removed or added (``type`` and ``v`` included)."""
    fields: dict[str, Any] = json.loads(encode_message(draw(messages)))
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from([*fields, "type", "v", "extra"]))
        if draw(st.booleans()) and key in fields:
            del fields[key]
        else:
            fields[key] = draw(json_values | st.sampled_from(list(MESSAGE_TYPES)))
    return json.dumps(fields)


@settings(max_examples=MUTATED_EXAMPLES)
@given(mutated_messages())
def test_mutated_messages_give_a_message_or_a_protocol_error(data: str) -> None:
    assert_message_or_protocol_error(data)


def test_many_more_mutated_messages() -> None:
    """A seeded loop of 20,000 byte-level mutations of valid messages, cheaper than
    Hypothesis per case; some must still decode, so that the fuzzing is not vacuous."""
    rng = np.random.default_rng(11)
    valid = [
        encode_message(m)
        for m in (
            Ack(case_id="c", stream_id=1, seq=2),
            Missing(case_id="c", stream_id=1, ranges=[(1, 2), (5, 9)]),
            Position(unit_id="u", lat=1.5, lon=-2.0, speed_mps=3.0, heading_deg=None, at=9.0),
            Vitals(case_id="c", at=1.0, hr=Measurement(value=60, unit="/min", at=1.0)),
        )
    ]
    decoded = 0
    for case in range(20_000):
        data = bytearray(valid[case % len(valid)].encode())
        for _ in range(int(rng.integers(1, 3))):
            data[int(rng.integers(0, len(data)))] = int(rng.choice(list(b'0123456789{}[]":,.-e ')))
        try:
            decode_message(bytes(data))
            decoded += 1
        except ProtocolError:
            pass
        assert_message_or_protocol_error(bytes(data))
    assert decoded > 500
