"""Streaming ventricular fibrillation / flutter (VF/VFL) detector from the waveform of one lead.

VF and VFL are a fast, quasi-sinusoidal oscillation without QRS complexes. Every second, on a
grid of sample indices counted from the stream start, the last 4 s of the band-passed lead
(2-35 Hz) are judged *VF-like* when five tests hold:

- amplitude: RMS of at least a 0.2 mV peak-to-peak sine (the AHA floor for coarse VF), so flat
  line, lead off and asystole are not VF;
- rate: the dominant frequency of the power spectrum lies in 2.5-10 Hz (150-600 /min);
- no QRS: slopes are evenly spread; the 99th percentile of ``|dx|`` is under 5 times its mean
  (a sine gives 1.6, the steep QRS of a supraventricular beat 6-20);
- quasi-sinusoidal: Kuo and Dillman's VF filter leakage is under 0.6 (a sine added to itself
  delayed by half its period cancels; QRS trains, artefact and noise leak through);
- not a harmonic: the signal is no more alike after 1.5 dominant periods or more (up to 1.5 s)
  than after one, by 0.25 in autocorrelation; else the "dominant" frequency is a harmonic of
  a slower regular rhythm (wide paced or bundle-branch complexes at 60-90 /min).

Onset needs 3 of the last 4 windows VF-like, offset 5 windows in a row that are not, which
rides through short noise bursts. A window is judged VF-like once VF fills about half of it,
so a transition's ``sample`` is the centre of the first (onset) or last (offset) VF-like
window; ``decided_at`` is the last sample of the window that decided it. Windows only see
samples up to their end and sit on a fixed grid, so the transitions depend on the signal alone,
never on how it was chunked.

Kuo S, Dillman R. Computer detection of ventricular fibrillation. Computers in Cardiology 1978.
Kerber RE et al. Automatic external defibrillators for public access defibrillation:
recommendations for specifying and reporting arrhythmia analysis algorithm performance.
Circulation 1997;95:1677-1682. Amann A, Tratnig R, Unterkofler K. Reliability of old and new
ventricular fibrillation detection algorithms for automated external defibrillators. Biomed
Eng Online 2005;4:60.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.signal import butter, sosfilt, sosfilt_zi

from ambulink.errors import ConfigError
from ambulink.signal.events import Transition
from ambulink.signal.filters import MainsGate
from ambulink.signal.validation import check_fs, to_millivolts

_HIGHPASS_HZ = 2.0  # baseline wander and slow motion artefact out; coarse VF (>= 2.5 Hz) in
_LOWPASS_HZ = 35.0  # anti-alias before decimation; QRS slopes survive
_MIN_ANALYSIS_HZ = 100.0  # analysis rate fs / q, an integer q, stays >= 100 Hz
_SPECTRUM_HZ = (1.0, 30.0)  # where the dominant frequency is searched
_LONGEST_CYCLE_S = 1.5  # slowest rhythm (40 /min) whose harmonic the harmonic test catches
_BLOCK_WINDOWS = 64  # windows analysed per numpy batch (keeps temporaries in cache)


@dataclass(frozen=True, slots=True)
class VfConfig:
    """Limits of :class:`VfDetector`; the defaults are reasoned in the module docstring."""

    window_s: float = 4.0
    hop_s: float = 1.0
    min_peak_to_peak_mv: float = 0.2  # of a sine with the window's RMS
    min_rate_hz: float = 2.5
    max_rate_hz: float = 10.0
    max_slope_ratio: float = 5.0
    max_leakage: float = 0.6
    max_harmonic: float = 0.25
    onset_windows: int = 3
    onset_of: int = 4
    offset_windows: int = 5

    def __post_init__(self) -> None:
        if not 0 < self.hop_s <= self.window_s:
            raise ConfigError(f"VF hop_s must be in (0, window_s], got {self.hop_s} s")
        if not 1 <= self.onset_windows <= self.onset_of or self.offset_windows < 1:
            raise ConfigError(
                f"VF onset needs 1 <= onset_windows <= onset_of and offset_windows >= 1, got "
                f"{self.onset_windows} of {self.onset_of} and {self.offset_windows}"
            )


@dataclass(frozen=True, slots=True)
class VfWindows:
    """Features of the windows one ``feed`` judged; index i describes the window ending at
    ``end_sample[i]`` (NaN where the cheap amplitude and slope tests already failed)."""

    end_sample: NDArray[np.int64]  # raw sample one past the window's last sample
    rms_mv: NDArray[np.float64]
    dominant_hz: NDArray[np.float64]
    slope_ratio: NDArray[np.float64]
    leakage: NDArray[np.float64]
    harmonic: NDArray[np.float64]


class VfDetector:
    """Waveform VF/VFL detector for one lead (not from beats).

    Feed raw samples (mV) at ``fs_hz`` (100-2000 Hz) in chunks of any size; ``feed`` returns
    onset (``active=True``) and offset transitions, ``sample`` being the estimated true onset or
    offset and ``decided_at`` the sample at which it was decided (4-7 s later).
    """

    def __init__(self, fs_hz: float, config: VfConfig | None = None) -> None:
        self._fs_hz = check_fs(fs_hz)
        self._config = cfg = config or VfConfig()
        self._q = max(1, int(self._fs_hz // _MIN_ANALYSIS_HZ))  # decimation factor
        self._fs_d = self._fs_hz / self._q  # analysis rate, Hz
        self._hop = max(1, round(cfg.hop_s * self._fs_d))  # analysis samples
        self._win = self._hop * max(1, round(cfg.window_s / cfg.hop_s))
        self._sos = np.vstack(
            [
                butter(2, _HIGHPASS_HZ, "highpass", fs=self._fs_hz, output="sos"),
                butter(4, _LOWPASS_HZ, "lowpass", fs=self._fs_hz, output="sos"),
            ]
        )
        self._zi: NDArray[np.float64] | None = None  # filter state, carried across chunks
        # Hum that the 35 Hz low-pass leaves (a quarter of 50 Hz) adds slope and leakage.
        self._mains = MainsGate(self._fs_hz)
        self._pending: list[NDArray[np.float64]] = []  # raw chunks not filtered yet
        self._n_fed = 0  # raw samples fed so far
        self._n_raw = 0  # raw samples filtered so far
        # Filtered analysis samples: self._buf[:self._fill] holds indices self._buf_start...
        self._buf = np.zeros(4 * self._win)
        self._fill = 0
        self._buf_start = 0
        self._next_end = self._win  # analysis index (exclusive) where the next window ends
        self._nfft = 1 << math.ceil(math.log2(2 * self._win))  # no circular wrap in the ACF
        self._taper = np.hanning(self._win)
        freqs = np.fft.rfftfreq(self._nfft, 1.0 / self._fs_d)
        self._band = (freqs >= _SPECTRUM_HZ[0]) & (freqs <= _SPECTRUM_HZ[1])
        self._band_hz = freqs[self._band]
        self._lags = np.arange(self._win, dtype=np.float64)
        self._max_cycle = min(self._win - 1, _LONGEST_CYCLE_S * self._fs_d)
        self._min_rms_mv = cfg.min_peak_to_peak_mv / (2.0 * math.sqrt(2.0))
        self._recent: deque[bool] = deque(maxlen=max(cfg.onset_of, cfg.offset_windows))
        self._active = False
        self._last_vf_centre = 0  # raw sample, centre of the last VF-like window while active

    @property
    def active(self) -> bool:
        """True while VF/VFL is detected."""
        return self._active

    @property
    def window_samples(self) -> int:
        """Length of a judged window in input samples."""
        return self._win * self._q

    def feed(self, samples_mv: NDArray[np.float64]) -> list[Transition]:
        """Push the next samples (mV, 1-D, finite) and return the transitions they complete."""
        return self.feed_windows(samples_mv)[0]

    def feed_windows(
        self, samples_mv: NDArray[np.float64]
    ) -> tuple[list[Transition], VfWindows | None]:
        """``feed``, also returning the features of the windows it judged (None: no window
        completed), for diagnostics; ``vf_like`` tells which of them looked like VF."""
        features = self._push(samples_mv)
        return (self._decide(features), features) if features is not None else ([], None)

    def _push(self, samples_mv: NDArray[np.float64]) -> VfWindows | None:
        x = to_millivolts(samples_mv)
        if x.size == 0:
            return None
        # Filtering waits until a window can complete: one sosfilt call per hop rather than per
        # 20 ms frame, with the very same output (the filter state is carried exactly).
        self._n_fed += x.size
        if self._n_fed < (self._next_end - 1) * self._q + 1:
            self._pending.append(x.copy())  # kept past this call: callers may reuse their array
            return None
        raw = np.concatenate([*self._pending, x]) if self._pending else x
        self._pending.clear()
        if self._zi is None:  # start in steady state at the first sample: no step transient
            self._zi = sosfilt_zi(self._sos) * raw[0]
        y, self._zi = sosfilt(self._sos, raw, zi=self._zi)
        y = self._mains(y, raw)
        first = (-self._n_raw) % self._q  # keep raw indices that are multiples of q
        self._n_raw += raw.size
        self._append(y[first :: self._q])
        available = self._buf_start + self._fill
        n_windows = (available - self._next_end) // self._hop + 1
        ends = self._next_end + self._hop * np.arange(n_windows, dtype=np.int64)
        self._next_end += self._hop * n_windows
        views = np.lib.stride_tricks.sliding_window_view(self._buf[: self._fill], self._win)
        starts = ends - self._win - self._buf_start
        blocks = [
            self._features(views[starts[i : i + _BLOCK_WINDOWS]])
            for i in range(0, n_windows, _BLOCK_WINDOWS)
        ]
        rms, dominant, slope, leak, harmonic = (
            np.concatenate(f) for f in zip(*blocks, strict=True)
        )
        return VfWindows(ends * self._q, rms, dominant, slope, leak, harmonic)

    def _append(self, y: NDArray[np.float64]) -> None:
        if self._fill + y.size > self._buf.size:
            keep_from = self._next_end - self._win - self._buf_start  # oldest sample still needed
            kept = self._buf[keep_from : self._fill]
            if kept.size + y.size > self._buf.size // 2:
                self._buf = np.empty(2 * (kept.size + y.size))
            self._buf[: kept.size] = kept  # copy() not needed: moves left or to a new array
            self._fill = kept.size
            self._buf_start += keep_from
        self._buf[self._fill : self._fill + y.size] = y
        self._fill += y.size

    def _features(self, windows: NDArray[np.float64]) -> tuple[NDArray[np.float64], ...]:
        """(RMS mV, dominant Hz, slope ratio, leakage, harmonic) of each row of ``windows``.

        The spectral features are computed only for rows that pass the cheap amplitude and
        slope tests (NaN elsewhere): most windows of a sinus rhythm stop at the QRS slopes.
        """
        n = self._win
        x = windows - windows.mean(axis=1, keepdims=True)
        rms = np.sqrt(np.mean(x * x, axis=1))
        abs_dx = np.abs(np.diff(x, axis=1))
        mean_abs_dx = np.maximum(abs_dx.mean(axis=1), 1e-12)
        kth = int(0.99 * (n - 2))
        slope_ratio = np.partition(abs_dx, kth, axis=1)[:, kth] / mean_abs_dx
        rest = np.full((3, len(x)), np.nan)
        candidate = (rms >= self._min_rms_mv) & (slope_ratio < self._config.max_slope_ratio)
        if candidate.any():
            rest[:, candidate] = self._oscillation(x[candidate], mean_abs_dx[candidate])
        return rms, rest[0], slope_ratio, rest[1], rest[2]

    def _oscillation(
        self, x: NDArray[np.float64], mean_abs_dx: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Rows of (dominant Hz, leakage, harmonic) for zero-mean windows ``x``."""
        n = self._win
        power = np.abs(np.fft.rfft(x * self._taper, self._nfft, axis=1)) ** 2
        dominant = self._band_hz[np.argmax(power[:, self._band], axis=1)]

        # Kuo-Dillman: delay by the half period of the sine with the same mean |x| / mean |dx|.
        abs_x = np.abs(x)
        half_period = np.floor(np.pi * abs_x.mean(axis=1) / mean_abs_dx + 0.5)
        lag = np.clip(half_period, 1, n - 1).astype(np.int64)
        idx = np.arange(n)[None, :] - lag[:, None]
        head = idx >= 0  # samples that have a delayed partner
        delayed = np.take_along_axis(x, np.maximum(idx, 0), axis=1)
        leak_num = np.where(head, np.abs(x + delayed), 0.0).sum(axis=1)
        leak_den = np.where(head, abs_x + np.abs(delayed), 0.0).sum(axis=1)
        leakage = leak_num / np.maximum(leak_den, 1e-12)

        # Autocorrelation (biased, so it fades with lag) through the zero-padded spectrum.
        spectrum = np.fft.rfft(x, self._nfft, axis=1)
        acf = np.fft.irfft(spectrum.real**2 + spectrum.imag**2, self._nfft, axis=1)[:, :n]
        acf /= np.maximum(acf[:, :1], 1e-12)
        period = (self._fs_d / dominant)[:, None]  # analysis samples
        one = (self._lags >= 0.8 * period) & (self._lags <= 1.2 * period)
        longer = (self._lags >= 1.5 * period) & (self._lags <= self._max_cycle)
        at_one = np.where(one, acf, -np.inf).max(axis=1)
        at_longer = np.where(longer, acf, -np.inf).max(axis=1)
        harmonic = np.where(np.isfinite(at_longer), at_longer - at_one, 0.0)
        return np.stack([dominant, leakage, harmonic])

    def vf_like(self, f: VfWindows) -> NDArray[np.bool_]:
        """Which windows pass every test of the module docstring."""
        cfg = self._config
        out: NDArray[np.bool_] = (
            (f.rms_mv >= self._min_rms_mv)
            & (f.dominant_hz >= cfg.min_rate_hz)
            & (f.dominant_hz <= cfg.max_rate_hz)
            & (f.slope_ratio < cfg.max_slope_ratio)
            & (f.leakage < cfg.max_leakage)
            & (f.harmonic < cfg.max_harmonic)
        )
        return out

    def _decide(self, features: VfWindows) -> list[Transition]:
        cfg = self._config
        transitions: list[Transition] = []
        hop_raw = self._hop * self._q
        half_window_raw = self.window_samples // 2
        ends = features.end_sample.tolist()
        for end, vf in zip(ends, self.vf_like(features).tolist(), strict=True):
            self._recent.append(vf)
            decided_at = end - self._q  # raw index of the window's last analysis sample
            centre = end - half_window_raw
            if not self._active:
                last = list(self._recent)[-cfg.onset_of :]
                if vf and sum(last) >= cfg.onset_windows:
                    back = len(last) - 1 - last.index(True)  # windows back to the first VF-like
                    self._active = True
                    self._last_vf_centre = centre
                    transitions.append(Transition(centre - back * hop_raw, True, decided_at))
            elif vf:
                self._last_vf_centre = centre
            elif not any(list(self._recent)[-cfg.offset_windows :]):
                self._active = False
                transitions.append(Transition(self._last_vf_centre, False, decided_at))
        return transitions
