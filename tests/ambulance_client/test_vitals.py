"""Simulated vitals: heart rate from the record's own beats, the rest bounded seeded walks."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import wfdb

from ambulink.ambulance_client.vitals import HR_WINDOW_S, VitalsSimulator, heart_rate_track
from ambulink.data import record_path
from ambulink.errors import RecordNotFound

_TRACKS: dict[str, Callable[[float], float | None]] = {}
BEAT_SYMBOLS = set("NLRBAaJSVrFejnE/fQ")


def track(name: str) -> Callable[[float], float | None]:
    if name not in _TRACKS:
        _TRACKS[name] = heart_rate_track(record_path(name))
    return _TRACKS[name]


def test_hr_follows_the_annotated_rate_of_mitdb_100() -> None:
    path = record_path("mitdb/100")
    ann = wfdb.rdann(path, "atr")
    beats_s = (
        np.array([s for s, sym in zip(ann.sample, ann.symbol, strict=True) if sym in BEAT_SYMBOLS])
        / ann.fs
    )
    sim = VitalsSimulator(track("mitdb/100"), seed=1)
    errors = []
    for t_s in np.arange(HR_WINDOW_S + 5, 1800.0, 5.0):
        window = beats_s[(beats_s >= t_s - HR_WINDOW_S) & (beats_s <= t_s)]
        reference_bpm = 60.0 * (len(window) - 1) / (window[-1] - window[0])
        hr = sim.sample(float(t_s))["hr_bpm"]
        assert hr is not None
        errors.append(abs(hr - reference_bpm))
    assert max(errors) <= 5.0, f"worst HR error {max(errors):.1f} bpm"


def test_hr_differs_between_records_and_wraps_with_the_loop() -> None:
    mitdb = track("mitdb/100")
    ptbxl = track("ptbxl/00003_hr")  # 10 s record, ~64 bpm
    assert ptbxl(8.0) == pytest.approx(64, abs=3)
    assert mitdb(100.0) == pytest.approx(74, abs=3)
    assert ptbxl(1008.0) == pytest.approx(ptbxl(8.0), abs=3)  # looped replay
    assert heart_rate_track(record_path("ptbxl/00003_hr"), loop=False)(11.0) is None


def test_hr_is_none_with_too_few_beats() -> None:
    assert track("mitdb/100")(0.3) is None


def test_values_stay_in_physiological_ranges_over_two_hours() -> None:
    sim = VitalsSimulator(None, seed=5)
    samples = [sim.sample(float(t)) for t in range(0, 2 * 3600, 2)]
    ranges = {
        "hr_bpm": (40, 150),
        "spo2_pct": (88, 100),
        "nibp_sys_mmhg": (90, 180),
        "nibp_dia_mmhg": (50, 110),
        "rr_per_min": (8, 30),
        "etco2_mmhg": (30, 45),
        "temp_c": (35.5, 38.5),
    }
    for key, (lo, hi) in ranges.items():
        values = np.array([dict(s)[key] for s in samples], dtype=np.float64)
        assert lo <= values.min() and values.max() <= hi, key
        assert values.std() > 0, f"{key} never changes"
    for s in samples:
        assert s["nibp_dia_mmhg"] < s["nibp_mean_mmhg"] < s["nibp_sys_mmhg"]
        assert s["nibp_sys_mmhg"] - s["nibp_dia_mmhg"] >= 20
        assert s["simulated"] is True


def test_nibp_is_measured_every_five_minutes_and_held_between() -> None:
    sim = VitalsSimulator(None, seed=2)
    samples = [sim.sample(float(t)) for t in range(0, 3600)]
    assert sorted({s["nibp_t_s"] for s in samples}) == [300.0 * k for k in range(12)]
    for s in samples:
        assert s["nibp_t_s"] == 300.0 * (s["t_s"] // 300)
    readings = {(s["nibp_sys_mmhg"], s["nibp_dia_mmhg"]) for s in samples}
    assert 1 < len(readings) <= 12


def test_same_seed_same_values_however_often_sampled() -> None:
    every_s = VitalsSimulator(track("mitdb/100"), seed=11)
    every_7s = VitalsSimulator(track("mitdb/100"), seed=11)
    other = VitalsSimulator(track("mitdb/100"), seed=12)
    dense = {t: every_s.sample(float(t)) for t in range(0, 1400)}
    sparse = {t: every_7s.sample(float(t)) for t in range(0, 1400, 7)}
    assert all(sparse[t] == dense[t] for t in sparse)
    assert [other.sample(float(t)) for t in range(0, 1400, 7)] != list(sparse.values())


def test_time_cannot_go_backwards() -> None:
    sim = VitalsSimulator(None, seed=0)
    sim.sample(100.0)
    sim.sample(100.5)  # same grid step: fine
    with pytest.raises(ValueError, match="forwards"):
        sim.sample(50.0)


def test_missing_record() -> None:
    with pytest.raises(RecordNotFound):
        heart_rate_track("/nonexistent/100")
