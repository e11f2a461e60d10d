"""Run a detector over annotated records and score it: the work behind ``ambulink eval``.

Detectors are passed in as callables taking ``(record, lead)``, so the same loop scores the
real ``ambulink.signal`` detectors and, in tests, detections derived from the reference.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import reduce
from operator import add
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from ambulink.errors import ConfigError, SignalError
from ambulink.evaluation.beat_scoring import ConfusionMatrix, confusion_matrix
from ambulink.evaluation.matching import (
    EC57_SKIP_S,
    EC57_TOLERANCE_MS,
    DetectionCounts,
    ScoredMatch,
    score_beats,
    sorted_samples,
    tolerance_samples,
)
from ambulink.evaluation.records import EcgRecord, list_records, read_record
from ambulink.evaluation.reference import Reference
from ambulink.evaluation.rhythm_scoring import SCORED_LABELS, LabelScore, RhythmScore, score_rhythm
from ambulink.signal.events import Beat, Episode

QrsDetector = Callable[[EcgRecord, int | None], ArrayLike]
BeatClassifier = Callable[[EcgRecord, int | None], Sequence[Beat]]
EpisodeDetector = Callable[[EcgRecord, int | None], Sequence[Episode]]
Progress = Callable[[int, int, str], None]
NO_BEATS = "no beat annotations (rhythm-only record)"


def _quiet(index: int, total: int, name: str) -> None:
    """Default progress callback: report nothing."""


@dataclass(frozen=True)
class EvalSettings:
    """What to score and how: folder, records (None = all), lead, EC57 test period."""

    data_dir: Path
    records: tuple[str, ...] | None = None
    lead: int | None = 0  # None: every lead, as columns (the first analysed)
    skip_s: float = EC57_SKIP_S
    tolerance_ms: float = EC57_TOLERANCE_MS

    def __post_init__(self) -> None:
        if self.lead is not None and self.lead < 0:
            raise ConfigError(f"--lead must be 0 or more, got {self.lead}")
        if not self.skip_s >= 0:
            raise ConfigError(f"--skip-s must be 0 or more seconds, got {self.skip_s}")
        if not 0 < self.tolerance_ms <= 1000:
            raise ConfigError(f"--tolerance-ms must be in (0, 1000] ms, got {self.tolerance_ms}")

    @property
    def lead_label(self) -> str:
        """How reports name the analysed signal: "lead 0", or "all leads"."""
        return "all leads" if self.lead is None else f"lead {self.lead}"

    def as_dict(self) -> dict[str, object]:
        return {
            "data": str(self.data_dir),
            "records": list(self.records) if self.records is not None else None,
            "lead": "all" if self.lead is None else self.lead,
            "skip_s": self.skip_s,
            "tolerance_ms": self.tolerance_ms,
        }


def _each(settings: EvalSettings, progress: Progress) -> Iterator[tuple[EcgRecord, Reference]]:
    """Each selected record with its reference, read one at a time (lead checked)."""
    names = list_records(settings.data_dir, settings.records)
    for i, name in enumerate(names, start=1):
        progress(i, len(names), name)
        record = read_record(settings.data_dir, name)
        record.check_lead(settings.lead)
        yield record, record.reference()


def _each_with_beats(
    settings: EvalSettings, progress: Progress, skipped: dict[str, str]
) -> Iterator[tuple[EcgRecord, Reference]]:
    """``_each``, less the records without beat annotations, which go into ``skipped``."""
    for record, ref in _each(settings, progress):
        if ref.has_beats:
            yield record, ref
        else:
            skipped[record.name] = NO_BEATS


@contextmanager
def _naming(record: EcgRecord, settings: EvalSettings) -> Iterator[None]:
    """Re-raise a detector's ``SignalError`` with the record and lead it choked on."""
    try:
        yield
    except SignalError as exc:
        raise SignalError(f"record {record.name} {settings.lead_label}: {exc}") from exc


def _score(
    settings: EvalSettings, record: EcgRecord, ref: Reference, det: ArrayLike
) -> ScoredMatch:
    return score_beats(
        ref.beat_sample,
        sorted_samples(det),
        tolerance=tolerance_samples(record.fs, settings.tolerance_ms),
        start=round(settings.skip_s * record.fs),
        excluded=ref.excluded,
    )


