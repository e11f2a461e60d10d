"""Per-lead signal quality and lead-off / flat-line detection, in fixed one-second blocks.

Each block of one lead is judged on its own samples, so results do not depend on chunking:
- **off**: a flat line (peak-to-peak below 20 µV, which no attached electrode shows through
  body noise) or a railed amplifier (most samples stuck at one extreme value);
- **SQI** in [0, 1]: 1 for a clean ECG; lowered by high-frequency noise (muscle, powerline
  residue) relative to the signal's size and by baseline excursions larger than an ECG.
The hub also receives the monitor's own lead-off bits; this is the signal's view of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ambulink.signal.filters import SosFilter, highpass_sos
from ambulink.signal.validation import check_fs

FloatArray = NDArray[np.float64]

FLAT_MV = 0.02
RAILED_SHARE = 0.3


@dataclass(frozen=True, slots=True)
class BlockQuality:
    """Quality of one lead over samples ``[start, end)``."""

    start: int
    end: int
    off: bool
    sqi: float


def judge_block(raw_mv: FloatArray, noise_mv: FloatArray, start: int) -> BlockQuality:
    """Quality of one block: raw samples (mV) and their >40 Hz residue (mV)."""
    end = start + raw_mv.size
    span = float(np.ptp(raw_mv)) if raw_mv.size else 0.0
    if span < FLAT_MV:
        return BlockQuality(start, end, True, 0.0)
    top, bottom = float(raw_mv.max()), float(raw_mv.min())
    railed = max(np.mean(raw_mv == top), np.mean(raw_mv == bottom))
    if railed > RAILED_SHARE:
        return BlockQuality(start, end, True, 0.0)
    noise = float(np.sqrt(np.mean(noise_mv**2)))
    noise_score = 1.0 - min(noise / max(0.05 * span, 1e-6), 1.0) ** 2
    wander_score = 1.0 if span <= 5.0 else max(0.0, 1.0 - (span - 5.0) / 10.0)
    return BlockQuality(start, end, False, round(max(0.0, noise_score * wander_score), 3))


class StreamQuality:
    """Streams (n_samples, n_leads) chunks; yields one ``BlockQuality`` per lead and full second.

    All leads are filtered in one call, so twelve leads cost little more than one.
    """

    def __init__(self, fs_hz: float, n_leads: int) -> None:
        self.fs_hz = check_fs(fs_hz)
        self.n_leads = n_leads
        self._block = int(round(self.fs_hz))
        cutoff = min(40.0, 0.4 * self.fs_hz)
        self._noise = SosFilter(highpass_sos(cutoff, self.fs_hz, order=4))
        self._raw: list[FloatArray] = []
        self._res: list[FloatArray] = []
        self._held = 0
        self._start = 0

    @property
    def judged_until(self) -> int:
        """Every sample before this one has been judged."""
        return self._start

    def feed(self, samples_mv: FloatArray) -> list[list[BlockQuality]]:
        """Returns, per full block now available, the block's quality for each lead."""
        self._raw.append(samples_mv)
        self._res.append(self._noise(samples_mv))
        self._held += samples_mv.shape[0]
        out: list[list[BlockQuality]] = []
        if self._held < self._block:
            return out
        raw = np.concatenate(self._raw)
        res = np.concatenate(self._res)
        n_blocks = raw.shape[0] // self._block
        for k in range(n_blocks):
            lo, hi = k * self._block, (k + 1) * self._block
            out.append(
                [
                    judge_block(raw[lo:hi, i], res[lo:hi, i], self._start)
                    for i in range(self.n_leads)
                ]
            )
            self._start += self._block
        used = n_blocks * self._block
        self._raw, self._res = [raw[used:]], [res[used:]]
        self._held = raw.shape[0] - used
        return out
