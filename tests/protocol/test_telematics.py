"""Telematics payloads: round trips, range checks, and arbitrary bytes giving only ProtocolError."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ambulink.errors import ProtocolError
from ambulink.protocol.telematics import (
    STATUSES,
    LinkReport,
    PositionReport,
    Report,
    StatusReport,
    check_fresh,
    encode_report,
    kind_of,
    parse_report,
    parse_topic,
    topic,
)

ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True)
times = st.floats(0.0, 4e9)
reports: st.SearchStrategy[Report] = st.one_of(
    st.builds(
        StatusReport,
        unit_id=ids,
        status=st.sampled_from(STATUSES),
        case_id=st.none() | ids,
        destination=st.none() | ids,
        at=times,
        seq=st.integers(0, 2**53),
    ),
    st.builds(
        PositionReport,
        unit_id=ids,
        lat=st.floats(-90, 90),
        lon=st.floats(-180, 180),
        speed_mps=st.floats(0, 150),
        heading_deg=st.floats(0, 360),
        accuracy_m=st.floats(0, 1000),
        at=times,
    ),
    st.builds(
        LinkReport,
        unit_id=ids,
        rtt_ms=st.floats(0, 10_000),
        loss_pct=st.floats(0, 100),
        uplink_kbps=st.floats(0, 100_000),
        radio=st.sampled_from(["5G", "LTE", "3G", "none"]),
        signal_dbm=st.floats(-150, 0),
        buffered_frames=st.integers(0, 10**9),
        at=times,
    ),
)


@settings(max_examples=300)
@given(reports)
def test_round_trip(report: Report) -> None:
    data = encode_report(report)
    assert parse_report(kind_of(report), data) == report
    assert parse_report(kind_of(report), json.loads(data)) == report
    assert encode_report(parse_report(kind_of(report), data)) == data


@settings(max_examples=500)
@given(st.sampled_from(["status", "position", "link", "weather"]), st.binary(max_size=300))
def test_arbitrary_bytes_give_a_report_or_a_protocol_error(kind: str, data: bytes) -> None:
    try:
        report = parse_report(kind, data)
    except ProtocolError as exc:
        assert "\n" not in str(exc)
    else:
        assert kind_of(report) == kind


@settings(max_examples=300)
@given(reports, st.data())
def test_mutated_reports_give_a_report_or_a_protocol_error(
    report: Report, data: st.DataObject
) -> None:
    fields = json.loads(encode_report(report))
    key = data.draw(st.sampled_from(sorted(fields)))
    fields[key] = data.draw(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)
    )
    try:
        parsed = parse_report(kind_of(report), json.dumps(fields))
    except ProtocolError as exc:
        assert f"{key}" in str(exc) or "'v'" in str(exc)  # names the field it refused
    else:
        assert kind_of(parsed) == kind_of(report)


POSITION = {
    "v": 1,
    "unit_id": "amb-1",
    "lat": 52.0,
    "lon": 5.0,
    "speed_mps": 10,
    "heading_deg": 90,
    "accuracy_m": 5,
    "at": 1000.0,
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lat": 90.5}, "lat: Input should be less than or equal to 90"),
        ({"lon": -181}, "lon: Input should be greater than or equal to -180"),
        ({"speed_mps": -1}, "speed_mps: Input should be greater than or equal to 0"),
        ({"lat": "52"}, "lat: Input should be a valid number"),
        ({"v": 2}, "needs 'v': 1; supported versions: 1"),
        ({"extra": 1}, "extra: unknown field"),
    ],
)
def test_out_of_range_positions_are_refused_with_a_clear_error(
    change: dict[str, object], message: str
) -> None:
    with pytest.raises(ProtocolError, match=r"invalid position report|needs 'v'") as caught:
        parse_report("position", json.dumps(POSITION | change))
    assert message in str(caught.value)


def test_future_reports_are_refused_and_the_clock_is_passed_in() -> None:
    report = parse_report("position", json.dumps(POSITION))
    check_fresh(report, now=1000.0 - 29.0)
    with pytest.raises(ProtocolError, match="31 s in the future; at most 30 s"):
        check_fresh(report, now=1000.0 - 31.0)


def test_topics() -> None:
    assert topic("amb-1", "link") == "ambulink/v1/units/amb-1/link"
    assert parse_topic("ambulink/v1/units/amb-1/status") == ("amb-1", "status")
    for bad in ("ambulink/v1/units/amb-1", "ambulink/v2/units/amb-1/status", "x/y/z/a/weather"):
        with pytest.raises(ProtocolError):
            parse_topic(bad)