@dataclass(frozen=True)
class QrsEvaluation:
    """Per-record QRS detection counts; records without beat annotations are ``skipped``."""

    settings: EvalSettings
    records: dict[str, DetectionCounts]
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def gross(self) -> DetectionCounts:
        return reduce(add, self.records.values(), DetectionCounts())

    def average(self) -> tuple[float | None, float | None]:
        """Mean of the per-record Se and +P (records where each is defined)."""
        se = [c.se for c in self.records.values() if c.se is not None]
        ppv = [c.ppv for c in self.records.values() if c.ppv is not None]
        return (float(np.mean(se)) if se else None, float(np.mean(ppv)) if ppv else None)

    def as_dict(self) -> dict[str, object]:
        average_se, average_ppv = self.average()
        return {
            "evaluation": "qrs",
            "settings": self.settings.as_dict(),
            "records": {name: c.as_dict() for name, c in self.records.items()},
            "skipped": self.skipped,
            "gross": self.gross.as_dict(),
            "average": {"se": average_se, "ppv": average_ppv},
        }


def evaluate_qrs(
    settings: EvalSettings, detect: QrsDetector, progress: Progress = _quiet
) -> QrsEvaluation:
    """Score ``detect`` beat by beat on every selected record (EC57)."""
    counts: dict[str, DetectionCounts] = {}
    skipped: dict[str, str] = {}
    for record, ref in _each_with_beats(settings, progress, skipped):
        with _naming(record, settings):
            peaks = detect(record, settings.lead)
        counts[record.name] = _score(settings, record, ref, peaks).counts
    return QrsEvaluation(settings, counts, skipped)


@dataclass(frozen=True)
class BeatRecord:
    """One record's classification result; ``paced`` records stay out of class statistics."""

    counts: DetectionCounts
    matrix: ConfusionMatrix
    paced: bool


@dataclass(frozen=True)
class BeatEvaluation:
    settings: EvalSettings
    records: dict[str, BeatRecord]
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def paced_records(self) -> list[str]:
        return [name for name, r in self.records.items() if r.paced]

    @property
    def gross_counts(self) -> DetectionCounts:
        """QRS detection counts over every record, paced ones included."""
        return reduce(add, (r.counts for r in self.records.values()), DetectionCounts())

    @property
    def gross_matrix(self) -> ConfusionMatrix:
        """Confusion matrix summed over the records that are not mostly paced."""
        kept = (r.matrix for r in self.records.values() if not r.paced)
        return reduce(add, kept, ConfusionMatrix())

    def as_dict(self) -> dict[str, object]:
        return {
            "evaluation": "beats",
            "settings": self.settings.as_dict(),
            "records": {
                name: {"paced": r.paced, "qrs": r.counts.as_dict(), "classes": r.matrix.as_dict()}
                for name, r in self.records.items()
            },
            "skipped": self.skipped,
            "paced_records_excluded": self.paced_records,
            "gross": {"qrs": self.gross_counts.as_dict(), "classes": self.gross_matrix.as_dict()},
        }


def evaluate_beats(
    settings: EvalSettings, classify: BeatClassifier, progress: Progress = _quiet
) -> BeatEvaluation:
    """Match classified beats to reference beats (EC57) and tally AAMI classes."""
    results: dict[str, BeatRecord] = {}
    skipped: dict[str, str] = {}
    for record, ref in _each_with_beats(settings, progress, skipped):
        with _naming(record, settings):
            beats = sorted(classify(record, settings.lead), key=lambda b: b.sample)
        scored = _score(settings, record, ref, [b.sample for b in beats])
        matrix = confusion_matrix(scored, ref.beat_class, [b.label for b in beats])
        results[record.name] = BeatRecord(scored.counts, matrix, ref.mostly_paced)
    return BeatEvaluation(settings, results, skipped)


@dataclass(frozen=True)
class RhythmEvaluation:
    settings: EvalSettings
    records: dict[str, RhythmScore]

    @property
    def gross(self) -> dict[str, LabelScore]:
        return {
            label: reduce(add, (r.labels[label] for r in self.records.values()), LabelScore(label))
            for label in SCORED_LABELS
        }

    @property
    def unscored_detected(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for result in self.records.values():
            for label, n in result.unscored_detected.items():
                totals[label] = totals.get(label, 0) + n
        return totals

    def as_dict(self) -> dict[str, object]:
        return {
            "evaluation": "rhythm",
            "settings": {**self.settings.as_dict(), "skip_s": 0.0},
            "records": {
                name: {
                    "labels": {k: v.as_dict() for k, v in r.labels.items()},
                    "unscored_detected": r.unscored_detected,
                }
                for name, r in self.records.items()
            },
            "gross": {k: v.as_dict() for k, v in self.gross.items()},
            "unscored_detected": self.unscored_detected,
        }


def evaluate_rhythm(
    settings: EvalSettings, detect: EpisodeDetector, progress: Progress = _quiet
) -> RhythmEvaluation:
    """Score detected rhythm episodes over whole records (no learning period)."""
    results: dict[str, RhythmScore] = {}
    for record, ref in _each(settings, progress):
        with _naming(record, settings):
            detected = detect(record, settings.lead)
        results[record.name] = score_rhythm(ref.episodes, detected, record.fs, record.n_samples)
    return RhythmEvaluation(settings, results)
