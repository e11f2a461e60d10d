"""CPU time of the 12-lead ST analysis on 10 s, 500 Hz records, against NeuroKit2 in one run.

Each record is analysed ``repeat`` times and the fastest ``time.process_time`` counts. The peer,
NeuroKit2's ``ecg_clean`` then ``ecg_delineate`` (discrete wavelet method, which finds its own R
peaks) on lead II of the same excerpt, does less work (one lead, no ST criteria) but is the
nearest published delineator; its time only serves to turn ours into a ratio that carries over
to other machines.
"""

from __future__ import annotations

import csv
import importlib
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import wfdb
from numpy.typing import NDArray

from ambulink.errors import AmbulinkError, ConfigError, RecordNotFound
from ambulink.evaluation.st_records import STANDARD_LEADS

BAR_MS = 50.0  # issue 4: a 10 s 12-lead at 500 Hz in ≤ 50 ms on one core
EXCERPT_S = 10.0
PEER = "NeuroKit2 ecg_clean + ecg_delineate (dwt) on lead II"

Analyze = Callable[[NDArray[np.float64], float, list[str]], object]
Delineate = Callable[[NDArray[np.float64], float], object]


@dataclass(frozen=True)
class StBenchSettings:
    data_dir: Path
    repeat: int = 5
    limit: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.repeat <= 100:
            raise ConfigError(f"--repeat must be 1-100, got {self.repeat}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"--limit must be 1 or more, got {self.limit}")


@dataclass(frozen=True)
class Peer:
    """The comparison method; ``delineate`` is None when it cannot run (``status`` says why)."""

    name: str
    delineate: Delineate | None
    status: str = "ok"
    version: str = ""


@dataclass(frozen=True)
class StBenchRow:
    record: str
    ours_ms: float
    peer_ms: float | None


@dataclass
class StBenchResult:
    settings: StBenchSettings
    peer: Peer
    ours_version: str
    rows: list[StBenchRow] = field(default_factory=list)

    @property
    def median_ms(self) -> float | None:
        return statistics.median(r.ours_ms for r in self.rows) if self.rows else None

    @property
    def max_ms(self) -> float | None:
        return max((r.ours_ms for r in self.rows), default=None)

    @property
    def peer_median_ms(self) -> float | None:
        times = [r.peer_ms for r in self.rows if r.peer_ms is not None]
        return statistics.median(times) if times else None

    @property
    def ratio(self) -> float | None:
        """How many times faster ours is than the peer (median times; > 1: ours is faster)."""
        ours, peer = self.median_ms, self.peer_median_ms
        return peer / ours if ours and peer is not None else None

    def as_dict(self) -> dict[str, object]:
        return {
            "benchmark": "st",
            "settings": {
                "data": str(self.settings.data_dir),
                "repeat": self.settings.repeat,
                "limit": self.settings.limit,
                "excerpt_s": EXCERPT_S,
            },
            "ours_version": self.ours_version,
            "peer": {
                "name": self.peer.name,
                "status": self.peer.status,
                "version": self.peer.version,
            },
            "median_ms": self.median_ms,
            "max_ms": self.max_ms,
            "peer_median_ms": self.peer_median_ms,
            "ratio": self.ratio,
            "bar_ms": BAR_MS,
            "records": [r.__dict__ for r in self.rows],
        }


def version_of(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "unknown"


def neurokit_peer() -> Peer:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nk: Any = importlib.import_module("neurokit2")
    except ImportError:
        return Peer(PEER, None, "not installed (pip install '.[bench]')")

    def delineate(lead: NDArray[np.float64], fs: float) -> object:
        with warnings.catch_warnings():  # the peer's warnings are not ours to fail on
            warnings.simplefilter("ignore")
            rate = round(fs)
            cleaned = nk.ecg_clean(lead, sampling_rate=rate)
            found: object = nk.ecg_delineate(cleaned, None, sampling_rate=rate, method="dwt")
        return found

    return Peer(PEER, delineate, version=version_of("neurokit2"))


def bench_records(data_dir: Path, limit: int | None = None) -> list[Path]:
    """500 Hz records of a PTB-XL folder (``filename_hr`` of ptbxl_database.csv), or every
    ``*_hr`` header below ``data_dir`` (the bundled ambulink/data/ptbxl)."""
    if not data_dir.is_dir():
        raise RecordNotFound(f"data folder {data_dir} does not exist")
    database = data_dir / "ptbxl_database.csv"
    if database.is_file():
        with database.open(newline="") as file:
            paths = [data_dir / row["filename_hr"] for row in csv.DictReader(file)]
        paths = [p for p in paths if p.with_suffix(".hea").is_file()]
    else:
        paths = sorted(h.with_suffix("") for h in data_dir.rglob("*_hr.hea"))
    if not paths:
        raise RecordNotFound(f"no PTB-XL 500 Hz records (*_hr.hea) in {data_dir}")
    return paths[:limit]


def _read(path: Path) -> tuple[NDArray[np.float64], float, list[str]]:
    try:
        header = wfdb.rdheader(str(path))
        record = wfdb.rdrecord(str(path), sampto=min(int(EXCERPT_S * header.fs), header.sig_len))
    except (OSError, ValueError) as exc:
        raise AmbulinkError(f"could not read WFDB record {path}: {exc}") from exc
    names = [str(n) for n in record.sig_name]
    keep = [i for i, n in enumerate(names) if n.lower() in STANDARD_LEADS]
    signals = np.ascontiguousarray(np.asarray(record.p_signal, dtype=np.float64)[:, keep])
    return signals, float(record.fs), [STANDARD_LEADS[names[i].lower()] for i in keep]


def best_ms(repeat: int, run: Callable[[], object]) -> float:
    """Smallest CPU time (ms) of ``repeat`` calls of ``run``."""
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        run()
        best = min(best, time.process_time() - started)
    return 1000.0 * best


def bench_st(
    settings: StBenchSettings,
    analyze: Analyze,
    peer: Peer,
    progress: Callable[[int, int, str], None] | None = None,
    records: Sequence[Path] | None = None,
) -> StBenchResult:
    """Time ``analyze`` (and the peer, when it runs) on the first 10 s of each record."""
    paths = (
        list(records) if records is not None else bench_records(settings.data_dir, settings.limit)
    )
    result = StBenchResult(settings, peer, version_of("ambulink"))
    for i, path in enumerate(paths, start=1):
        if progress is not None:
            progress(i, len(paths), path.name)
        signals, fs, leads = _read(path)
        ours = best_ms(settings.repeat, partial(analyze, signals, fs, leads))
        peer_ms = None
        if peer.delineate is not None and "II" in leads:
            lead_ii = np.ascontiguousarray(signals[:, leads.index("II")])
            peer_ms = best_ms(settings.repeat, partial(peer.delineate, lead_ii, fs))
        result.rows.append(StBenchRow(path.name, ours, peer_ms))
    return result
