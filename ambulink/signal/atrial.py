"""Are there P waves? Coherence of the atrial segment before each conducted QRS.

In sinus rhythm (and any rhythm with conducted P waves) every QRS follows a P wave at the same
PR interval, so the segments just before the QRS look alike from beat to beat. In atrial
fibrillation the fibrillatory waves bear no fixed relation to the QRS, so those segments are
unrelated. Each segment is detrended and scaled to unit energy, and the measure is the energy of
their average, ``|mean(w_i / |w_i|)|^2`` over the last ``K`` segments: about 1 when every segment
shows the same P wave, about ``1/K`` for unrelated activity (fibrillation, noise). Scaling each
segment keeps one outlier (an artefact, a T wave in the segment of an early beat) from
dominating the average for ``K`` beats. It needs no P-wave delineation, is independent of gain,
and noise only pulls it towards "unrelated", so noise never vetoes AF (RR irregularity then
decides alone).

The segment runs from 350 to 120 ms before the R peak: the P wave at PR intervals of about
120-250 ms, and clear of the QRS onset even in wide complexes. A quadratic is fitted and removed
from each segment first: the tail of the previous T wave and baseline drift are smooth, time-locked
to the previous beat and would read as coherent (vfdb 609: wide QRS, long T, AF). A beat whose
previous R peak falls within ``CLEARANCE_MS`` of the segment start has no segment (the previous
QRS and T wave would fill it), nor one whose samples are unknown.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from numpy.typing import NDArray

from ambulink.signal.validation import check_fs

SEGMENT_MS = (350.0, 120.0)  # the segment runs from R - 350 ms to R - 120 ms
CLEARANCE_MS = 120.0  # the previous R peak must lie at least this far before the segment
SEGMENTS = 12  # coherence over this many recent conducted beats
MIN_SEGMENTS = 8  # ... and only once this many are known
POLY = 2  # degree of the trend removed from each segment


class AtrialCoherence:
    """P-wave coherence of one stream's recent conducted beats (see the module docstring)."""

    def __init__(self, fs_hz: float) -> None:
        fs = check_fs(fs_hz)
        self._lead_in = int(round(SEGMENT_MS[0] * fs / 1000.0))
        self._lead_out = int(round(SEGMENT_MS[1] * fs / 1000.0))
        self._clearance = int(round(CLEARANCE_MS * fs / 1000.0))
        self._segments: deque[NDArray[np.float64] | None] = deque(maxlen=SEGMENTS)
        # least-squares removal of a quadratic (see the module docstring)
        n = self._lead_in - self._lead_out
        t = np.linspace(-1.0, 1.0, n)
        self._basis = np.vstack([t**k for k in range(POLY + 1)]).T
        self._fit = np.linalg.pinv(self._basis)
        self._sum = np.zeros(n)  # running sum of the known segments in ``_segments``
        self._known = 0

    def push(
        self, r_sample: int, previous_r: int | None, preceding: NDArray[np.float64] | None
    ) -> float | None:
        """Add the next conducted beat: its R peak, the previous beat's R peak (None for the first)
        and the band-passed samples just before its R peak (None when unknown). Returns the
        coherence of the recent segments in [0, 1], or None while too few are known."""
        segment = None
        start = r_sample - self._lead_in
        clear = previous_r is None or previous_r <= start - self._clearance
        if preceding is not None and preceding.size >= self._lead_in and clear:
            segment = preceding[preceding.size - self._lead_in : preceding.size - self._lead_out]
        shape = None
        if segment is not None and np.all(np.isfinite(segment)):
            shape = segment - self._basis @ (self._fit @ segment)
            norm = float(np.linalg.norm(shape))
            shape = shape / norm if norm > 0.0 else None
        if len(self._segments) == SEGMENTS and (dropped := self._segments[0]) is not None:
            self._sum -= dropped
            self._known -= 1
        self._segments.append(shape)
        if shape is not None:
            self._sum += shape
            self._known += 1
        if self._known < MIN_SEGMENTS:
            return None
        mean = self._sum / self._known
        return float(np.dot(mean, mean))
