"""J-point error against LUDB's hand-marked QRS offsets (pure).

LUDB marks each lead separately: ``(`` QRS onset, ``N`` its peak, ``)`` its offset (and the same
brackets around ``p`` and ``t`` waves). One beat's marks from all leads are grouped by their
peaks; the beat's reference J point is the median of its leads' offsets. Our J point of a beat is
the analysis's nearest R peak plus its ``j_offset_ms``. Errors are ours minus reference, in ms.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

JPOINT_MEDIAN_GOAL_MS = 10.0  # DESIGN §5 and issue 4
JPOINT_P95_GOAL_MS = 25.0
BEAT_GROUP_MS = 100.0  # peaks of one beat in different leads lie closer than this
MATCH_MS = 150.0  # an R peak this close to a marked beat is the same beat (EC57 window)


@dataclass(frozen=True)
class QrsMark:
    """One lead's marks for one QRS complex (samples)."""

    peak: int
    offset: int


def qrs_marks(samples: Sequence[int], symbols: Sequence[str]) -> list[QrsMark]:
    """QRS marks of one lead's annotation: each ``N`` with the ``)`` that closes it."""
    marks = []
    for i, symbol in enumerate(symbols):
        if symbol == "N" and i + 1 < len(symbols) and symbols[i + 1] == ")":
            marks.append(QrsMark(samples[i], samples[i + 1]))
    return marks


@dataclass(frozen=True)
class MarkedBeat:
    """A beat as marked in several leads: the median peak and offset and each lead's offset."""

    peak: float
    offset: float
    lead_offsets: dict[str, int]


def group_beats(marks: Mapping[str, Sequence[QrsMark]], fs: float) -> list[MarkedBeat]:
    """Group the leads' marks into beats: marks whose peaks lie within ``BEAT_GROUP_MS`` of the
    first peak of a group are the same beat (one mark per lead)."""
    span = BEAT_GROUP_MS * fs / 1000.0
    every = sorted((m.peak, m.offset, lead) for lead, ms in marks.items() for m in ms)
    groups: list[list[tuple[int, int, str]]] = []
    for mark in every:
        if (
            groups
            and mark[0] - groups[-1][0][0] <= span
            and all(lead != mark[2] for _, _, lead in groups[-1])
        ):
            groups[-1].append(mark)
        else:
            groups.append([mark])
    return [
        MarkedBeat(
            peak=float(np.median([p for p, _, _ in g])),
            offset=float(np.median([o for _, o, _ in g])),
            lead_offsets={lead: o for _, o, lead in g},
        )
        for g in groups
    ]


@dataclass
class JPointErrors:
    """Signed J-point errors (ms): against each beat's median offset and per lead."""

    beats_ms: list[float] = field(default_factory=list)
    per_lead_ms: dict[str, list[float]] = field(default_factory=dict)
    unmatched: int = 0  # marked beats with no R peak of ours within MATCH_MS

    def extend(self, other: JPointErrors) -> None:
        self.beats_ms += other.beats_ms
        for lead, errors in other.per_lead_ms.items():
            self.per_lead_ms.setdefault(lead, []).extend(errors)
        self.unmatched += other.unmatched


def jpoint_errors(
    beats: Sequence[MarkedBeat], r_peaks: ArrayLike, j_offset_ms: float, fs: float
) -> JPointErrors:
    """Errors of ``r_peak + j_offset_ms`` against each marked beat with an R peak nearby."""
    peaks = np.sort(np.asarray(r_peaks, dtype=np.float64).ravel())
    errors = JPointErrors()
    if not np.isfinite(j_offset_ms):
        errors.unmatched = len(beats)
        return errors
    for beat in beats:
        if peaks.size == 0:
            errors.unmatched += 1
            continue
        nearest = float(peaks[np.argmin(np.abs(peaks - beat.peak))])
        if abs(nearest - beat.peak) > MATCH_MS * fs / 1000.0:
            errors.unmatched += 1
            continue
        ours = nearest + j_offset_ms * fs / 1000.0
        errors.beats_ms.append((ours - beat.offset) * 1000.0 / fs)
        for lead, offset in beat.lead_offsets.items():
            errors.per_lead_ms.setdefault(lead, []).append((ours - offset) * 1000.0 / fs)
    return errors


@dataclass(frozen=True)
class ErrorSummary:
    """Absolute-error median and 95th percentile (ms), the signed median (bias) and a count."""

    n: int
    median_abs_ms: float | None
    p95_abs_ms: float | None
    median_ms: float | None

    @classmethod
    def of(cls, errors_ms: Sequence[float]) -> ErrorSummary:
        if not errors_ms:
            return cls(0, None, None, None)
        values = np.asarray(errors_ms, dtype=np.float64)
        magnitude = np.abs(values)
        return cls(
            len(values),
            float(np.median(magnitude)),
            float(np.percentile(magnitude, 95)),
            float(np.median(values)),
        )

    @property
    def meets_goal(self) -> bool:
        return (
            self.median_abs_ms is not None
            and self.p95_abs_ms is not None
            and self.median_abs_ms <= JPOINT_MEDIAN_GOAL_MS
            and self.p95_abs_ms <= JPOINT_P95_GOAL_MS
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "n": self.n,
            "median_abs_ms": self.median_abs_ms,
            "p95_abs_ms": self.p95_abs_ms,
            "median_ms": self.median_ms,
        }
