"""Running an ST analysis over PTB-XL, PTB Diagnostic and LUDB records and scoring it.

The analysis is passed in (``ambulink.signal.st.analyze`` from the command line, stand-ins in
tests), so this module never imports ``ambulink.signal``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ambulink.errors import ConfigError, RecordNotFound, SignalError
from ambulink.evaluation.st_jpoint import ErrorSummary, JPointErrors, group_beats, jpoint_errors
from ambulink.evaluation.st_records import (
    Dataset,
    StCase,
    StSignals,
    case_names,
    list_cases,
    read_delineation,
    read_signals,
    select_cases,
)
from ambulink.evaluation.st_scoring import RecordOutcome, StFinding, StScore, score
from ambulink.evaluation.st_scoring import score_by_dataset as _by_dataset

Progress = Callable[[int, int, str], None]


@runtime_checkable
class StAnalysis(StFinding, Protocol):
    """What ``ambulink.signal.st.analyze`` returns, as far as evaluation reads it."""

    @property
    def r_peaks(self) -> ArrayLike: ...
    @property
    def j_offset_ms(self) -> float: ...


class Analyze(Protocol):
    def __call__(
        self,
        signals: NDArray[np.float64],
        fs: float,
        leads: list[str],
        sex: str | None = None,
        age: float | None = None,
    ) -> StAnalysis: ...


@dataclass(frozen=True)
class StEvalSettings:
    """Folders, record selection, per-folder limit and the excerpt analysed (s; None: whole)."""

    data_dirs: tuple[Path, ...]
    records: tuple[str, ...] | None = None
    limit: int | None = None
    seconds: float | None = 10.0
    jpoint: bool = False  # asked for explicitly; LUDB folders get the J-point check anyway

    def __post_init__(self) -> None:
        if not self.data_dirs:
            raise ConfigError("eval st needs at least one --data folder")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"--limit must be 1 or more, got {self.limit}")
        if self.seconds is not None and not self.seconds > 0:
            raise ConfigError(f"--seconds must be a positive number of seconds, got {self.seconds}")


@dataclass(frozen=True)
class _Refused:
    """Stands for a result when the analysis raised ``SignalError`` on a record."""

    why_not: str
    stemi: bool = False
    territories: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    ischemic_depression: bool = False
    confounders: tuple[str, ...] = ()
    evaluable: bool = False


@dataclass
class StEvaluation:
    settings: StEvalSettings
    datasets: dict[str, Dataset]  # folder → database
    outcomes: list[RecordOutcome] = field(default_factory=list)
    jpoint: JPointErrors | None = None  # None when no LUDB folder was scored
    jpoint_records: int = 0

    @property
    def gross(self) -> StScore:
        return score(self.outcomes)

    def by_dataset(self) -> dict[str, StScore]:
        return _by_dataset(self.outcomes)

    def jpoint_summary(self) -> ErrorSummary | None:
        return None if self.jpoint is None else ErrorSummary.of(self.jpoint.beats_ms)

    def jpoint_per_lead(self) -> dict[str, ErrorSummary]:
        if self.jpoint is None:
            return {}
        return {lead: ErrorSummary.of(e) for lead, e in self.jpoint.per_lead_ms.items()}

    def as_dict(self) -> dict[str, object]:
        s = self.settings
        jpoint = self.jpoint_summary()
        return {
            "settings": {
                "data": list(self.datasets),
                "datasets": dict(self.datasets),
                "records": list(s.records) if s.records else None,
                "limit": s.limit,
                "seconds": s.seconds,
            },
            "gross": self.gross.as_dict(),
            "by_dataset": {d: sc.as_dict() for d, sc in self.by_dataset().items()},
            "jpoint": None
            if jpoint is None or self.jpoint is None
            else {
                "records": self.jpoint_records,
                "unmatched_beats": self.jpoint.unmatched,
                **jpoint.as_dict(),
                "per_lead": {lead: e.as_dict() for lead, e in self.jpoint_per_lead().items()},
            },
            "records": [o.as_dict() for o in self.outcomes],
        }


def find_cases(settings: StEvalSettings) -> tuple[dict[str, Dataset], list[StCase]]:
    """The records to score, per folder, after ``--records`` and ``--limit``."""
    datasets: dict[str, Dataset] = {}
    chosen: list[StCase] = []
    for data_dir in settings.data_dirs:
        cases = list_cases(data_dir)
        datasets[str(data_dir)] = cases[0].dataset
        if settings.records is not None:
            cases = select_cases(cases, settings.records)
        chosen += cases[: settings.limit]
    if settings.records is not None:
        missing = [n for n in settings.records if not any(n in case_names(c) for c in chosen)]
        if missing and settings.limit is None:
            raise RecordNotFound(f"no record {', '.join(missing)} in {', '.join(datasets)}")
    if settings.jpoint and Dataset.LUDB not in datasets.values():
        raise ConfigError("--jpoint needs a LUDB folder among --data (it uses LUDB's QRS marks)")
    if not chosen:
        raise RecordNotFound(f"no records to score in {', '.join(datasets)}")
    return datasets, chosen


def _analyse(case: StCase, analyze: Analyze, signals: StSignals) -> StFinding:
    try:
        found: StFinding = analyze(
            signals.signals_mv,
            signals.fs,
            list(signals.leads),
            sex=case.reference.sex,
            age=case.reference.age,
        )
    except SignalError as exc:
        return _Refused(f"the analysis refused the record: {exc}")
    return found


def _jpoint(case: StCase, found: StAnalysis, signals: StSignals) -> JPointErrors:
    marks = read_delineation(case, signals.leads)
    n_samples = signals.signals_mv.shape[0]
    beats = [b for b in group_beats(marks, signals.fs) if b.offset < n_samples]
    return jpoint_errors(beats, found.r_peaks, float(found.j_offset_ms), signals.fs)


def evaluate_st(
    settings: StEvalSettings, analyze: Analyze, progress: Progress | None = None
) -> StEvaluation:
    """Analyse every selected record and score it; LUDB records also get the J-point check
    (on the records the analysis could evaluate)."""
    datasets, cases = find_cases(settings)
    evaluation = StEvaluation(settings, datasets)
    for i, case in enumerate(cases, start=1):
        if progress is not None:
            progress(i, len(cases), case.label)
        signals = read_signals(case, settings.seconds)
        found = _analyse(case, analyze, signals)
        evaluation.outcomes.append(RecordOutcome.of(case.dataset, case.name, case.reference, found))
        if case.dataset is Dataset.LUDB:
            errors = evaluation.jpoint = evaluation.jpoint or JPointErrors()
            if found.evaluable and isinstance(found, StAnalysis):
                errors.extend(_jpoint(case, found, signals))
                evaluation.jpoint_records += 1
    return evaluation
