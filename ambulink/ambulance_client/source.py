"""Monitor sources: where the tablet's ECG samples come from.

``RecordReplay`` plays a real WFDB record as a live monitor would: ADC samples (int16, one gain
for all leads), in blocks of ``block_ms``, paced by an injected clock and sleep so tests run in
no time (STYLE §4). A serial monitor adapter will offer the same ``blocks()``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import wfdb
from numpy.typing import NDArray

from ambulink.errors import ConfigError, RecordNotFound, SignalError
from ambulink.protocol.ecg_frame import EcgFrame, frames_from_samples

Int16Array = NDArray[np.int16]
_INT16 = np.iinfo(np.int16)


@dataclass(frozen=True, eq=False, slots=True)
class SampleBlock:
    """``samples`` (int16, shape (n, n_leads), read-only) starting at sample ``first_sample``
    of the stream (counted since the source started, continuing across record loops)."""

    first_sample: int
    samples: Int16Array

    @property
    def n_samples(self) -> int:
        return int(self.samples.shape[0])


@dataclass(frozen=True, slots=True)
class Detachment:
    """A demo scenario: ``lead``'s electrode is off from ``off_s`` to ``on_s`` of every
    ``every_s`` of stream time. The monitor then holds the lead flat at 0 and sets its lead-off
    bit in the frame, as real monitors do."""

    lead: str
    off_s: float
    on_s: float
    every_s: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.off_s < self.on_s <= self.every_s:
            raise ConfigError(
                f"a detachment needs 0 <= off_s < on_s <= every_s, got {self.off_s}, "
                f"{self.on_s}, {self.every_s}"
            )

    def off(self, samples: NDArray[np.int64], fs: int) -> NDArray[np.bool_]:
        """Which of the stream ``samples`` fall while the electrode is off."""
        phase = np.mod(samples / fs, self.every_s)
        mask: NDArray[np.bool_] = (phase >= self.off_s) & (phase < self.on_s)
        return mask


@dataclass(frozen=True, slots=True)
class _AdcRecord:
    samples: Int16Array  # (n, n_leads), zero at 0 mV, read-only
    fs: int
    gain: float
    leads: list[str]
    invalid: NDArray[np.bool_] | None  # (n, n_leads): WFDB's missing-sample value (0 in samples)


def _read_adc(path: str) -> _AdcRecord:
    """A WFDB record as int16 ADC samples with zero at 0 mV and one gain for every lead."""
    if not Path(path + ".hea").is_file():
        raise RecordNotFound(f"no WFDB record at {path} (expected header {path}.hea)")
    try:
        rec = wfdb.rdrecord(path, physical=False)
    except FileNotFoundError as exc:  # header present, signal file missing
        raise RecordNotFound(f"WFDB record {path} is incomplete: {exc}") from exc
    fs = round(float(rec.fs))
    if not math.isclose(fs, float(rec.fs)) or not 1 <= fs <= 65535:
        raise SignalError(
            f"record {path}: fs must be a whole number of Hz in 1..65535, got {rec.fs}"
        )
    gains = np.asarray(rec.adc_gain, dtype=np.float64)
    if np.any(gains <= 0):
        raise SignalError(f"record {path}: every ADC gain must be positive, got {list(gains)}")
    # The wire frame carries no baseline: subtract it, so that mV = sample / gain.
    adc = np.asarray(rec.d_signal, dtype=np.float64) - np.asarray(rec.baseline, dtype=np.float64)
    # Samples the record marks missing (its format's invalid value; NaN once converted) are sent
    # as a monitor sends a lost electrode: 0 mV with the lead-off bit.
    try:
        invalid = np.isnan(rec.dac())
    except (TypeError, ValueError, KeyError):  # a format without one (first differences, "8")
        invalid = np.zeros(adc.shape, dtype=bool)
    adc[invalid] = 0.0
    gain = float(gains.max())
    if np.any(gains != gain):
        # One gain per frame (DESIGN §3.2): rescale every lead to the finest gain, or to the
        # coarsest if the finest would overflow int16 (losing a little resolution on the rest).
        scaled = adc * (gain / gains)
        if np.abs(scaled).max() > _INT16.max:
            gain = float(gains.min())
            scaled = adc * (gain / gains)
        adc = np.rint(scaled)
    if adc.size and (adc.min() < _INT16.min or adc.max() > _INT16.max):
        raise SignalError(f"record {path}: samples do not fit int16 after baseline removal")
    samples = adc.astype(np.int16)
    samples.flags.writeable = False
    leads = [str(n) for n in rec.sig_name]
    return _AdcRecord(samples, fs, gain, leads, invalid if invalid.any() else None)


class RecordReplay:
    """Replays a WFDB record's ADC samples as a live monitor would, in blocks of ``block_ms``,
    at ``speed`` times real time.

    Block ``k`` holds stream samples ``[floor(k * block_ms * fs / 1000), floor((k + 1) * ...))``
    so blocks of a non-integral sample count (40 ms at 360 Hz = 14.4) alternate 14 and 15 samples
    and never drift. ``blocks()`` yields block ``k`` at ``t0 + k * block_s / speed`` on the
    injected clock (monotonic s), sleeping with the injected ``sleep``; when it falls behind it
    catches up without sleeping, so the schedule never slips. With ``loop=True`` the record
    repeats forever, ``first_sample`` continuing across the seam.

    ``gain`` is ADC units per mV, one value for all leads: the record's ``adc_gain`` when the
    leads agree (all bundled records do), otherwise every lead is rescaled to the largest gain
    (or the smallest, if the largest would overflow int16). ``leads`` keeps the record's names
    (e.g. mitdb's ``"MLII"``, ptbdb's lower-case ``"ii"`` and its Frank leads ``"vx"``...).
    Samples are baseline-corrected: 0 is 0 mV. ``detach`` (a demo scenario) takes one lead's
    electrode off periodically: flat samples and its lead-off bit in those frames.
    """

    def __init__(
        self,
        path: str,
        *,
        block_ms: float = 40.0,
        speed: float = 1.0,
        loop: bool = True,
        start_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        detach: Detachment | None = None,
    ) -> None:
        if not (math.isfinite(speed) and speed > 0):
            raise ConfigError(f"replay speed must be a positive number, got {speed}")
        if not (math.isfinite(block_ms) and block_ms > 0):
            raise ConfigError(f"block_ms must be a positive number of ms, got {block_ms}")
        record = _read_adc(path)
        if block_ms * record.fs < 1000:
            raise ConfigError(
                f"block_ms={block_ms} is less than one sample at {record.fs} Hz ({path})"
            )
        if len(record.samples) == 0:
            raise SignalError(f"record {path} has no samples")
        self.path = path
        self.fs: int = record.fs
        self.gain: float = record.gain
        self.leads: list[str] = record.leads
        self.n_leads: int = len(record.leads)
        self.block_ms = block_ms
        self.speed = speed
        self.loop = loop
        if not 0.0 <= start_s * record.fs < len(record.samples):
            raise ConfigError(f"start_s={start_s} is outside the record {path}")
        # Starting part-way in: the stream's sample 0 is the record's sample at start_s, and a
        # looping replay wraps to the record's beginning after its end.
        start = int(start_s * record.fs)
        stop = None if loop else len(record.samples) - start

        def from_start(rows: NDArray[Any]) -> NDArray[Any]:
            """The record's rows from ``start`` on (then its beginning, when looping)."""
            rotated = np.concatenate((rows[start:], rows[:start]))[:stop]
            rotated.flags.writeable = False
            return rotated

        self._samples = from_start(record.samples)
        # the record's missing samples, rows as self._samples (None: it has none)
        self._invalid = None if record.invalid is None else from_start(record.invalid)
        self._samples_per_block = Fraction(block_ms) * record.fs / 1000
        self._clock = clock
        self._sleep = sleep
        self._detach: tuple[Detachment, int] | None = None  # with the lead's column
        if detach is not None:
            if detach.lead not in self.leads:
                raise ConfigError(f"cannot detach lead {detach.lead!r}: {path} has {self.leads}")
            self._detach = (detach, self.leads.index(detach.lead))

    @property
    def n_samples(self) -> int:
        """Samples in one pass of the record."""
        return len(self._samples)

    @property
    def n_blocks(self) -> int | None:
        """Blocks in the replay: ``None`` (unbounded) when looping."""
        if self.loop:
            return None
        return math.ceil(self.n_samples / self._samples_per_block)

    def _block_start(self, k: int) -> int:
        return math.floor(k * self._samples_per_block)

    def frame_at(self, k: int, stream_id: int) -> EcgFrame:
        """Block ``k`` as the ECG frame with seq ``k`` of ``stream_id`` (one frame per block)."""
        block, lead_off = self._monitor_block(k)
        (frame,) = frames_from_samples(
            block.samples,
            stream_id=stream_id,
            fs=self.fs,
            gain=self.gain,
            first_sample=block.first_sample,
            first_seq=k,
            frame_samples=block.n_samples,
            lead_off=lead_off,
        )
        return frame

    def block_at(self, k: int) -> SampleBlock:
        """Block ``k`` (from 0), without waiting: pure access for tests and backfill."""
        return self._monitor_block(k)[0]

    def _monitor_block(self, k: int) -> tuple[SampleBlock, int]:
        """Block ``k`` as the monitor gives it, and its lead-off bits (a detached electrode's
        lead, and the record's missing samples, are flat at 0)."""
        start, rows = self._block_rows(k)
        record_samples = self._samples[rows]
        record_samples.flags.writeable = False  # a copy where the block wraps the loop seam
        block = SampleBlock(start, record_samples)
        lead_off = 0
        if self._invalid is not None:
            for lead in np.flatnonzero(self._invalid[rows].any(axis=0)).tolist():
                lead_off |= 1 << lead
        if self._detach is None:
            return block, lead_off
        detach, lead = self._detach
        off = detach.off(np.arange(start, start + block.n_samples), self.fs)
        if not off.any():
            return block, lead_off
        samples = block.samples.copy()
        samples[off, lead] = 0
        samples.flags.writeable = False
        return SampleBlock(start, samples), lead_off | 1 << lead

    def _block_rows(self, k: int) -> tuple[int, slice | NDArray[np.int64]]:
        """Block ``k``'s first stream sample and its rows of the replayed samples."""
        n_blocks = self.n_blocks
        if k < 0 or (n_blocks is not None and k >= n_blocks):
            raise IndexError(f"block {k} is outside 0..{n_blocks} of {self.path}")
        start, end = self._block_start(k), self._block_start(k + 1)
        n = self.n_samples
        if not self.loop:
            return start, slice(start, min(end, n))
        lo, hi = start % n, start % n + (end - start)
        if hi <= n:
            return start, slice(lo, hi)
        # The block straddles the loop seam (or is longer than the record): wrap around.
        return start, np.arange(start, end) % n

    async def blocks(self) -> AsyncIterator[SampleBlock]:
        """Blocks as a live monitor would deliver them, block ``k`` at
        ``t0 + k * block_s / speed`` (``t0``: the clock when iteration starts)."""
        period_s = self.block_ms / 1000.0 / self.speed
        t0 = self._clock()
        k = 0
        n_blocks = self.n_blocks
        while n_blocks is None or k < n_blocks:
            delay_s = t0 + k * period_s - self._clock()
            if delay_s > 0:
                await self._sleep(delay_s)
            yield self.block_at(k)
            k += 1
