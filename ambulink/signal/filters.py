"""Causal filters that carry their state across chunks, so chunking never changes the output.

Every filter here is bit-identical whether fed a record whole or in pieces: IIR sections keep
scipy's ``zi``; FIR filters keep the last ``len(taps) - 1`` inputs and use ``np.convolve`` on
exactly the same samples for each output.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.signal import butter, iirnotch, sosfilt, sosfilt_zi, tf2sos

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
