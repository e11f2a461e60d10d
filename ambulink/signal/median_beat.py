"""Representative (median) beat of a multi-lead window, and its global QRS onset and J point.

Beats are cut around the R peaks of one lead, checked against each other across all leads
(ectopic shapes, premature beats and noisy beats are left out) and combined by the sample-wise
median. Baseline wander is removed gently: a cubic spline through the PR-segment levels of all
the beats (the isoelectric points) is subtracted, so the ST segment keeps its true level, which
a 0.5 Hz high-pass would not; a straight line between the points left ~0.1 mV of a 0.5 mV
respiratory wander at the ST segment.

QRS onset and end (J point) are global, from the spatial velocity of the median beats (sum over
leads of |d/dt|, mV/s): the QRS is where it stays above a fraction of its peak. Everything here
works on one window of samples; nothing depends on how a stream was chunked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.interpolate import CubicSpline

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

PRE_MS = 300.0  # window before the R fiducial (P wave and PR segment)
POST_MS = 500.0  # window after it (QRS end, ST segment, most of T)
MIN_CORRELATION = 0.90  # a beat's QRS must match the median QRS this well across leads
PREMATURE_RR = 0.80  # a beat earlier than this share of the median RR is left out
NOISY_RESIDUAL = 3.0  # x the median residual of the beats: a noisy beat
ONSET_FRAC = 0.04  # of (peak - floor) spatial velocity: tuned on LUDB's marks
OFFSET_FRAC = 0.07
PR_MS, PR_GAP_MS = 20.0, 10.0  # the PR level: this long, ending this long before the QRS


@dataclass(frozen=True, slots=True)
class QrsBounds:
    """QRS onset and end (J point) on the median beat, in ms relative to the R fiducial."""

    onset_ms: float
    offset_ms: float

    @property
    def duration_ms(self) -> float:
        return self.offset_ms - self.onset_ms


@dataclass(frozen=True, slots=True)
class MedianBeat:
    """Median beat of every lead: ``samples_mv`` (window, n_leads), R fiducial at ``r_index``.

    ``beats`` are the R peaks (samples of the analysed window) the median was made of;
    ``per_beat_mv`` (n_beats, window, n_leads) are those beats after baseline removal.
    """

    samples_mv: FloatArray
    r_index: int
    fs_hz: float
    beats: IntArray
    per_beat_mv: FloatArray
    bounds: QrsBounds
    rejected: int  # beats left out as ectopic, premature or noisy
    rr_ms: float = math.nan  # median RR interval of all the R peaks given, kept or not

    def index(self, ms: float) -> int:
        """Window index of ``ms`` (ms after the R fiducial), clipped to the window."""
        i = self.r_index + int(round(ms * self.fs_hz / 1000.0))
        return int(min(max(i, 0), self.samples_mv.shape[0] - 1))

    @property
    def pr_segment(self) -> slice:
        """The isoelectric reference: window samples of the PR segment (clipped to the
        window)."""
        pr = pr_segment(self.bounds.onset_ms, self.r_index, self.fs_hz)
        return slice(max(pr.start, 0), max(pr.stop, 0))


def pr_segment(onset_ms: float, r_index: int, fs_hz: float) -> slice:
    """PR segment of a beat window whose R fiducial is at ``r_index``: ``PR_MS`` ending
    ``PR_GAP_MS`` before the QRS onset (``onset_ms``, negative). Its start is negative when
    the window is too short for it."""
    ms = fs_hz / 1000.0
    stop = r_index + int(round(onset_ms * ms)) - int(round(PR_GAP_MS * ms))
    return slice(stop - int(round(PR_MS * ms)), stop)


def _cut(signals_mv: FloatArray, peaks: IntArray, pre: int, post: int) -> FloatArray:
    """(n_beats, pre + post, n_leads) windows around ``peaks`` (all fully inside)."""
    offsets = np.arange(-pre, post)
    return signals_mv[peaks[:, None] + offsets[None, :], :]


def smooth(x: FloatArray, fs_hz: float, width_ms: float = 8.0) -> FloatArray:
    """Centred moving average along axis 0 (linear phase: waves keep their timing)."""
    n = max(int(round(width_ms * fs_hz / 1000.0)), 1) | 1
    if n == 1:
        return x
    kernel = np.full(n, 1.0 / n)
    pad = n // 2
    padded = np.pad(x, ((pad, pad),) + ((0, 0),) * (x.ndim - 1), mode="edge")
    out = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="valid"), 0, padded)
    return np.asarray(out, dtype=np.float64)


def spatial_velocity(median_mv: FloatArray, fs_hz: float, use: NDArray[np.bool_]) -> FloatArray:
    """Sum over the leads in ``use`` of |d/dt| of the smoothed median beats (mV/s)."""
    smoothed = smooth(median_mv[:, use], fs_hz)
    return np.asarray(np.abs(np.gradient(smoothed, axis=0)).sum(axis=1) * fs_hz, dtype=np.float64)


def qrs_bounds(
    median_mv: FloatArray, r_index: int, fs_hz: float, use: NDArray[np.bool_]
) -> QrsBounds | None:
    """Global QRS onset and J point from the spatial velocity, or None when there is no QRS.

    The QRS spans the samples around the velocity peak (within 80 ms of R) where the velocity
    exceeds ``floor + 0.1 (peak - floor)``; each end is the first stretch of 10 ms below it,
    ``floor`` being the lowest velocity in the 150 ms beyond (the flattest PR / ST stretch).
    """
    ms = fs_hz / 1000.0
    sv = spatial_velocity(median_mv, fs_hz, use)
    lo, hi = max(r_index - int(80 * ms), 0), min(r_index + int(80 * ms), sv.size)
    peak_i = lo + int(np.argmax(sv[lo:hi]))
    peak = float(sv[peak_i])
    if peak <= 0.0:
        return None
    hold = max(int(round(10 * ms)), 1)
    reach = int(round(150 * ms))

    def find_end(step: int, frac: float) -> int | None:
        gap = int(round(10 * ms))  # the QRS lasts at least this long on each side of the peak
        if step > 0:
            region = sv[peak_i + gap : peak_i + int(round(200 * ms))]
        else:
            region = sv[max(peak_i - int(round(200 * ms)), 0) : peak_i - gap][::-1]
        if region.size < hold:
            return None
        floor = float(np.min(region[: reach + hold]))
        below = region < floor + frac * (peak - floor)
        # first index where `hold` consecutive samples are below the threshold
        run = np.convolve(below.astype(np.int64), np.ones(hold, dtype=np.int64), mode="valid")
        hits = np.flatnonzero(run == hold)
        if hits.size == 0:
            return None
        return peak_i + step * (gap + int(hits[0]))

    on = find_end(-1, ONSET_FRAC)
    off = find_end(+1, OFFSET_FRAC)
    if on is None or off is None:
        return None
    return QrsBounds((on - r_index) / ms, (off - r_index) / ms)


def _correlation(beats: FloatArray, template: FloatArray) -> FloatArray:
    """Pearson correlation of each beat (flattened over samples and leads) with ``template``."""
    b = beats.reshape(beats.shape[0], -1)
    b = b - b.mean(axis=1, keepdims=True)
    t = template.reshape(-1) - template.mean()
    denom = np.linalg.norm(b, axis=1) * np.linalg.norm(t)
    return np.where(denom > 0, b @ t / np.maximum(denom, 1e-12), 0.0)


def _detrend(beats: FloatArray) -> FloatArray:
    """Each beat (axis 1) less its least-squares straight line, in closed form: no LAPACK call,
    whose threads would spin on the other core for a problem this small."""
    t = np.arange(beats.shape[1], dtype=np.float64)
    t -= t.mean()
    centred = beats - beats.mean(axis=1, keepdims=True)
    slope = np.einsum("t,btl->bl", t, centred) / float(t @ t)
    return np.asarray(centred - slope[:, None, :] * t[None, :, None], dtype=np.float64)


def select_beats(
    beats_mv: FloatArray, peaks: IntArray, r_index: int, fs_hz: float, use: NDArray[np.bool_]
) -> NDArray[np.bool_]:
    """Beats of the dominant shape: QRS (-80..+120 ms) correlation with the median >= 0.9
    over the usable leads, not premature, not much noisier than the others."""
    n = beats_mv.shape[0]
    keep = np.ones(n, dtype=bool)
    if n >= 3:
        rr = np.diff(peaks)
        median_rr = float(np.median(rr))
        keep[1:] &= rr >= PREMATURE_RR * median_rr
    ms = fs_hz / 1000.0
    qrs = beats_mv[:, r_index - int(80 * ms) : r_index + int(120 * ms), :][:, :, use]
    qrs = qrs - qrs.mean(axis=1, keepdims=True)
    template = np.median(qrs[keep] if keep.sum() >= 3 else qrs, axis=0)
    keep &= _correlation(qrs, template) >= MIN_CORRELATION
    if keep.sum() >= 3:
        centred = _detrend(beats_mv[:, :, use])  # wander tilts beats; it is not noise
        reference = np.median(centred[keep], axis=0)
        residual = np.sqrt(np.mean((centred - reference) ** 2, axis=(1, 2)))
        typical = float(np.median(residual[keep]))
        keep &= residual <= NOISY_RESIDUAL * max(typical, 0.01)
    return keep


def build_median_beat(
    signals_mv: FloatArray, fs_hz: float, r_peaks: IntArray, use: NDArray[np.bool_]
) -> MedianBeat | None:
    """Median beat of every lead from the clean beats at ``r_peaks`` (samples of
    ``signals_mv``, (n, n_leads) mV). ``use`` marks the leads fit to judge beats and the QRS by.
    None when fewer than 3 clean beats remain or no QRS is found."""
    ms = fs_hz / 1000.0
    pre, post = int(round(PRE_MS * ms)), int(round(POST_MS * ms))
    n = signals_mv.shape[0]
    peaks = r_peaks[(r_peaks >= pre) & (r_peaks + post <= n)].astype(np.int64)
    if peaks.size < 3 or not use.any():
        return None
    raw = _cut(signals_mv, peaks, pre, post)
    keep = select_beats(raw, peaks, pre, fs_hz, use)
    if keep.sum() < 3:
        return None
    # First pass: the QRS bounds from a median of level-free beats (velocity ignores offsets).
    rough = raw[keep] - np.median(raw[keep], axis=1, keepdims=True)
    bounds = qrs_bounds(np.median(rough, axis=0), pre, fs_hz, use)
    if bounds is None:
        return None
    # Second pass: subtract a cubic spline through every beat's PR level in absolute time.
    # Left-out beats count too: with the kept ones alone the knots can be seconds apart, too
    # far to follow respiratory wander.
    pr = pr_segment(bounds.onset_ms, pre, fs_hz)
    if pr.start < 0:
        return None
    pr_level = raw[:, pr, :].mean(axis=1)  # (n_beats, n_leads)
    pr_time = peaks + (pr.start + pr.stop) // 2 - pre
    times = peaks[keep, None] + np.arange(-pre, post)[None, :]
    baseline = CubicSpline(pr_time, pr_level, axis=0, bc_type="natural")(times)
    clean = raw[keep] - baseline
    median = np.asarray(np.median(clean, axis=0), dtype=np.float64)
    # Wander tilts every beat of the first pass, which adds to the velocity floor and widens
    # the QRS; on the beats without it the bounds are true.
    bounds = qrs_bounds(median, pre, fs_hz, use) or bounds
    return MedianBeat(
        samples_mv=median,
        r_index=pre,
        fs_hz=fs_hz,
        beats=peaks[keep],
        per_beat_mv=clean,
        bounds=bounds,
        rejected=int(peaks.size - keep.sum()),
        rr_ms=float(np.median(np.diff(r_peaks))) * 1000.0 / fs_hz,
    )
