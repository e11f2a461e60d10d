"""AAMI confusion matrix and EC57 V / S statistics on real reference beats."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest

from ambulink.data import record_path
from ambulink.evaluation.beat_scoring import ConfusionMatrix, confusion_matrix
from ambulink.evaluation.matching import score_beats, tolerance_samples
from ambulink.evaluation.records import read_record
from ambulink.evaluation.reference import Reference

ORACLE = {"N": "N", "S": "S", "V": "V", "F": "V", "Q": "Q"}  # fusion beats called V


@cache
def reference(name: str) -> Reference:
    path = Path(record_path(name))
    return read_record(path.parent, path.name).reference()


def matrix(ref: Reference, keep: np.ndarray, labels: list[str]) -> ConfusionMatrix:
    """Confusion matrix of detections at the reference beats selected by ``keep``."""
    scored = score_beats(
        ref.beat_sample,
        ref.beat_sample[keep],
        tolerance=tolerance_samples(360),
        start=0,
        excluded=ref.excluded,
    )
    return confusion_matrix(scored, ref.beat_class, labels)


def test_reference_classes_as_detections_score_100_percent_and_fusion_is_not_a_false_v() -> None:
    ref = reference("mitdb/201")  # N, S (A, a, J), V and two F beats
    every = np.ones(len(ref.beat_sample), dtype=bool)
    m = matrix(ref, every, [ORACLE[c] for c in ref.beat_class])
    assert m.fv == 2
    assert m.column("V") == m.cell("V", "V") + 2
    assert (m.v_se, m.v_ppv, m.s_se, m.s_ppv) == (1.0, 1.0, 1.0, 1.0)
    assert m.row("V") == 198 and m.row("S") == 128
    assert m.cell("N", "-") == 0 and m.row("-") == 0


def test_calling_every_beat_normal_finds_no_ectopic_beat() -> None:
    ref = reference("mitdb/119")  # 444 V beats
    every = np.ones(len(ref.beat_sample), dtype=bool)
    m = matrix(ref, every, ["N"] * len(ref.beat_sample))
    assert m.v_se == 0.0
    assert m.v_ppv is None  # nothing detected as V: undefined, not 0 %
    assert m.cell("V", "N") == 444


def test_missed_v_beats_count_against_v_sensitivity() -> None:
    ref = reference("mitdb/119")
    classes = np.array(ref.beat_class)
    keep = classes != "V"
    keep[np.flatnonzero(classes == "V")[::2]] = True  # detect every other V beat
    labels = [ORACLE[c] for c in classes[keep]]
    m = matrix(ref, keep, labels)
    assert m.cell("V", "-") == 222
    assert m.v_se == pytest.approx(0.5)
    assert m.v_ppv == 1.0


def test_extra_v_detections_count_against_v_positive_predictivity() -> None:
    ref = np.array([1000, 2000], dtype=np.int64)
    scored = score_beats(ref, np.array([1000, 1500, 2000], dtype=np.int64), tolerance=54, start=0)
    m = confusion_matrix(scored, ["V", "N"], ["V", "V", "N"])
    assert m.cell("-", "V") == 1
    assert m.v_ppv == pytest.approx(0.5)


def test_matrices_add_up_and_unknown_labels_are_refused() -> None:
    ref = np.array([1000], dtype=np.int64)
    scored = score_beats(ref, ref, tolerance=54, start=0)
    one = confusion_matrix(scored, ["S"], ["S"])
    assert (one + one).cell("S", "S") == 2
    with pytest.raises(ValueError, match="N, S, V or Q"):
        confusion_matrix(scored, ["S"], ["X"])
