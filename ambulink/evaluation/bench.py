"""QRS detection throughput and accuracy of ambulink against peers in one run.

Throughput is samples per CPU-second (``time.process_time``, best of N runs per record) on one
lead; accuracy is the gross EC57 score of the same detections with the same matcher, test
period and exclusions as ``ambulink eval qrs``. Only ratios between methods measured in the
same run mean anything across machines.
"""

from __future__ import annotations

import importlib
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ambulink.errors import ConfigError
from ambulink.evaluation.matching import (
    EC57_SKIP_S,
    EC57_TOLERANCE_MS,
    DetectionCounts,
    score_beats,
    sorted_samples,
    tolerance_samples,
)
from ambulink.evaluation.records import list_records, read_record

Detect = Callable[[NDArray[np.float64], float], ArrayLike]
OURS = "ambulink"
BENCH_EXTRA = "not installed (pip install '.[bench]')"


@dataclass(frozen=True)
class BenchSettings:
    """Records, lead, repetitions and the optional excerpt length (seconds) to bench on."""

    data_dir: Path
    records: tuple[str, ...] | None = None
    lead: int = 0
    repeat: int = 3
    seconds: float | None = None
    skip_s: float = EC57_SKIP_S
    tolerance_ms: float = EC57_TOLERANCE_MS

    def __post_init__(self) -> None:
        if self.lead < 0:
            raise ConfigError(f"--lead must be 0 or more, got {self.lead}")
        if not 1 <= self.repeat <= 100:
            raise ConfigError(f"--repeat must be 1-100, got {self.repeat}")
        if self.seconds is not None and not self.seconds > 0:
            raise ConfigError(f"--seconds must be a positive number of seconds, got {self.seconds}")

    @property
    def scored_from_s(self) -> float:
        """Start of the test period: the EC57 skip, or 0 when the excerpt is not longer."""
        if self.seconds is not None and self.seconds <= self.skip_s:
            return 0.0
        return self.skip_s


@dataclass(frozen=True)
class Method:
    """A QRS detector to measure; ``detect`` is None when it cannot run (``status`` says why)."""

    name: str
    detect: Detect | None
    status: str = "ok"
    version: str = ""


@dataclass(frozen=True)
class MethodResult:
    name: str
    status: str
    samples: int = 0
    cpu_s: float = 0.0
    counts: DetectionCounts = field(default_factory=DetectionCounts)
    version: str = ""

    @property
    def ran(self) -> bool:
        return self.status == "ok"

    @property
    def samples_per_cpu_s(self) -> float | None:
        return self.samples / self.cpu_s if self.ran and self.cpu_s > 0 else None

    def as_dict(self) -> dict[str, object]:
        return {
            "method": self.name,
            "status": self.status,
            "version": self.version,
            "samples": self.samples,
            "cpu_s": self.cpu_s,
            "samples_per_cpu_s": self.samples_per_cpu_s,
            **self.counts.as_dict(),
        }


def speed_ratio(ours: MethodResult, other: MethodResult) -> float | None:
    """How many times more samples per CPU-second ours processes than ``other``."""
    a, b = ours.samples_per_cpu_s, other.samples_per_cpu_s
    return a / b if a is not None and b is not None else None


