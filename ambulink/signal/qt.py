"""QT interval of a median beat: T-wave end by the tangent method, QTc by Bazett.

The T wave ends where the tangent at the steepest point of its terminal limb crosses the
isoelectric (PR) level (Lepeschkin and Surawicz's tangent method, the usual automatic rule).
Per lead this is measured on leads whose T wave is at least ``MIN_T_MV`` tall; the beat's T end
is the median of those leads, so one lead with a flat or notched T does not move it.
The tangent ends the T wave a little before the last visible deflection, so QT measured this
way reads shorter than a reader's "end of T" (by about 20 ms against LUDB's hand marks:
``docs/signal.md``).

Pure numpy on median beats in mV; ``ambulink.signal.st`` feeds it.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from ambulink.signal.median_beat import MedianBeat, smooth

FloatArray = NDArray[np.float64]

T_FROM_MS = 80.0  # the T wave is looked for from this long after the J point ...
T_TO_MS = 450.0  # ... to this long after it (clipped to the median beat's window)
MIN_T_MV = 0.10  # a lead's T wave must be at least this tall (from the PR level) to time it
QTC_RANGE_MS = (300.0, 650.0)  # a QTc outside this is a measuring failure, not a QT
NEXT_P_MS = 150.0  # ... and never closer than this to the next R peak (its P wave)


def t_wave_end_ms(
    beat_mv: FloatArray, median: MedianBeat, baseline_mv: float, rr_ms: float = math.inf
) -> float:
    """T-wave end of one lead's median beat, ms after the R fiducial; NaN without a T wave.

    ``baseline_mv`` is the lead's PR level; the T wave is its largest deviation from it
    between J+80 and J+450 ms, stopping 150 ms short of the next beat (``rr_ms`` after R) so
    that at fast rates the next P wave is not taken for it.
    """
    fs_hz = median.fs_hz
    j_ms = median.bounds.offset_ms
    lo = median.index(j_ms + T_FROM_MS)
    hi = median.index(min(j_ms + T_TO_MS, rr_ms - NEXT_P_MS))
    if hi - lo < 4:
        return math.nan
    x = smooth(np.asarray(beat_mv, dtype=np.float64), fs_hz) - baseline_mv
    peak = lo + int(np.argmax(np.abs(x[lo:hi])))
    height = float(x[peak])
    if abs(height) < MIN_T_MV:
        return math.nan
    gradient = np.gradient(x)
    # slope towards the baseline after the peak: most negative for an upright T
    towards = gradient[peak:hi] * math.copysign(1.0, height)
    if towards.size < 2:
        return math.nan
    steepest = peak + int(np.argmin(towards))
    slope = float(gradient[steepest])
    if slope == 0.0 or math.copysign(1.0, slope) == math.copysign(1.0, height):
        return math.nan
    end = steepest - float(x[steepest]) / slope
    return (end - median.r_index) * 1000.0 / fs_hz


def qt_ms(ends_ms: list[float], onset_ms: float) -> float:
    """QT from the QRS onset to the median of the leads' T-wave ends (NaN if none)."""
    timed = [end for end in ends_ms if math.isfinite(end)]
    if not timed:
        return math.nan
    return float(np.median(timed)) - onset_ms


def qtc_bazett(qt: float, rr_s: float) -> float:
    """Bazett's heart-rate-corrected QT (ms), NaN when either input is missing or implausible."""
    if not (math.isfinite(qt) and math.isfinite(rr_s)) or rr_s <= 0.0:
        return math.nan
    qtc = qt / math.sqrt(rr_s)
    low, high = QTC_RANGE_MS
    return qtc if low <= qtc <= high else math.nan
