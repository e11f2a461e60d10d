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


def mains_interference(x: FloatArray, fs_hz: float, min_mv: float = MAINS_MIN_MV) -> list[float]:
    """The powerline frequencies (50, 60 Hz) whose interference stands out of one lead's
    spectrum: a peak of at least ``min_mv`` amplitude and ``MAINS_PROMINENCE`` times the
    median of the spectrum 5-10 Hz either side of it."""
    return _MainsBins(x.shape[0], fs_hz).found(x, min_mv)


class _MainsBins:
    """The spectrum bins ``mains_interference`` reads for ``n`` samples at ``fs_hz``, found
    once (a stream judges every block of the same length)."""

    def __init__(self, n: int, fs_hz: float) -> None:
        self.n = n
        self.bins: list[tuple[float, NDArray[np.intp], NDArray[np.intp]]] = []
        if n < int(fs_hz):  # under a second: too few bins to tell a peak
            return
        freqs = np.fft.rfftfreq(n, 1.0 / fs_hz)
        for mains in MAINS_HZ:
            if mains + 10.0 >= 0.5 * fs_hz:
                continue
            near = np.abs(freqs - mains)
            peak = np.flatnonzero(near <= MAINS_SEARCH_HZ)
            around = np.flatnonzero((near >= 5.0) & (near <= 10.0))
            self.bins.append((mains, peak, around))

    def found(self, x: FloatArray, min_mv: float) -> list[float]:
        if not self.bins:
            return []
        spectrum = np.fft.rfft(x - x.mean())
        out = []
        for mains, peak_bins, around_bins in self.bins:
            peak = 2.0 * float(np.abs(spectrum[peak_bins]).max()) / self.n
            around = 2.0 * float(np.median(np.abs(spectrum[around_bins]))) / self.n
            if peak >= min_mv and peak >= MAINS_PROMINENCE * around:
                out.append(mains)
        return out


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


class MainsGate:
    """Streaming powerline removal for one lead, switched on only while there is hum.

    The stream is cut into blocks of ``block_s`` on a fixed grid from its first sample. After
    each block, ``mains_interference`` on that block's raw samples decides whether the next
    block is notched (causal notches at 50 and 60 Hz in series). Hum is a peak of at least
    ``min_mv`` (amplitude): the 10-20 µV of 60 Hz in many MIT-BIH records does not switch it
    on. Clean signal passes untouched: a notch rings at every sharp QRS edge, which moves QRS
    shapes a little. When it switches on, the notch is first run over the block just judged
    (2 s, ~100 cycles: settled), so it starts without a transient; no decision depends on how
    the stream is chunked.
    """

    def __init__(self, fs_hz: float, block_s: float = 2.0, min_mv: float = 0.05) -> None:
        self._min_mv = min_mv
        self._block = max(int(round(block_s * fs_hz)), int(fs_hz))
        self._bins = _MainsBins(self._block, fs_hz)
        self._sos = [notch_sos(mains, fs_hz) for mains in MAINS_HZ if mains < 0.45 * fs_hz]
        self._notch: SosFilter | None = None  # running while active
        self._raw: list[FloatArray] = []  # the current block so far, as fed ...
        self._filtered: list[FloatArray] = []  # ... and as filtered before the gate
        self._fill = 0
        self.active = False  # hum found in the last full block: the current one is notched

    def __call__(self, filtered: FloatArray, raw: FloatArray) -> FloatArray:
        """``filtered`` (1-D) with hum removed where it was found; ``raw``: the same samples
        unfiltered, on which the hum is judged."""
        if not self._sos or filtered.size == 0:
            return filtered
        out = filtered
        start = 0
        while start < filtered.size:
            stop = min(filtered.size, start + self._block - self._fill)
            if self._notch is not None:
                if out is filtered:
                    out = np.array(filtered, dtype=np.float64, copy=True)
                out[start:stop] = self._notch(filtered[start:stop])
            self._raw.append(raw[start:stop].copy())  # callers may reuse their arrays
            self._filtered.append(filtered[start:stop].copy())
            self._fill += stop - start
            if self._fill == self._block:
                self._judge()
            start = stop
        return out

    def _judge(self) -> None:
        block = np.concatenate(self._raw)
        self.active = bool(self._bins.found(block, self._min_mv))
        if self.active and self._notch is None:
            self._notch = SosFilter(np.vstack(self._sos))
            self._notch(np.concatenate(self._filtered))  # settle it on the block just judged
        elif not self.active:
            self._notch = None
        self._raw, self._filtered, self._fill = [], [], 0
