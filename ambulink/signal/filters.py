"""Causal filters that carry their state across chunks, so chunking never changes the output.

Every filter here is bit-identical whether fed a record whole or in pieces: IIR sections keep
scipy's ``zi``; FIR filters keep the last ``len(taps) - 1`` inputs and use ``np.convolve`` on
exactly the same samples for each output. ``remove_mains`` is the one batch filter, for
measurements on a stored window (the 12-lead ST analysis).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.signal import butter, iirnotch, sosfilt, sosfilt_zi, sosfiltfilt, tf2sos

FloatArray = NDArray[np.float64]


class SosFilter:
    """A causal IIR filter in second-order sections along axis 0 (one lead, or several as
    columns), state kept across chunks."""

    def __init__(self, sos: FloatArray) -> None:
        self._sos = np.asarray(sos, dtype=np.float64)
        self._zi: FloatArray | None = None

    def __call__(self, x: FloatArray) -> FloatArray:
        if x.shape[0] == 0:
            return x.astype(np.float64, copy=True)
        if self._zi is None:
            # Start from the steady state for the first sample, so a DC offset does not ring.
            base = sosfilt_zi(self._sos)
            self._zi = base * x[0] if x.ndim == 1 else base[..., np.newaxis] * x[0]
        y, self._zi = sosfilt(self._sos, x, axis=0, zi=self._zi)
        return np.asarray(y, dtype=np.float64)


class FirFilter:
    """A causal FIR filter ``y[n] = sum(taps[k] * x[n - k])``, state kept across chunks."""

    def __init__(self, taps: FloatArray) -> None:
        self._taps = np.asarray(taps, dtype=np.float64)
        self._tail: FloatArray = np.zeros(self._taps.size - 1)

    def __call__(self, x: FloatArray) -> FloatArray:
        if x.size == 0:
            return np.zeros(0)
        joined = np.concatenate((self._tail, x))
        self._tail = joined[joined.size - (self._taps.size - 1) :]
        return np.convolve(joined, self._taps, mode="valid")


def bandpass_sos(low_hz: float, high_hz: float, fs_hz: float, order: int = 2) -> FloatArray:
    """Butterworth band-pass in second-order sections."""
    return np.asarray(butter(order, (low_hz, high_hz), btype="bandpass", fs=fs_hz, output="sos"))


def highpass_sos(cutoff_hz: float, fs_hz: float, order: int = 2) -> FloatArray:
    return np.asarray(butter(order, cutoff_hz, btype="highpass", fs=fs_hz, output="sos"))


def lowpass_sos(cutoff_hz: float, fs_hz: float, order: int = 2) -> FloatArray:
    return np.asarray(butter(order, cutoff_hz, btype="lowpass", fs=fs_hz, output="sos"))


def notch_sos(mains_hz: float, fs_hz: float, quality: float = 30.0) -> FloatArray:
    b, a = iirnotch(mains_hz, quality, fs=fs_hz)
    return np.asarray(tf2sos(b, a))


MAINS_HZ = (50.0, 60.0)  # powerline frequencies; which one a recording has is not known
MAINS_SEARCH_HZ = 0.6  # the mains peak is looked for this far either side of 50 or 60 Hz
MAINS_MIN_MV = 0.01  # interference smaller than this (amplitude) is left alone ...
MAINS_PROMINENCE = 4.0  # ... as is a peak under this many times the spectrum around it


def mains_interference(x: FloatArray, fs_hz: float) -> list[float]:
    """The powerline frequencies (50, 60 Hz) whose interference stands out of one lead's
    spectrum: a peak of at least ``MAINS_MIN_MV`` amplitude and ``MAINS_PROMINENCE`` times the
    median of the spectrum 5-10 Hz either side of it."""
    n = x.shape[0]
    if n < int(fs_hz):  # under a second: too few bins to tell a peak
        return []
    amplitude = 2.0 * np.abs(np.fft.rfft(x - x.mean())) / n
    freqs = np.fft.rfftfreq(n, 1.0 / fs_hz)
    found = []
    for mains in MAINS_HZ:
        if mains + 10.0 >= 0.5 * fs_hz:
            continue
        near = np.abs(freqs - mains)
        peak = float(amplitude[near <= MAINS_SEARCH_HZ].max())
        around = float(np.median(amplitude[(near >= 5.0) & (near <= 10.0)]))
        if peak >= MAINS_MIN_MV and peak >= MAINS_PROMINENCE * around:
            found.append(mains)
    return found


def remove_mains(x: FloatArray, fs_hz: float, quality: float = 30.0) -> FloatArray:
    """Powerline interference removed from a stored window of one or more leads (samples along
    axis 0): zero-phase notches (no wave moves in time) at 50 and/or 60 Hz on the leads where
    ``mains_interference`` finds it. Clean leads are returned untouched: a notch rings at
    every sharp QRS edge, by a few µV that would move a borderline ST level."""
    y = np.array(x, dtype=np.float64, copy=True)
    columns = y[:, None] if y.ndim == 1 else y
    for lead in range(columns.shape[1]):
        found = mains_interference(columns[:, lead], fs_hz)
        if not found:
            continue
        sos = np.vstack([notch_sos(mains, fs_hz, quality) for mains in found])
        padlen = min(3 * (2 * sos.shape[0] + 1), columns.shape[0] - 1)
        columns[:, lead] = sosfiltfilt(sos, columns[:, lead], padlen=padlen)
    return y


class Preprocessor:
    """Monitoring-band ECG for display and analysis: baseline wander and powerline removed.

    High-pass ``highpass_hz`` (baseline wander), notch at ``mains_hz`` (50 or 60 Hz; None to
    skip) and low-pass ``lowpass_hz``, all causal with state carried across chunks.
    """

    def __init__(
        self,
        fs_hz: float,
        *,
        highpass_hz: float = 0.5,
        lowpass_hz: float = 40.0,
        mains_hz: float | None = 50.0,
    ) -> None:
        sections = [highpass_sos(highpass_hz, fs_hz, order=2)]
        if mains_hz is not None and mains_hz < 0.5 * fs_hz:
            sections.append(notch_sos(mains_hz, fs_hz))
        if lowpass_hz < 0.5 * fs_hz:
            sections.append(lowpass_sos(lowpass_hz, fs_hz, order=2))
        self._filter = SosFilter(np.vstack(sections))

    def __call__(self, x: FloatArray) -> FloatArray:
        return self._filter(x)