@contextmanager
def _quiet_warnings() -> Iterator[None]:
    """Peers warn about things we cannot change; their warnings are not ours to fail on."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _import(module: str) -> Any | None:
    try:
        with _quiet_warnings():
            return importlib.import_module(module)
    except ImportError:
        return None


def ours() -> Method:
    """``ambulink.signal.qrs.detect``, or why it cannot run."""
    try:
        qrs = importlib.import_module("ambulink.signal.qrs")
    except ImportError as exc:
        return Method(OURS, None, f"not available: {exc}")
    detect: Detect = qrs.detect
    return Method(OURS, detect, version=_version("ambulink"))


def xqrs() -> Method:
    processing = _import("wfdb.processing")
    if processing is None:
        return Method("XQRS (wfdb)", None, BENCH_EXTRA)

    def detect(signal: NDArray[np.float64], fs: float) -> ArrayLike:
        with _quiet_warnings():
            peaks: ArrayLike = processing.xqrs_detect(signal, fs, verbose=False)
        return peaks

    return Method("XQRS (wfdb)", detect, version=_version("wfdb"))


def neurokit() -> Method:
    nk = _import("neurokit2")
    if nk is None:
        return Method("NeuroKit2", None, BENCH_EXTRA)

    def detect(signal: NDArray[np.float64], fs: float) -> ArrayLike:
        with _quiet_warnings():
            _, info = nk.ecg_peaks(signal, sampling_rate=round(fs))
        peaks: ArrayLike = info["ECG_R_Peaks"]
        return peaks

    return Method("NeuroKit2", detect, version=_version("neurokit2"))


def default_methods() -> list[Method]:
    return [ours(), xqrs(), neurokit()]


def _version(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "unknown"


def best_cpu_seconds(repeat: int, run: Callable[[], ArrayLike]) -> tuple[float, ArrayLike]:
    """Smallest CPU time (s) of ``repeat`` calls of ``run``, and the last call's result."""
    best = float("inf")
    result: ArrayLike = ()
    for _ in range(repeat):
        started = time.process_time()
        result = run()
        best = min(best, time.process_time() - started)
    return best, result


@dataclass(frozen=True)
class BenchResult:
    """Every method's result; ``records`` were benched, ``skipped`` have no beat labels."""

    settings: BenchSettings
    methods: list[MethodResult]
    records: list[str]
    skipped: list[str]

    @property
    def ours(self) -> MethodResult | None:
        return next((m for m in self.methods if m.name == OURS), None)

    def as_dict(self) -> dict[str, object]:
        s = self.settings
        ours = self.ours
        return {
            "benchmark": "qrs",
            "settings": {
                "data": str(s.data_dir),
                "records": self.records,
                "lead": s.lead,
                "repeat": s.repeat,
                "seconds": s.seconds,
                "scored_from_s": s.scored_from_s,
                "tolerance_ms": s.tolerance_ms,
            },
            "skipped": self.skipped,
            "methods": [
                {**m.as_dict(), "ours_speed_ratio": speed_ratio(ours, m) if ours else None}
                for m in self.methods
            ],
        }


def bench_qrs(
    settings: BenchSettings,
    methods: Sequence[Method],
    progress: Callable[[int, int, str], None] | None = None,
) -> BenchResult:
    """Time and score each runnable method on every selected record, same lead, same run.

    Records without beat annotations (rhythm-only databases) cannot be scored: skipped.
    """
    names = list_records(settings.data_dir, settings.records)
    benched: list[str] = []
    skipped: list[str] = []
    samples = dict.fromkeys((m.name for m in methods), 0)
    cpu_s = dict.fromkeys(samples, 0.0)
    counts = dict.fromkeys(samples, DetectionCounts())
    for i, name in enumerate(names, start=1):
        if progress is not None:
            progress(i, len(names), name)
        record = read_record(settings.data_dir, name, settings.seconds)
        reference = record.reference()
        lead = record.lead(settings.lead)
        if not reference.has_beats:
            skipped.append(name)
            continue
        benched.append(name)
        for method in methods:
            if method.detect is None:
                continue
            run = partial(method.detect, lead, record.fs)
            seconds, peaks = best_cpu_seconds(settings.repeat, run)
            samples[method.name] += len(lead)
            cpu_s[method.name] += seconds
            counts[method.name] += score_beats(
                reference.beat_sample,
                sorted_samples(peaks),
                tolerance=tolerance_samples(record.fs, settings.tolerance_ms),
                start=round(settings.scored_from_s * record.fs),
                excluded=reference.excluded,
            ).counts
    results = [
        MethodResult(m.name, m.status, samples[m.name], cpu_s[m.name], counts[m.name], m.version)
        for m in methods
    ]
    return BenchResult(settings, results, benched, skipped)
