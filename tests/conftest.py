"""Shared fixtures: real PhysioNet records, bundled or from ../shared/ecg."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import wfdb
from hypothesis import settings
from numpy.typing import NDArray

from ambulink.data import record_path
from ambulink.evaluation.reference import Annotations, Reference, build_reference

# Deterministic property tests, as in scipy's conftest.
settings.register_profile("ambulink", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("ambulink")

SHARED_ECG = Path(
    os.environ.get("AMBULINK_SHARED_ECG", Path(__file__).resolve().parents[2] / "shared" / "ecg")
)


@dataclass(frozen=True)
class Record:
    """A WFDB record with its reference annotations (``None`` when it has none)."""

    name: str
    signals_mv: NDArray[np.float64]  # (n_samples, n_leads)
    fs: float
    leads: list[str]
    annotation: wfdb.Annotation | None

    def lead(self, index: int = 0, seconds: float | None = None) -> NDArray[np.float64]:
        lead = self.signals_mv[:, index]
        return lead if seconds is None else lead[: int(seconds * self.fs)]

    def reference(self) -> Reference:
        """Reference beats (AAMI classes), VF exclusions and rhythm episodes from ``.atr``."""
        if self.annotation is None:
            raise ValueError(f"record {self.name} has no reference annotations")
        ann = self.annotation
        annotations = Annotations(
            np.asarray(ann.sample, dtype=np.int64),
            tuple(ann.symbol),
            tuple(ann.aux_note or [""] * len(ann.sample)),
        )
        return build_reference(annotations, self.fs, len(self.signals_mv))


def read_record(path: str, name: str) -> Record:
    rec = wfdb.rdrecord(path)
    try:
        ann = wfdb.rdann(path, "atr")
    except FileNotFoundError:
        ann = None
    return Record(
        name, np.asarray(rec.p_signal, dtype=np.float64), float(rec.fs), list(rec.sig_name), ann
    )


_CACHE: dict[str, Record] = {}


def bundled(name: str) -> Record:
    """A record shipped in ``ambulink/data`` (always present)."""
    if name not in _CACHE:
        _CACHE[name] = read_record(record_path(name), name)
    return _CACHE[name]


def shared(name: str) -> Record:
    """A record from ../shared/ecg; skips the test with a clear reason when it is absent."""
    path = SHARED_ECG / name
    if not path.with_suffix(".hea").exists():
        pytest.skip(
            f"shared ECG record {path} is not here (set AMBULINK_SHARED_ECG or add ../shared/ecg)"
        )
    key = f"shared:{name}"
    if key not in _CACHE:
        _CACHE[key] = read_record(str(path), name)
    return _CACHE[key]


@pytest.fixture(scope="session")
def shared_ecg() -> Path:
    if not SHARED_ECG.is_dir():
        pytest.skip(f"{SHARED_ECG} is absent: the development records are not on this machine")
    return SHARED_ECG
