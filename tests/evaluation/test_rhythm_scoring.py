"""Rhythm episode scoring: oracle and shifted detections on real AF / VT / VF annotations."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from ambulink.data import record_path
from ambulink.evaluation.records import EcgRecord, read_record
from ambulink.evaluation.rhythm_scoring import (
    VENTRICULAR,
    merge_intervals,
    overlap_samples,
    score_label,
    score_rhythm,
)
from ambulink.signal.events import Episode


@cache
def bundled(name: str) -> EcgRecord:
    path = Path(record_path(name))
    return read_record(path.parent, path.name)


def test_oracle_af_detection_on_201_scores_100_percent() -> None:
    record = bundled("mitdb/201")
    episodes = record.reference().episodes
    af = score_rhythm(episodes, list(episodes), record.fs, record.n_samples).labels["AF"]
    assert af.long_episodes == 3  # 378 s, 37 s and 191 s of AF
    assert (af.duration_se, af.duration_ppv) == (1.0, 1.0)
    assert (af.long_se, af.episode_ppv, af.false_per_hour) == (1.0, 1.0, 0.0)
    assert af.reference_s == pytest.approx(sum(e.end - e.start for e in episodes) / record.fs)


def test_af_detection_shifted_by_half_its_length_scores_about_half() -> None:
    record = bundled("mitdb/201")
    episodes = record.reference().episodes
    middle = episodes[1]
    half = (middle.end - middle.start) // 2
    shifted = score_label(
        "AF",
        [(middle.start, middle.end)],
        [(middle.start + half, middle.end + half)],
        record.fs,
        record.n_samples,
    )
    assert shifted.duration_se == pytest.approx(0.5, abs=0.001)
    assert shifted.duration_ppv == pytest.approx(0.5, abs=0.001)
    assert shifted.long_se == 1.0  # still overlapped, so still found
    moved = [
        Episode(e.start + (e.end - e.start) // 2, e.end + (e.end - e.start) // 2, "AF")
        for e in episodes
    ]
    whole = score_rhythm(episodes, moved, record.fs, record.n_samples).labels["AF"]
    assert whole.duration_se is not None and 0.45 < whole.duration_se < 0.6


def test_missing_every_episode_scores_zero() -> None:
    record = bundled("mitdb/201")
    af = score_rhythm(record.reference().episodes, [], record.fs, record.n_samples).labels["AF"]
    assert (af.duration_se, af.long_se) == (0.0, 0.0)
    assert af.duration_ppv is None and af.episode_ppv is None


def test_record_207_vt_and_vf_episodes_split_at_6_s() -> None:
    record = bundled("mitdb/207")  # VT runs of 1.5 s; VF of 4.4 to 98 s
    episodes = record.reference().episodes
    labels = score_rhythm(episodes, list(episodes), record.fs, record.n_samples).labels
    vf, vt = labels["VF"], labels["VT"]
    long_vf = sum(e.end - e.start >= 6 * record.fs for e in episodes if e.label == "VF")
    assert (vf.long_episodes, vf.long_detected) == (long_vf, long_vf) == (4, 4)
    assert vf.short_episodes == vf.short_detected == 2
    assert (vt.long_episodes, vt.short_episodes, vt.short_se) == (0, 2, 1.0)
    assert vf.onset_delays_s == (0.0,) * 4 and vf.within_onset_limit == 1.0


def test_onset_delay_is_measured_from_the_annotated_onset() -> None:
    record = bundled("vfdb/418")  # VF episodes of 0.7 to 16 s at 250 Hz
    episodes = record.reference().episodes
    late = [Episode(e.start + round(3 * record.fs), e.end, e.label) for e in episodes]
    vf = score_rhythm(episodes, late, record.fs, record.n_samples).labels["VF"]
    long_vf = [e for e in episodes if e.end - e.start >= 6 * record.fs]
    assert vf.long_detected == len(long_vf) > 0
    assert vf.onset_delays_s == pytest.approx([3.0] * len(long_vf))
    assert vf.delay_median_s == pytest.approx(3.0) and vf.within_onset_limit == 1.0
    assert vf.short_detected < vf.short_episodes  # episodes under 3 s were never alarmed


def test_late_alarms_fail_the_10_s_limit() -> None:
    fs, n = 250.0, 250 * 3600
    score = score_label("VF", [(1000, 1000 + 60 * 250)], [(1000 + 12 * 250, 20_000)], fs, n)
    assert score.onset_delays_s == (12.0,)
    assert score.within_onset_limit == 0.0


def test_vf_alarm_during_annotated_vt_is_a_correct_ventricular_alarm() -> None:
    record = bundled("vfdb/422")  # VT for 193 s, then VF
    episodes = record.reference().episodes
    as_vf = [Episode(e.start, e.end, "VF") for e in episodes if e.label in ("VT", "VF")]
    labels = score_rhythm(episodes, as_vf, record.fs, record.n_samples).labels
    assert labels["VT"].long_detected == 0
    assert labels["VF"].false_episodes > 0
    combined = labels[VENTRICULAR]
    assert (combined.long_se, combined.duration_se, combined.duration_ppv) == (1.0, 1.0, 1.0)
    assert combined.false_episodes == 0


def test_detections_far_from_any_episode_are_false_alarms_per_hour() -> None:
    fs, n = 360.0, 360 * 1800  # half an hour
    score = score_label("AF", [(0, 36_000)], [(0, 36_000), (400_000, 420_000)], fs, n)
    assert (score.detected_episodes, score.false_episodes) == (2, 1)
    assert score.false_per_hour == pytest.approx(2.0)
    assert score.episode_ppv == pytest.approx(0.5)


def test_labels_without_reference_are_counted_not_scored() -> None:
    result = score_rhythm(
        [],
        [Episode(0, 100, "PAUSE"), Episode(500, 600, "TACHY"), Episode(700, 800, "PAUSE")],
        250.0,
        10_000,
    )
    assert result.unscored_detected == {"PAUSE": 2, "TACHY": 1}


def test_scores_add_across_records_and_refuse_other_labels() -> None:
    a = score_label("AF", [(0, 100)], [(0, 50)], 100.0, 1000)
    b = score_label("AF", [(0, 100)], [(0, 100)], 100.0, 1000)
    total = a + b
    assert total.duration_se == pytest.approx(0.75)
    assert total.record_s == 20.0
    with pytest.raises(ValueError, match="cannot add"):
        a + score_label("VT", [], [], 100.0, 1000)


def test_intervals_merge_and_overlap() -> None:
    assert merge_intervals([(5, 10), (0, 3), (10, 12), (-4, 1), (20, 2000)], 100) == [
        (0, 3),
        (5, 12),
        (20, 100),
    ]
    assert overlap_samples([(0, 10), (20, 30)], [(5, 25)]) == 10


def test_onset_delay_is_when_the_alarm_was_raised_when_the_detector_says() -> None:
    fs, n = 250.0, 600_000
    reference = [(1000, 1000 + 60 * 250)]
    detected = [(1000 + 2 * 250, 20_000)]  # onset estimated 2 s late ...
    at_start = score_label("VF", reference, detected, fs, n)
    raised = score_label(
        "VF", reference, detected, fs, n, raised=[1000 + 7 * 250]
    )  # ... raised 7 s late
    assert at_start.onset_delays_s == (2.0,)
    assert raised.onset_delays_s == (7.0,)
