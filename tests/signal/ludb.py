"""LUDB records and their hand-marked wave boundaries for tests (from ``../shared/ecg/ludb``,
skipped when absent)."""

from __future__ import annotations

import numpy as np
import pytest
import wfdb
from numpy.typing import NDArray

from tests.conftest import SHARED_ECG


def _path(n: int) -> str:
    path = SHARED_ECG / "ludb" / "data" / str(n)
    if not path.with_suffix(".hea").exists():
        pytest.skip(f"LUDB record {path} is not here")
    return str(path)


def ludb(n: int) -> tuple[NDArray[np.float64], float, list[str]]:
    """LUDB record in mV. Its 1.0.1 headers give each lead a gain that scales it to a 1 mV
    span (so ``shared()``'s p_signal loses amplitude); the stored integers are µV."""
    raw = wfdb.rdrecord(_path(n), physical=False)
    return raw.d_signal / 1000.0, float(raw.fs), list(raw.sig_name)


def wave_marks(n: int, lead: str, wave: str) -> list[tuple[int, int]]:
    """(onset, offset) samples of every ``wave`` ("p", "N" for QRS, "t") marked in ``lead``."""
    annotation = wfdb.rdann(_path(n), lead.lower())
    symbols, samples = list(annotation.symbol), [int(s) for s in annotation.sample]
    return [
        (samples[i - 1], samples[i + 1])
        for i in range(1, len(symbols) - 1)
        if symbols[i] == wave and symbols[i - 1] == "(" and symbols[i + 1] == ")"
    ]
