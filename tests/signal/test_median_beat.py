"""Median beat and global J point, checked against real records and LUDB's hand marks."""

from __future__ import annotations

import numpy as np
import pytest
import wfdb

from ambulink.signal.median_beat import build_median_beat
from ambulink.signal.qrs import detect
from tests.conftest import SHARED_ECG, bundled


def test_median_beat_of_a_normal_12_lead() -> None:
    rec = bundled("ptbxl/00003_hr")
    use = np.ones(12, dtype=bool)
    median = build_median_beat(rec.signals_mv, rec.fs, detect(rec.signals_mv[:, 1], rec.fs), use)
    assert median is not None
    assert median.beats.size >= 8 and median.samples_mv.shape[1] == 12
    assert -70 < median.bounds.onset_ms < -15 and 20 < median.bounds.offset_ms < 70
    assert 60 <= median.bounds.duration_ms <= 120  # a normal QRS
    # PR baseline removed: the segment before the QRS sits at 0 mV
    pr = median.samples_mv[
        median.index(median.bounds.onset_ms - 30) : median.index(median.bounds.onset_ms - 10)
    ]
    assert np.abs(pr).max() < 0.03


def test_ectopic_beats_are_left_out() -> None:
    """mitdb 119 (ventricular bigeminy): only annotated normal beats make the median."""
    rec = bundled("mitdb/119")
    assert rec.annotation is not None
    start, stop = int(60 * rec.fs), int(80 * rec.fs)
    window = rec.signals_mv[start:stop]
    peaks = detect(window[:, 0], rec.fs)
    median = build_median_beat(window, rec.fs, peaks, np.ones(2, dtype=bool))
    assert median is not None
    ann = rec.annotation
    samples = np.asarray(ann.sample) - start
    symbols = np.asarray(ann.symbol)
    labels = [symbols[np.argmin(np.abs(samples - b))] for b in median.beats]
    assert labels.count("V") == 0 and len(labels) >= 5
    inside = (samples > 0.3 * rec.fs) & (samples < window.shape[0] - 0.5 * rec.fs)
    n_pvc = int(np.sum(symbols[inside] == "V"))
    assert n_pvc >= 3 and median.rejected >= n_pvc  # the window's PVCs were there, and left out


def test_j_point_against_ludb_marks() -> None:
    """Global J point (R + offset) vs each lead's hand-marked QRS offset, 10 LUDB records."""
    data = SHARED_ECG / "ludb" / "data"
    if not (data / "2.hea").exists():
        pytest.skip(f"LUDB is not at {data}")
    errors_ms: list[float] = []
    for n in (2, 4, 6, 16, 20, 30, 40, 62, 90, 120):
        path = str(data / str(n))
        raw = wfdb.rdrecord(path, physical=False)
        signals = raw.d_signal / 1000.0  # µV; LUDB 1.0.1 headers scale each lead to 1 mV span
        peaks = detect(signals[:, 1], raw.fs)
        median = build_median_beat(signals, raw.fs, peaks, np.ones(12, dtype=bool))
        assert median is not None, f"LUDB {n}: no median beat"
        j = median.bounds.offset_ms * raw.fs / 1000.0
        for lead in raw.sig_name:
            ann = wfdb.rdann(path, lead)
            s, sym = np.asarray(ann.sample), ann.symbol
            for k in range(len(sym) - 1):
                if sym[k] == "N" and sym[k + 1] == ")":
                    r = median.beats[np.argmin(np.abs(median.beats - s[k]))]
                    if abs(r - s[k]) < 0.1 * raw.fs:
                        errors_ms.append(abs(r + j - s[k + 1]) * 1000.0 / raw.fs)
    assert len(errors_ms) > 500
    assert float(np.median(errors_ms)) <= 15.0
    assert float(np.percentile(errors_ms, 95)) <= 40.0
