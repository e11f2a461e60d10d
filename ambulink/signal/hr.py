"""Heart rate and RR-interval statistics from a beat stream."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ambulink.signal.events import HeartRateEvent
from ambulink.signal.validation import check_fs


@dataclass(frozen=True, slots=True)
class RRStats:
    """Statistics of recent RR intervals (ms)."""

    n: int
    mean_ms: float
    sdnn_ms: float
    rmssd_ms: float
    pnn50: float  # share of successive differences above 50 ms


def rr_statistics(rr_ms: np.ndarray) -> RRStats | None:
    """RR statistics of a series of intervals in ms; None for fewer than two intervals."""
    rr = np.asarray(rr_ms, dtype=np.float64)
    if rr.size < 2:
        return None
    diff = np.diff(rr)
    return RRStats(
        n=int(rr.size),
        mean_ms=float(rr.mean()),
        sdnn_ms=float(rr.std(ddof=1)),
        rmssd_ms=float(np.sqrt(np.mean(diff**2))),
        pnn50=float(np.mean(np.abs(diff) > 50.0)),
    )


def averaged_rr(rr: Sequence[float]) -> float:
    """Mean RR without the longest and shortest interval (from 4 intervals on), as monitors
    average, so that one pause or one ectopic beat does not swing the displayed rate."""
    if not rr:
        raise ValueError("averaged_rr needs at least one interval")
    if len(rr) < 4:
        return sum(rr) / len(rr)
    return (sum(rr) - max(rr) - min(rr)) / (len(rr) - 2)


class HeartRateMeter:
    """Beat-to-beat and averaged heart rate (mean of the last ``average_beats`` RR intervals)."""

    def __init__(self, fs_hz: float, average_beats: int = 8, history_beats: int = 64) -> None:
        self.fs_hz = check_fs(fs_hz)
        self._recent: deque[float] = deque(maxlen=average_beats)
        self._history: deque[float] = deque(maxlen=history_beats)
        self._last: int | None = None

    def on_beat(self, sample: int) -> HeartRateEvent | None:
        """Register a beat's R peak; returns the heart rate once an RR interval exists."""
        last, self._last = self._last, sample
        if last is None or sample <= last:
            return None
        rr_ms = (sample - last) * 1000.0 / self.fs_hz
        self._recent.append(rr_ms)
        self._history.append(rr_ms)
        average = 60000.0 / averaged_rr(self._recent)
        return HeartRateEvent(sample, round(60000.0 / rr_ms, 1), round(average, 1))

    def stats(self) -> RRStats | None:
        """Statistics of the last ``history_beats`` RR intervals."""
        return rr_statistics(np.array(self._history))
