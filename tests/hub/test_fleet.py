"""The pure fleet model: status order, refusals that keep the last good state, ETA, weather,
data age and open alarms. Time is passed in (Unix s)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ambulink.errors import ConfigError, ProtocolError
from ambulink.hub.fleet import (
    ETA_FLOOR_MPS,
    Fleet,
    FleetConfig,
    Hospital,
    UnknownUnit,
    great_circle_m,
)

T0 = 1_800_000_000.0
CONFIG = FleetConfig(
    ("amb-1", "amb-2"),
    (
        Hospital("h-a", "A", 52.0, 5.0, cath_lab=True),
        Hospital("h-b", "B", 52.1, 5.0, stroke_unit=True),
    ),
)


def status(name: str, seq: int, at: float, **more: object) -> dict[str, object]:
    return {"v": 1, "unit_id": "amb-1", "status": name, "at": at, "seq": seq} | more


def position(lat: float, lon: float, at: float, speed: float = 10.0) -> dict[str, object]:
    return {
        "v": 1,
        "unit_id": "amb-1",
        "lat": lat,
        "lon": lon,
        "speed_mps": speed,
        "heading_deg": 0.0,
        "accuracy_m": 5.0,
        "at": at,
    }


def link(at: float, radio: str = "LTE", loss: float = 0.0, rtt: float = 40.0) -> dict[str, object]:
    return {
        "v": 1,
        "unit_id": "amb-1",
        "rtt_ms": rtt,
        "loss_pct": loss,
        "uplink_kbps": 2000.0,
        "radio": radio,
        "signal_dbm": -80.0,
        "buffered_frames": 0,
        "at": at,
    }


def test_statuses_apply_in_order_and_repeats_are_ignored() -> None:
    fleet = Fleet(CONFIG)
    assert fleet.apply("amb-1", "status", status("dispatched", 1, T0), T0)
    assert fleet.apply("amb-1", "status", status("en_route", 2, T0 + 5, case_id="c-1"), T0 + 5)
    assert not fleet.apply("amb-1", "status", status("dispatched", 1, T0), T0 + 6)  # redelivery
    unit = fleet.unit_json("amb-1", T0 + 10)
    assert unit["status"] == "en_route" and unit["status_since"] == T0 + 5
    assert unit["case_id"] == "c-1"
    assert unit["status_history"] == [
        {"status": "dispatched", "at": T0},
        {"status": "en_route", "at": T0 + 5},
    ]
    assert unit["rejected"] == 0


def test_refused_reports_are_counted_and_the_last_good_position_stays() -> None:
    fleet = Fleet(CONFIG)
    fleet.apply("amb-1", "position", position(52.05, 5.0, T0), T0)
    bad: list[bytes | dict[str, object]] = [
        position(90.5, 5.0, T0 + 1),  # lat > 90
        position(52.05, 5.0, T0 + 1, speed=-3.0),  # negative speed
        position(52.05, 5.0, T0 + 120),  # two minutes in the future
        position(48.85, 2.35, T0 + 2),  # Paris two seconds later: a jump, not a drive
        b"{not json",
        position(52.05, 5.0, T0 + 1) | {"unit_id": "amb-2"},  # amb-1 speaking for amb-2
    ]
    for payload in bad:
        with pytest.raises(ProtocolError):
            fleet.apply("amb-1", "position", payload, T0 + 2)
    with pytest.raises(UnknownUnit):
        fleet.apply("amb-9", "position", position(52.05, 5.0, T0), T0)
    unit = fleet.unit_json("amb-1", T0 + 2)
    assert unit["rejected"] == len(bad)
    assert fleet.unknown_rejected == 1
    assert unit["position"] == {
        "lat": 52.05,
        "lon": 5.0,
        "speed_mps": 10.0,
        "heading_deg": 0.0,
        "accuracy_m": 5.0,
        "at": T0,
    }
    # A plausible drive is taken: 200 m in 10 s.
    assert fleet.apply("amb-1", "position", position(52.0518, 5.0, T0 + 10), T0 + 10)


def test_eta_is_great_circle_distance_over_speed_with_a_40_kmh_floor() -> None:
    fleet = Fleet(CONFIG)
    fleet.apply("amb-1", "status", status("transporting", 1, T0, destination="h-b"), T0)
    assert fleet.unit_json("amb-1", T0)["eta_s"] is None  # no position yet
    fleet.apply("amb-1", "position", position(52.0, 5.0, T0, speed=20.0), T0)
    distance = great_circle_m(52.0, 5.0, 52.1, 5.0)
    assert distance == pytest.approx(11_119.5, rel=1e-3)  # 0.1 degree of latitude
    assert fleet.unit_json("amb-1", T0)["eta_s"] == pytest.approx(distance / 20.0)
    fleet.apply("amb-1", "position", position(52.0, 5.0, T0 + 1, speed=0.0), T0 + 1)
    assert fleet.unit_json("amb-1", T0 + 1)["eta_s"] == pytest.approx(distance / ETA_FLOOR_MPS)
    with pytest.raises(ProtocolError):
        fleet.apply("amb-1", "status", status("transporting", 2, T0 + 2, destination="h-x"), T0)


def test_link_quality_history_and_weather_of_the_last_hour() -> None:
    fleet = Fleet(CONFIG)
    fleet.apply("amb-1", "position", position(52.004, 5.004, T0), T0)
    fleet.apply("amb-1", "link", link(T0), T0)
    fleet.apply("amb-1", "link", link(T0 + 30, radio="none"), T0 + 30)
    unit = fleet.unit_json("amb-1", T0 + 30)
    link_json = unit["link"]
    assert isinstance(link_json, dict) and link_json["quality"] == "none"
    history = unit["link_history"]
    assert isinstance(history, list) and [h["at"] for h in history] == [T0, T0 + 30]
    fleet.apply("amb-1", "link", link(T0 + 60, loss=8.0, rtt=300.0), T0 + 60)
    link_json = fleet.unit_json("amb-1", T0 + 60)["link"]
    assert isinstance(link_json, dict) and link_json["quality"] == "poor"
    cells = fleet.weather(T0 + 60)
    assert len(cells) == 1
    cell = cells[0]
    assert (cell["lat"], cell["lon"], cell["samples"]) == (52.0, 5.0, 3)
    assert 0.0 < cell["quality"] < 0.5  # type: ignore[operator]
    assert fleet.weather(T0 + 3600 + 120) == []  # older than an hour: gone
    assert fleet.unit_json("amb-1", T0 + 700)["link_history"] == []  # older than 10 min


def test_data_age_comes_from_the_newest_stored_ecg_of_the_units_case() -> None:
    fleet = Fleet(CONFIG)
    assert fleet.unit_json("amb-1", T0)["data_age_s"] is None
    assert fleet.ecg_stored("amb-1", "c-7", T0 - 2.0)
    assert not fleet.ecg_stored("unit-x", "c-8", T0)  # not in the fleet
    unit = fleet.unit_json("amb-1", T0)
    assert unit["case_id"] == "c-7" and unit["data_age_s"] == pytest.approx(2.0)
    assert fleet.unit_json("amb-1", T0 + 10)["data_age_s"] == pytest.approx(12.0)
    fleet.ecg_stored("amb-1", "c-7", T0 - 30.0)  # backfill of older data
    assert fleet.unit_json("amb-1", T0 + 10)["data_age_s"] == pytest.approx(12.0)
    fleet.close_case("c-7")
    assert fleet.unit_json("amb-1", T0)["data_age_s"] is None
    # ECG still arriving for the closed case (its backfill) does not attach it again.
    fleet.ecg_stored("amb-1", "c-7", T0)
    assert fleet.unit_json("amb-1", T0)["case_id"] is None
    # A case the crew opens is the unit's at once, before any ECG.
    assert fleet.open_case("amb-1", "c-9") and not fleet.open_case("unit-x", "c-9")
    assert fleet.unit_json("amb-1", T0)["case_id"] == "c-9"


def test_open_alarms_of_the_units_case_most_urgent_first() -> None:
    fleet = Fleet(CONFIG)
    fleet.apply("amb-1", "status", status("on_scene", 1, T0, case_id="c-1"), T0)
    alarms = [
        {"alarm_id": "a1", "case_id": "c-1", "kind": "af", "priority": "medium", "phase": "active"},
        {"alarm_id": "a2", "case_id": "c-2", "kind": "vf", "priority": "high", "phase": "active"},
        {"alarm_id": "a3", "case_id": "c-1", "kind": "vt", "priority": "high", "phase": "active"},
    ]
    unit = fleet.unit_json("amb-1", T0, alarms)
    open_alarms = unit["open_alarms"]
    assert isinstance(open_alarms, list) and [a["alarm_id"] for a in open_alarms] == ["a3", "a1"]
    assert unit["top_priority"] == "high"
    assert fleet.unit_json("amb-2", T0, alarms)["top_priority"] is None


def test_hospitals_and_readiness() -> None:
    fleet = Fleet(CONFIG)
    fleet.set_ready("h-a", True)
    assert fleet.hospital_json("h-a") == {
        "hospital_id": "h-a",
        "name": "A",
        "lat": 52.0,
        "lon": 5.0,
        "cath_lab": True,
        "stroke_unit": False,
        "ready": True,
    }
    with pytest.raises(LookupError):
        fleet.set_ready("h-x", True)


def test_fleet_config_from_a_json_file(tmp_path: Path) -> None:
    path = tmp_path / "fleet.json"
    path.write_text(
        json.dumps(
            {
                "units": ["u-1"],
                "hospitals": [{"hospital_id": "h", "name": "H", "lat": 1, "lon": 2}],
            }
        )
    )
    config = FleetConfig.load(path)
    assert config.units == ("u-1",) and config.hospitals[0].lat == 1.0
    path.write_text(json.dumps({"units": ["u-1"], "hospitals": [{"name": "H"}]}))
    with pytest.raises(ConfigError, match="hospital 0 needs hospital_id, name, lat, lon"):
        FleetConfig.load(path)
    assert math.isclose(great_circle_m(0, 0, 0, 180), math.pi * 6_371_000.0)
