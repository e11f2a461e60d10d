"""Input checks shared by every detector: clear ``SignalError`` messages, never a numpy crash."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ambulink.errors import SignalError

MIN_FS_HZ = 100.0
MAX_FS_HZ = 2000.0
MAX_RECORD_LEADS = 18  # a 12-lead ECG with posterior and right-sided leads


def check_fs(fs: Any) -> float:
    """Return ``fs`` as a float after checking it is a finite rate in 100-2000 Hz."""
    try:
        fs_hz = float(fs)
    except (TypeError, ValueError) as exc:
        raise SignalError(f"fs must be a number in Hz, got {fs!r}") from exc
    if not math.isfinite(fs_hz) or not MIN_FS_HZ <= fs_hz <= MAX_FS_HZ:
        raise SignalError(f"fs must be {MIN_FS_HZ:g}-{MAX_FS_HZ:g} Hz, got {fs!r}")
    return fs_hz


def check_gain(gain: Any) -> float:
    """ADC units per mV, finite and positive."""
    try:
        value = float(gain)
    except (TypeError, ValueError) as exc:
        raise SignalError(f"gain must be ADC units per mV, got {gain!r}") from exc
    if not math.isfinite(value) or value <= 0:
        raise SignalError(f"gain must be a positive number of ADC units per mV, got {gain!r}")
    return value


def to_millivolts(
    samples: Any, *, n_leads: int | None = None, gain: float | None = None
) -> NDArray[np.float64]:
    """Chunk as float64 mV, shape (n,) when ``n_leads`` is None else (n, n_leads).

    Integer samples (e.g. int16 from the wire) are divided by ``gain`` (ADC units per mV),
    which is then required; float samples are taken as mV already.
    """
    try:
        array = np.asarray(samples)
    except (TypeError, ValueError) as exc:
        raise SignalError(
            f"samples must be an array of numbers, got {type(samples).__name__}"
        ) from exc
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise SignalError(f"samples must be integers or floats, got dtype {array.dtype}")
    if n_leads is None:
        if array.ndim != 1:
            raise SignalError(
                f"expected a 1-D array of samples for one lead, got shape {array.shape}"
            )
    else:
        if array.ndim == 1 and n_leads == 1:
            array = array.reshape(-1, 1)
        if array.ndim != 2 or array.shape[1] != n_leads:
            raise SignalError(f"expected an (n_samples, {n_leads}) array, got shape {array.shape}")
    if np.issubdtype(array.dtype, np.integer):
        if gain is None:
            raise SignalError("integer samples need gain (ADC units per mV) to convert to mV")
        return array.astype(np.float64) / check_gain(gain)
    out = array.astype(np.float64, copy=False)
    if out.size and not np.isfinite(out).all():
        bad = int(np.flatnonzero(~np.isfinite(out.reshape(-1)))[0])
        raise SignalError(f"samples must be finite; found NaN or inf at flat index {bad}")
    return out


def as_record(signal: Any, fs: Any) -> tuple[NDArray[np.float64], float]:
    """Validate a whole record for a batch entry point: (mV samples (n_samples, n_leads), fs).

    One lead is a 1-D array or a single column; several leads are columns, as in WFDB's
    ``p_signal``.
    """
    fs_hz = check_fs(fs)
    if isinstance(signal, np.ndarray) and np.issubdtype(signal.dtype, np.integer):
        raise SignalError(
            "signal must be float samples in mV, got integers (ADC units?): for a WFDB record "
            "use rdrecord(...).p_signal, or divide d_signal by its adc_gain"
        )
    try:
        shape = np.shape(signal)
    except (TypeError, ValueError):
        shape = ()  # ragged: to_millivolts says what is wrong
    if len(shape) == 2:
        if not 1 <= shape[1] <= MAX_RECORD_LEADS or shape[1] > shape[0]:
            raise SignalError(
                f"expected samples down the rows and one column per lead (at most "
                f"{MAX_RECORD_LEADS}), got shape {shape}; for leads in rows pass signal.T"
            )
        record = to_millivolts(signal, n_leads=shape[1])
    else:
        record = to_millivolts(signal).reshape(-1, 1)
    if record.shape[0] == 0:
        raise SignalError("signal is empty; expected at least one sample")
    return record, fs_hz


def hold_invalid(signals: NDArray[np.float64]) -> tuple[NDArray[np.float64], list[int]]:
    """Samples (n_samples, n_leads) with non-finite values (WFDB reads its missing-sample value
    as NaN) held at the lead's last valid value, or its first before any; a lead with none is
    flat at 0. The detectors refuse NaN; a held value reads as a flat, lost lead. Also returns
    how many samples each lead had invalid."""
    valid = np.isfinite(signals)
    counts = [int(n) for n in (~valid).sum(axis=0)]
    if not any(counts):
        return signals, counts
    rows = np.arange(signals.shape[0])[:, None]
    last = np.maximum.accumulate(np.where(valid, rows, -1), axis=0)
    first = np.argmax(valid, axis=0)  # 0 for a lead with no valid sample
    last = np.where(last < 0, first[None, :], last)
    held = np.take_along_axis(signals, last, axis=0)
    held[:, ~valid.any(axis=0)] = 0.0
    return held, counts
