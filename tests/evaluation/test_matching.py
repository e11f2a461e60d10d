"""EC57 beat matching and QRS counts, scored on real reference beats."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray

from ambulink.data import record_path
from ambulink.evaluation.matching import (
    DetectionCounts,
    ScoredMatch,
    match_beats,
    score_beats,
    tolerance_samples,
)
from ambulink.evaluation.records import EcgRecord, read_record
from ambulink.evaluation.reference import Reference, Span

FS = 360.0
TOLERANCE = tolerance_samples(FS)  # 54 samples = 150 ms
SKIP = round(300 * FS)


@cache
def bundled(name: str) -> tuple[EcgRecord, Reference]:
    path = Path(record_path(name))
    record = read_record(path.parent, path.name)
    return record, record.reference()


def score(ref: Reference, detected: NDArray[np.int64], start: int = SKIP) -> ScoredMatch:
    return score_beats(
        ref.beat_sample,
        np.sort(detected),
        tolerance=TOLERANCE,
        start=start,
        excluded=ref.excluded,
    )


def test_tolerance_is_150_ms() -> None:
    assert tolerance_samples(360.0) == 54
    assert tolerance_samples(250.0) == 38  # 37.5 rounds to even


def test_reference_against_itself_scores_100_percent_on_record_100() -> None:
    _, ref = bundled("mitdb/100")
    whole = score(ref, ref.beat_sample, start=0).counts
    assert whole == DetectionCounts(tp=2273, fn=0, fp=0)
    counts = score(ref, ref.beat_sample).counts
    assert counts.tp == int((ref.beat_sample >= SKIP).sum()) == 1902
    assert (counts.se, counts.ppv, counts.f1) == (1.0, 1.0, 1.0)


def test_detections_200_ms_late_match_nothing() -> None:
    _, ref = bundled("mitdb/100")
    counts = score(ref, ref.beat_sample + round(0.2 * FS)).counts
    assert counts.tp == 0
    assert counts.fn == counts.fp == 1902


def test_detections_100_ms_late_still_match() -> None:
    _, ref = bundled("mitdb/100")
    assert score(ref, ref.beat_sample + round(0.1 * FS)).counts.se == 1.0


def test_dropping_every_tenth_beat_gives_se_about_90_percent() -> None:
    _, ref = bundled("mitdb/100")
    counts = score(ref, np.delete(ref.beat_sample, np.s_[::10])).counts
    assert counts.se is not None and counts.se == pytest.approx(0.9, abs=0.005)
    assert counts.ppv == 1.0


def test_a_detection_between_every_two_beats_halves_positive_predictivity() -> None:
    _, ref = bundled("mitdb/119")
    midpoints = (ref.beat_sample[:-1] + ref.beat_sample[1:]) // 2
    counts = score(ref, np.concatenate([ref.beat_sample, midpoints])).counts
    assert counts.se == 1.0
    assert counts.ppv is not None and counts.ppv == pytest.approx(0.5, abs=0.005)


def test_detections_in_record_207_flutter_are_not_false_positives() -> None:
    record, ref = bundled("mitdb/207")
    ann = record.annotations
    flutter = np.array(
        [s for s, sym in zip(ann.sample, ann.symbol, strict=True) if sym == "!"], dtype=np.int64
    )
    detected = np.concatenate([ref.beat_sample, flutter])
    assert score(ref, detected, start=0).counts == DetectionCounts(tp=1860, fn=0, fp=0)
    unexcluded = score_beats(ref.beat_sample, np.sort(detected), tolerance=TOLERANCE, start=0)
    assert unexcluded.counts.fp == len(flutter) == 472


def test_reference_beats_in_an_excluded_span_are_not_scored() -> None:
    ref = np.array([1000, 2000, 3000, 4000], dtype=np.int64)
    scored = score_beats(
        ref,
        np.array([1000], dtype=np.int64),
        tolerance=TOLERANCE,
        start=0,
        excluded=[Span(1500, 4500)],
    )
    assert scored.counts == DetectionCounts(tp=1, fn=0, fp=0)


def test_a_match_across_the_test_period_start_is_neither_fn_nor_fp() -> None:
    ref = np.array([SKIP - 10, SKIP + 400], dtype=np.int64)
    det = np.array([SKIP + 10, SKIP + 390], dtype=np.int64)
    # the first pair straddles the start: its reference beat is in the learning period
    assert score_beats(ref, det, tolerance=TOLERANCE, start=SKIP).counts == DetectionCounts(1, 0, 0)
    # ... and the other way round the reference beat is scored and found
    ref2, det2 = ref + 20, det - 20
    scored = score_beats(ref2, det2, tolerance=TOLERANCE, start=SKIP)
    assert scored.counts == DetectionCounts(2, 0, 0)


def test_nearest_pair_wins_and_matching_is_one_to_one() -> None:
    match = match_beats([100, 160], [130, 150], tolerance=54)
    # 150 is 10 from 160 (the closest pair), so 130 goes to 100
    assert match.ref_index.tolist() == [0, 1]
    assert match.det_index.tolist() == [0, 1]
    double = match_beats([100], [95, 103], tolerance=54)
    assert double.det_index.tolist() == [1]
    assert double.det_matched().tolist() == [False, True]


def test_unsorted_input_is_refused() -> None:
    with pytest.raises(ValueError, match="sorted"):
        match_beats([300, 100], [100], tolerance=54)


def test_counts_without_beats_are_undefined_not_zero() -> None:
    assert DetectionCounts().se is None
    assert DetectionCounts(tp=0, fn=0, fp=3).ppv == 0.0
    assert DetectionCounts(1, 2, 3) + DetectionCounts(10, 20, 30) == DetectionCounts(11, 22, 33)


samples = st.lists(st.integers(min_value=0, max_value=5000), max_size=60).map(sorted)


@given(reference=samples, detected=samples, tolerance=st.integers(min_value=0, max_value=100))
def test_matching_pairs_each_beat_at_most_once_within_tolerance(
    reference: list[int], detected: list[int], tolerance: int
) -> None:
    match = match_beats(reference, detected, tolerance)
    assert len(set(match.ref_index.tolist())) == len(match.ref_index)
    assert len(set(match.det_index.tolist())) == len(match.det_index)
    ref, det = np.array(reference, dtype=np.int64), np.array(detected, dtype=np.int64)
    assert np.all(np.abs(ref[match.ref_index] - det[match.det_index]) <= tolerance)
    # maximal: no unmatched reference beat has an unmatched detection within tolerance
    free_ref = ref[~match.ref_matched()]
    free_det = det[~match.det_matched()]
    if len(free_ref) and len(free_det):
        assert np.abs(free_ref[:, None] - free_det[None, :]).min() > tolerance
