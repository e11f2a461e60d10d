"""AAMI beat classification scoring (EC57): confusion matrix and V / S statistics.

Rows are the reference class of a beat (N, S, V, F, Q) plus ``-`` for detections that match
no reference beat; columns are the detected class (N, S, V, Q) plus ``-`` for reference beats
that were not detected. As in EC57's beat-by-beat comparison, missed beats count against
sensitivity and unmatched detections against positive predictivity:

- V Se = Vv / (row V),  V +P = Vv / (column V - Fv): EC57 does not count a reference fusion
  beat (F) classified as V as a false V, since F beats are part ventricular;
- S Se = Ss / (row S),  S +P = Ss / (column S).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from ambulink.evaluation.matching import ScoredMatch, ratio

REF_ROWS = ("N", "S", "V", "F", "Q", "-")
DET_COLUMNS = ("N", "S", "V", "Q", "-")
NONE = "-"


def _empty() -> NDArray[np.int64]:
    return np.zeros((len(REF_ROWS), len(DET_COLUMNS)), dtype=np.int64)


@dataclass(frozen=True)
class ConfusionMatrix:
    """Beat counts by (reference class, detected class); see the module docstring."""

    counts: NDArray[np.int64] = field(default_factory=_empty)

    def __post_init__(self) -> None:
        if self.counts.shape != (len(REF_ROWS), len(DET_COLUMNS)):
            raise ValueError(f"confusion counts must be {len(REF_ROWS)}x{len(DET_COLUMNS)}")

    def __add__(self, other: ConfusionMatrix) -> ConfusionMatrix:
        return ConfusionMatrix(self.counts + other.counts)

    def cell(self, reference: str, detected: str) -> int:
        return int(self.counts[REF_ROWS.index(reference), DET_COLUMNS.index(detected)])

    def row(self, reference: str) -> int:
        return int(self.counts[REF_ROWS.index(reference)].sum())

    def column(self, detected: str) -> int:
        return int(self.counts[:, DET_COLUMNS.index(detected)].sum())

    @property
    def fv(self) -> int:
        """Reference fusion beats detected as V (left out of V +P)."""
        return self.cell("F", "V")

    @property
    def v_se(self) -> float | None:
        return ratio(self.cell("V", "V"), self.row("V"))

    @property
    def v_ppv(self) -> float | None:
        return ratio(self.cell("V", "V"), self.column("V") - self.fv)

    @property
    def s_se(self) -> float | None:
        return ratio(self.cell("S", "S"), self.row("S"))

    @property
    def s_ppv(self) -> float | None:
        return ratio(self.cell("S", "S"), self.column("S"))

    def as_dict(self) -> dict[str, object]:
        return {
            "rows_reference": list(REF_ROWS),
            "columns_detected": list(DET_COLUMNS),
            "counts": self.counts.tolist(),
            "v_se": self.v_se,
            "v_ppv": self.v_ppv,
            "s_se": self.s_se,
            "s_ppv": self.s_ppv,
            "fv": self.fv,
        }


def confusion_matrix(
    scored: ScoredMatch, reference_class: Sequence[str], detected_class: Sequence[str]
) -> ConfusionMatrix:
    """Tally a scored match: ``reference_class[i]`` of reference beat i (N/S/V/F/Q) and
    ``detected_class[j]`` of detection j (N/S/V/Q)."""
    if len(reference_class) != scored.match.n_reference:
        raise ValueError(
            f"{len(reference_class)} reference classes for {scored.match.n_reference} beats"
        )
    if len(detected_class) != scored.match.n_detected:
        raise ValueError(
            f"{len(detected_class)} detected classes for {scored.match.n_detected} detections"
        )
    unknown = set(detected_class) - set(DET_COLUMNS[:-1])
    if unknown:
        raise ValueError(f"detected beat classes must be N, S, V or Q, got {sorted(unknown)}")
    counts = _empty()
    ref_tp, det_tp = scored.true_positives()
    for r, d in zip(ref_tp.tolist(), det_tp.tolist(), strict=True):
        counts[REF_ROWS.index(reference_class[r]), DET_COLUMNS.index(detected_class[d])] += 1
    for r in scored.false_negatives().tolist():
        counts[REF_ROWS.index(reference_class[r]), DET_COLUMNS.index(NONE)] += 1
    for d in scored.false_positives().tolist():
        counts[REF_ROWS.index(NONE), DET_COLUMNS.index(detected_class[d])] += 1
    return ConfusionMatrix(counts)
