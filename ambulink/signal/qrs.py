"""Streaming QRS detection, one lead (Pan-Tompkins family, causal, chunk-invariant).

Pipeline: band-pass 5-15 Hz -> five-point derivative -> square -> 150 ms moving integration.
Candidates are local maxima of the integrated signal; adaptive signal/noise peak levels set the
threshold, with T-wave rejection by slope, searchback at half threshold after 1.66 RR without a
beat, and a decay of the signal level when searchback finds nothing, so the detector follows an
amplitude drop. The R peak is the largest band-passed deflection under the integration window,
corrected for the band-pass group delay. Decisions lag the signal by ~0.25 s (the candidate
neighbourhood) and by up to 1.66 RR for beats recovered by searchback.

Reference: Pan J, Tompkins WJ. A real-time QRS detection algorithm. IEEE Trans Biomed Eng
32(3):230-236, 1985; Hamilton PS, Tompkins WJ. Quantitative investigation of QRS detection
rules using the MIT/BIH arrhythmia database. IEEE Trans Biomed Eng 33(12):1157-1165, 1986.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import maximum_filter1d
from scipy.signal import group_delay, sos2tf

from ambulink.signal.buffer import SampleWindow
from ambulink.signal.filters import FirFilter, SosFilter, bandpass_sos, lowpass_sos
from ambulink.signal.validation import as_record, check_fs, to_millivolts

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class QrsConfig:
    """Tunable constants, in physical units."""

    band_hz: tuple[float, float] = (5.0, 15.0)
    integration_ms: float = 150.0
    neighbourhood_ms: float = 100.0  # a candidate is the largest integrated value within +/- this
    refractory_ms: float = 200.0
    t_wave_ms: float = 360.0  # closer than this to the previous QRS: check it is not a T wave
    learning_s: float = 2.0
    searchback_rr: float = 1.66
    keep_s: float = 8.0  # history kept for searchback and R-peak location
    searchback_s: float = 3.0  # searchback never looks further back than this
    min_qrs_mv: float = 0.1  # a smaller deflection is never called a QRS (noise floor)
    derivative: bool = True
    searchback_fraction: float = 0.5
    interval_searchback: bool = True
    interval_rr: float = 1.4


@dataclass(frozen=True, slots=True)
class RPeak:
    """A detected QRS: R-peak ``sample`` and the integrated-energy peak it came from."""

    sample: int
    energy: float
    slope: float


@dataclass(slots=True)
class _Candidate:
    position: int  # sample of the integrated-signal peak
    energy: float
    slope: float


class QrsDetector:
    """Causal QRS detector for one lead. Feed samples in order; get confirmed R peaks back."""

    def __init__(
        self, fs_hz: float, *, gain: float | None = None, config: QrsConfig | None = None
    ) -> None:
        self.fs_hz = check_fs(fs_hz)
        self.config = cfg = config or QrsConfig()
        self._gain = gain
        fs = self.fs_hz
        sos = bandpass_sos(cfg.band_hz[0], cfg.band_hz[1], fs)
        self._bandpass = SosFilter(sos)
        # A light band-pass (little phase distortion) on which the R peak is located.
        self._light = SosFilter(lowpass_sos(min(40.0, 0.45 * fs), fs))
        # Five-point derivative (Pan-Tompkins), in mV/s.
        self._derivative_taps = np.array([2.0, 1.0, 0.0, -1.0, -2.0]) * fs / 8.0
        self._derivative = FirFilter(self._derivative_taps)
        self._width = max(int(round(cfg.integration_ms * fs / 1000.0)), 1)
        self._integrate = FirFilter(np.full(self._width, 1.0 / self._width))
        b, a = sos2tf(sos)
        centre_hz = float(np.sqrt(cfg.band_hz[0] * cfg.band_hz[1]))
        _, delay = group_delay((b, a), w=[centre_hz], fs=fs)
        self._bp_delay = int(round(float(delay[0]))) + 2  # + the derivative's 2 samples
        self._half = max(int(round(cfg.neighbourhood_ms * fs / 1000.0)), 1)
        self._refractory = int(round(cfg.refractory_ms * fs / 1000.0))
        self._t_wave = int(round(cfg.t_wave_ms * fs / 1000.0))
        self._learning = int(round(cfg.learning_s * fs))
        self._keep = int(round(cfg.keep_s * fs))
        self._lookback = int(round(cfg.searchback_s * fs))
        self._energy_floor = self._calibrate_floor(sos)

        self._bp = SampleWindow()
        self._fid = SampleWindow()
        self._slope = SampleWindow()
        self._energy = SampleWindow()
        self._scanned = 0  # candidates found up to here (absolute sample)
        self._started = False
        self._spk = 0.0
        self._npk = 0.0
        self._last: _Candidate | None = None  # last accepted QRS
        self._pending: list[_Candidate] = []  # sub-threshold candidates since the last QRS
        self._rr: list[int] = []
        self._deadline: int | None = None
        self._last_r = -1
        self._finished = False

    # -- public ---------------------------------------------------------------------------

    def feed(self, samples: Any) -> list[RPeak]:
        """Add a chunk (mV floats, or integers with ``gain``); return newly confirmed R peaks."""
        x = to_millivolts(samples, gain=self._gain)
        if x.size == 0:
            return []
        bp = self._bandpass(x)
        d = self._derivative(bp)
        self._bp.append(bp)
        self._fid.append(self._light(x))
        self._slope.append(np.abs(d))
        f = d if self.config.derivative else bp * (self.fs_hz / 8.0)
        self._energy.append(self._integrate(f * f))
        return self._advance(final=False)

    @property
    def energy_floor(self) -> float:
        """Integrated energy of the smallest QRS accepted (``RPeak.energy`` is in these units)."""
        return self._energy_floor

    @property
    def horizon(self) -> int:
        """Every R peak before this sample has been reported (none can come later)."""
        if self._finished:
            return self._energy.end
        # Unscanned candidates, or pending ones that searchback may still take, locate their R
        # peak at most this far before their integrated-energy peak.
        reach = self._width + self._width // 2 + self._bp_delay
        pending = min((c.position for c in self._pending), default=self._scanned)
        oldest = min(self._scanned, max(pending, self._scanned - self._lookback))
        return max(min(oldest - reach, self._energy.end), 0)

    def flush(self) -> list[RPeak]:
        """End of stream: decide on the last candidates with the samples there are."""
        if self._finished:
            return []
        self._finished = True
        return self._advance(final=True)

    # -- internals ------------------------------------------------------------------------

    def _calibrate_floor(self, sos: FloatArray) -> float:
        """Energy of the smallest QRS accepted: a 100 ms triangle of ``min_qrs_mv``."""
        fs = self.fs_hz
        half = max(int(0.05 * fs), 1)
        triangle = np.concatenate((np.linspace(0.0, 1.0, half), np.linspace(1.0, 0.0, half)))
        pulse = np.zeros(int(fs))
        pulse[int(0.3 * fs) : int(0.3 * fs) + triangle.size] = self.config.min_qrs_mv * triangle
        bp = SosFilter(sos)(pulse)
        f = FirFilter(self._derivative_taps)(bp) if self.config.derivative else bp * fs / 8.0
        return float(FirFilter(np.full(self._width, 1.0 / self._width))(f * f).max())

    def _advance(self, final: bool) -> list[RPeak]:
        end = self._energy.end
        out: list[RPeak] = []
        if not self._started:
            if end < self._learning and not final:
                return out
            self._initialise_levels()
        limit = end if final else end - self._half
        if limit > self._scanned:
            for candidate in self._candidates(self._scanned, limit):
                out.extend(self._consider(candidate))
            self._scanned = limit
        while self._deadline is not None and self._deadline <= (end if final else limit):
            out.extend(self._searchback(self._deadline))
        self._trim()
        return out

    def _initialise_levels(self) -> None:
        self._started = True
        energy = self._energy.view(self._energy.start, self._energy.start + self._learning)
        if energy.size == 0:
            return
        peak = float(energy.max())
        self._spk = max(0.4 * peak, self._energy_floor)
        self._npk = 0.5 * float(energy.mean())

    def _candidates(self, start: int, stop: int) -> list[_Candidate]:
        lo = max(start - self._half, self._energy.start)
        hi = min(stop + self._half, self._energy.end)
        e = self._energy.view(lo, hi)
        if e.size < 3:
            return []
        local_max = maximum_filter1d(e, size=2 * self._half + 1, mode="nearest")
        rising = np.empty(e.size, dtype=bool)
        rising[0] = False
        rising[1:] = e[1:] > e[:-1]
        first = max(start, lo + 1) - lo
        idx = np.flatnonzero((e == local_max) & rising & (e > self._energy_floor))
        idx = idx[(idx >= first) & (idx < stop - lo)]
        out = []
        for i in idx:
            pos = lo + int(i)
            slope = self._slope.view(pos - self._width, pos + 1)
            out.append(_Candidate(pos, float(e[i]), float(slope.max()) if slope.size else 0.0))
        return out

    @property
    def _threshold(self) -> float:
        return max(self._npk + 0.25 * (self._spk - self._npk), self._energy_floor)

    def _consider(self, c: _Candidate) -> list[RPeak]:
        out: list[RPeak] = []
        while self._deadline is not None and c.position > self._deadline:
            out.extend(self._searchback(self._deadline))
        last = self._last
        if last is not None and c.position - last.position < self._refractory:
            return out
        if c.energy > self._threshold:
            if (
                last is not None
                and c.position - last.position < self._t_wave
                and c.slope < 0.5 * last.slope
            ):
                self._noise(c)  # a T wave: steep enough only to pass the energy test
            else:
                missed = self._missed_between(c) if self.config.interval_searchback else None
                if missed is not None:
                    out.append(self._accept(missed, weight=0.25))
                out.append(self._accept(c, weight=0.125))
        else:
            self._noise(c)
            self._pending.append(c)
        return out

    def _noise(self, c: _Candidate) -> None:
        self._npk = 0.125 * min(c.energy, 4.0 * self._threshold) + 0.875 * self._npk

    def _accept(self, c: _Candidate, weight: float) -> RPeak:
        # Clip the update so one artefact cannot lift the level above most beats.
        self._spk = weight * min(c.energy, 3.0 * self._spk) + (1.0 - weight) * self._spk
        if self._last is not None:
            self._rr.append(c.position - self._last.position)
            del self._rr[:-8]
        self._last = c
        self._pending.clear()
        rr_ref = float(np.median(self._rr)) if self._rr else self.fs_hz
        self._deadline = c.position + int(self.config.searchback_rr * rr_ref)
        lo = c.position - self._width - self._bp_delay - self._width // 2
        hi = c.position - self._bp_delay + 1
        window = self._fid.view(lo, hi)
        r = c.position - self._bp_delay
        if window.size:
            deflection = np.abs(window - window[:5].mean())
            r = max(lo, self._fid.start) + int(np.argmax(deflection))
        r = max(r, self._last_r + 1, 0)
        self._last_r = r
        return RPeak(r, c.energy, c.slope)

    def _missed_between(self, c: _Candidate) -> _Candidate | None:
        """A beat hidden in a long interval that ended before the searchback deadline.

        Irregular rhythms (AF) often bring the next beat before 1.66 RR; an interval well above
        the recent median with a plausible candidate in its middle is searched like searchback.
        """
        last = self._last
        if last is None or len(self._rr) < 4:
            return None
        rr_ref = float(np.median(self._rr))
        if c.position - last.position < self.config.interval_rr * rr_ref:
            return None
        threshold2 = self.config.searchback_fraction * self._threshold
        eligible = [
            p
            for p in self._pending
            if p.position - last.position >= self._refractory
            and c.position - p.position >= self._refractory
            and c.position - p.position <= self._lookback
            and p.energy > threshold2
            and (p.position - last.position >= self._t_wave or p.slope >= 0.5 * last.slope)
        ]
        return max(eligible, key=lambda p: p.energy) if eligible else None

    def _searchback(self, deadline: int) -> list[RPeak]:
        last = self._last
        floor = (last.position + self._refractory) if last is not None else -1
        threshold2 = self.config.searchback_fraction * self._threshold
        floor = max(floor, deadline - self._lookback)
        eligible = [
            c for c in self._pending if floor <= c.position <= deadline and c.energy > threshold2
        ]
        if last is not None:
            eligible = [
                c
                for c in eligible
                if c.position - last.position >= self._t_wave or c.slope >= 0.5 * last.slope
            ]
        if eligible:
            best = max(eligible, key=lambda c: c.energy)
            later = [c for c in self._pending if c.position > best.position]
            peak = self._accept(best, weight=0.25)
            self._pending = later
            return [peak]
        # Nothing plausible: the level is too high for this signal, let it fall.
        self._spk = max(0.5 * self._spk, self._energy_floor)
        rr_ref = float(np.median(self._rr)) if self._rr else self.fs_hz
        self._deadline = deadline + int(rr_ref)
        return []

    def _trim(self) -> None:
        keep_from = self._energy.end - self._keep
        if self._last is not None:
            keep_from = min(keep_from, self._last.position - 2 * self._width - self._bp_delay)
        keep_from = max(keep_from, self._scanned - self._keep)
        self._pending = [c for c in self._pending if c.position >= keep_from]
        for window in (self._bp, self._fid, self._slope, self._energy):
            window.trim_before(keep_from)


def detect(signal: np.ndarray, fs: float) -> NDArray[np.int64]:
    """R-peak sample indices (int64, sorted) of ``signal`` (mV) sampled at ``fs`` Hz.

    ``signal`` is one lead (1-D), or leads in columns (n_samples, n_leads): then the beats are
    the first lead's, and the second's while the first is off (flat, railed), as the streaming
    ``Analyzer`` reports them.
    """
    record, fs_hz = as_record(signal, fs)
    if record.shape[1] > 1:
        from ambulink.signal.analyzer import record_beats  # it imports this module

        samples = [beat.sample for beat in record_beats(record, fs_hz)]
        return np.asarray(samples, dtype=np.int64)
    detector = QrsDetector(fs_hz)
    peaks = detector.feed(record[:, 0]) + detector.flush()
    return np.fromiter((p.sample for p in peaks), dtype=np.int64, count=len(peaks))
