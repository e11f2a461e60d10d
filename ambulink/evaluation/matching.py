"""EC57 beat-by-beat matching of detections to reference beats, and QRS detection counts.

A detection matches a reference beat within the tolerance (EC57: 150 ms), one to one, nearest
pairs first. Matching runs over the whole record; only then is the test period applied, so a
beat next to the start of the test period or an excluded span still finds its partner:

- TP: a matched pair whose reference beat is in the test period;
- FN: an unmatched reference beat in the test period;
- FP: an unmatched detection in the test period.

The test period is the record from ``skip`` samples on (EC57 skips the first 5 minutes of
MIT-BIH records as the detector's learning period), minus the excluded ventricular
flutter/fibrillation spans.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ambulink.evaluation.reference import Span, in_spans

EC57_TOLERANCE_MS = 150.0
EC57_SKIP_S = 300.0


def ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator``, or None when the denominator is 0 (undefined, not 0 %)."""
    return numerator / denominator if denominator else None


def tolerance_samples(fs: float, tolerance_ms: float = EC57_TOLERANCE_MS) -> int:
    """The matching window (±, in samples) at ``fs`` Hz."""
    return round(tolerance_ms * fs / 1000.0)


def sorted_samples(samples: ArrayLike) -> NDArray[np.int64]:
    """Detections or beats as a sorted 1-D int64 array."""
    array = np.asarray(samples, dtype=np.int64).reshape(-1)
    return np.sort(array, kind="stable")


@dataclass(frozen=True)
class BeatMatch:
    """One-to-one pairs ``(ref_index[i], det_index[i])`` between two sorted sample arrays."""

    ref_index: NDArray[np.int64]
    det_index: NDArray[np.int64]
    n_reference: int
    n_detected: int

    def ref_matched(self) -> NDArray[np.bool_]:
        matched = np.zeros(self.n_reference, dtype=bool)
        matched[self.ref_index] = True
        return matched

    def det_matched(self) -> NDArray[np.bool_]:
        matched = np.zeros(self.n_detected, dtype=bool)
        matched[self.det_index] = True
        return matched


def match_beats(reference: ArrayLike, detected: ArrayLike, tolerance: int) -> BeatMatch:
    """Pair sorted ``detected`` samples with sorted ``reference`` samples ``tolerance`` apart.

    Greedy by distance: the closest pair of all is taken first, then the closest among the
    beats still free, and so on (ties: earlier reference beat, then earlier detection).
    """
    ref = np.asarray(reference, dtype=np.int64)
    det = np.asarray(detected, dtype=np.int64)
    for name, array in (("reference", ref), ("detected", det)):
        if array.ndim != 1 or np.any(np.diff(array) < 0):
            raise ValueError(f"{name} samples must be a sorted 1-D array")
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0 samples, got {tolerance}")
    lo = np.searchsorted(det, ref - tolerance, side="left")
    hi = np.searchsorted(det, ref + tolerance, side="right")
    counts = hi - lo
    ref_idx = np.repeat(np.arange(len(ref), dtype=np.int64), counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    offsets = np.arange(int(counts.sum()), dtype=np.int64) - first
    det_idx = np.repeat(lo, counts).astype(np.int64) + offsets
    distance = np.abs(det[det_idx] - ref[ref_idx])
    order = np.lexsort((det_idx, ref_idx, distance))
    ref_free = np.ones(len(ref), dtype=bool)
    det_free = np.ones(len(det), dtype=bool)
    pairs: list[tuple[int, int]] = []
    for r, d in zip(ref_idx[order].tolist(), det_idx[order].tolist(), strict=True):
        if ref_free[r] and det_free[d]:
            ref_free[r] = det_free[d] = False
            pairs.append((r, d))
    pairs.sort()
    matched = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    return BeatMatch(matched[:, 0], matched[:, 1], len(ref), len(det))


def scored_mask(
    samples: NDArray[np.int64], start: int, excluded: Sequence[Span]
) -> NDArray[np.bool_]:
    """Which ``samples`` are scored: at or after ``start`` and outside the ``excluded`` spans."""
    scored: NDArray[np.bool_] = (samples >= start) & ~in_spans(samples, excluded)
    return scored


@dataclass(frozen=True)
class DetectionCounts:
    """QRS detection counts with EC57 sensitivity (Se), positive predictivity (+P) and F1."""

    tp: int = 0
    fn: int = 0
    fp: int = 0

    def __add__(self, other: DetectionCounts) -> DetectionCounts:
        return DetectionCounts(self.tp + other.tp, self.fn + other.fn, self.fp + other.fp)

    @property
    def n_reference(self) -> int:
        return self.tp + self.fn

    @property
    def se(self) -> float | None:
        return ratio(self.tp, self.tp + self.fn)

    @property
    def ppv(self) -> float | None:
        return ratio(self.tp, self.tp + self.fp)

    @property
    def f1(self) -> float | None:
        return ratio(2 * self.tp, 2 * self.tp + self.fn + self.fp)

    def as_dict(self) -> dict[str, int | float | None]:
        return {
            "tp": self.tp,
            "fn": self.fn,
            "fp": self.fp,
            "se": self.se,
            "ppv": self.ppv,
            "f1": self.f1,
        }


@dataclass(frozen=True)
class ScoredMatch:
    """A record's beat match with the test period applied (see the module docstring)."""

    match: BeatMatch
    ref_scored: NDArray[np.bool_]
    det_scored: NDArray[np.bool_]

    def true_positives(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """(reference index, detection index) of each TP pair."""
        keep = self.ref_scored[self.match.ref_index]
        return self.match.ref_index[keep], self.match.det_index[keep]

    def false_negatives(self) -> NDArray[np.int64]:
        """Indices of reference beats missed in the test period."""
        return np.flatnonzero(self.ref_scored & ~self.match.ref_matched()).astype(np.int64)

    def false_positives(self) -> NDArray[np.int64]:
        """Indices of detections in the test period that match no reference beat."""
        return np.flatnonzero(self.det_scored & ~self.match.det_matched()).astype(np.int64)

    @property
    def counts(self) -> DetectionCounts:
        return DetectionCounts(
            tp=len(self.true_positives()[0]),
            fn=len(self.false_negatives()),
            fp=len(self.false_positives()),
        )


def score_beats(
    reference: NDArray[np.int64],
    detected: NDArray[np.int64],
    *,
    tolerance: int,
    start: int,
    excluded: Sequence[Span] = (),
) -> ScoredMatch:
    """Match sorted ``detected`` to sorted ``reference`` and apply the test period."""
    match = match_beats(reference, detected, tolerance)
    return ScoredMatch(
        match,
        scored_mask(reference, start, excluded),
        scored_mask(detected, start, excluded),
    )
