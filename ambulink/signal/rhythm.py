"""Rhythm episodes from beats, gaps and the waveform: onset/offset with evidence.

Monitors, each fed in stream order and independent of the others (so chunking never changes
what they decide):
- ``GapMonitor``: PAUSE (no QRS for >= 2.5 s) and ASYSTOLE (>= 4 s), from R peaks and the QRS
  detector's horizon (the sample before which every R peak has been reported); not while the
  lead is flat or off, which is a technical condition, not asystole.
- ``RateMonitor``: BRADY (averaged HR < 50 bpm) and TACHY (> 120 bpm) with hysteresis.
- ``VtMonitor``: VT, a run of >= 3 consecutive ventricular beats faster than 100 bpm.
- AF comes from ``ambulink.signal.af`` (RR irregularity), VF/VFL from ``ambulink.signal.vf``
  (waveform); the ``Analyzer`` runs them all.

``detect_episodes(signal, fs)`` is the batch entry point over the streaming ``Analyzer``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from ambulink.signal.events import (
    Beat,
    Episode,
    EpisodeEnd,
    EpisodeStart,
    EvidenceWindow,
    RhythmLabel,
)
from ambulink.signal.hr import averaged_rr
from ambulink.signal.validation import as_record, check_fs

EVIDENCE_S = 10.0


def evidence_window(onset: int, decided_at: int, fs_hz: float) -> EvidenceWindow:
    """The 10 s strip shown for an onset: it ends by ``decided_at`` and shows the onset when it can
    (2 s before it), else the 10 s before the decision."""
    length = int(round(EVIDENCE_S * fs_hz))
    start = max(0, min(onset - int(2 * fs_hz), decided_at - length))
    return EvidenceWindow(start, start + length)


class _Episodes:
    """Open episodes of the labels one monitor owns."""

    def __init__(self, fs_hz: float) -> None:
        self.fs_hz = fs_hz
        self.open: dict[RhythmLabel, int] = {}

    def start(self, label: RhythmLabel, onset: int, decided_at: int) -> list[EpisodeStart]:
        if label in self.open:
            return []
        self.open[label] = onset
        return [
            EpisodeStart(label, onset, decided_at, evidence_window(onset, decided_at, self.fs_hz))
        ]

    def end(self, label: RhythmLabel, end: int, decided_at: int) -> list[EpisodeEnd]:
        onset = self.open.pop(label, None)
        if onset is None:
            return []
        return [EpisodeEnd(label, onset, max(end, onset + 1), decided_at)]

    def close_all(self, end: int) -> list[EpisodeEnd]:
        return [e for label in list(self.open) for e in self.end(label, end, end)]


@dataclass(frozen=True, slots=True)
class RhythmConfig:
    pause_s: float = 2.5
    asystole_s: float = 4.0
    brady_bpm: float = 50.0
    tachy_bpm: float = 120.0
    hysteresis_bpm: float = 5.0
    rate_beats: int = 8  # averaged heart rate over this many RR intervals
    confirm_beats: int = 4  # a rate condition must hold this many beats in a row
    vt_beats: int = 3
    vt_bpm: float = 100.0
    vt_rr_spread: float = 1.5
    vt_same_shape: float = 1.0  # share of the run's beats that must have the run's QRS shape


class GapMonitor:
    """PAUSE and ASYSTOLE from the time since the last R peak."""

    def __init__(self, fs_hz: float, config: RhythmConfig | None = None) -> None:
        self.fs_hz = check_fs(fs_hz)
        cfg = config or RhythmConfig()
        self._pause = int(round(cfg.pause_s * self.fs_hz))
        self._asystole = int(round(cfg.asystole_s * self.fs_hz))
        self._episodes = _Episodes(self.fs_hz)
        # The stream's start counts as the last sign of a beat: a patient already in asystole
        # when the monitor is connected must still raise the alarm.
        self._last: int | None = 0
        self._off: deque[tuple[int, int]] = deque()  # lead-off spans [start, end)

    def lead_off(self, start: int, end: int) -> None:
        """The analysed lead was flat or off over ``[start, end)``."""
        if self._off and self._off[-1][1] == start:
            self._off[-1] = (self._off[-1][0], end)
        else:
            self._off.append((start, end))

    def _was_off(self, start: int, end: int) -> bool:
        return any(a < end and start < b for a, b in self._off)

    def on_peak(self, sample: int) -> list[EpisodeStart | EpisodeEnd]:
        out: list[EpisodeStart | EpisodeEnd] = list(self.advance(sample))
        reported = bool(self._episodes.open)
        for label in ("ASYSTOLE", "PAUSE"):
            out.extend(self._episodes.end(label, sample, sample))
        last = self._last
        # A pause the horizon had not shown yet (its closing beat was found late by searchback).
        if (
            last is not None
            and not reported
            and sample - last >= self._pause
            and not self._was_off(last, sample)
        ):
            out.extend(self._episodes.start("PAUSE", last, sample))
            out.extend(self._episodes.end("PAUSE", sample, sample))
        self._last = sample
        while self._off and self._off[0][1] < sample - 2 * self._asystole:
            self._off.popleft()
        return out

    def advance(self, horizon: int) -> list[EpisodeStart | EpisodeEnd]:
        """No R peak before ``horizon`` other than those given: start episodes that are due."""
        out: list[EpisodeStart | EpisodeEnd] = []
        if self._last is None:
            return out
        limits: tuple[tuple[RhythmLabel, int], ...] = (
            ("PAUSE", self._pause),
            ("ASYSTOLE", self._asystole),
        )
        for label, limit in limits:
            due = self._last + limit
            if horizon >= due and label not in self._episodes.open:
                if self._was_off(self._last, due):
                    continue
                out.extend(self._episodes.start(label, self._last, due))
        return out

    def finish(self, end: int) -> list[EpisodeEnd]:
        return self._episodes.close_all(end)


class RateMonitor:
    """BRADY and TACHY from the averaged heart rate, confirmed over several beats."""

    def __init__(self, fs_hz: float, config: RhythmConfig | None = None) -> None:
        self.fs_hz = check_fs(fs_hz)
        self.config = config or RhythmConfig()
        self._rr: deque[int] = deque(maxlen=self.config.rate_beats)
        self._last: int | None = None
        self._episodes = _Episodes(self.fs_hz)
        self._streak: dict[RhythmLabel, list[int]] = {"BRADY": [], "TACHY": []}
        self._clear_streak: dict[RhythmLabel, list[int]] = {"BRADY": [], "TACHY": []}

    def on_beat(self, sample: int) -> list[EpisodeStart | EpisodeEnd]:
        last, self._last = self._last, sample
        if last is None:
            return []
        self._rr.append(sample - last)
        if len(self._rr) < self.config.rate_beats:
            return []
        bpm = 60.0 * self.fs_hz / averaged_rr(self._rr)
        cfg = self.config
        out: list[EpisodeStart | EpisodeEnd] = []
        conditions: tuple[tuple[RhythmLabel, bool, bool], ...] = (
            ("BRADY", bpm < cfg.brady_bpm, bpm >= cfg.brady_bpm + cfg.hysteresis_bpm),
            ("TACHY", bpm > cfg.tachy_bpm, bpm <= cfg.tachy_bpm - cfg.hysteresis_bpm),
        )
        for label, active, cleared in conditions:
            streak = self._streak[label]
            clear = self._clear_streak[label]
            if active:
                streak.append(sample)
            else:
                streak.clear()
            if cleared:
                clear.append(sample)
            else:
                clear.clear()
            if len(streak) >= cfg.confirm_beats:
                # The averaged rate crossed the limit over the RR window before the first beat.
                onset = streak[0] - sum(self._rr) if len(streak) == cfg.confirm_beats else streak[0]
                out.extend(self._episodes.start(label, max(onset, 0), sample))
            if len(clear) >= cfg.confirm_beats:
                out.extend(self._episodes.end(label, clear[0], sample))
        return out

    def finish(self, end: int) -> list[EpisodeEnd]:
        return self._episodes.close_all(end)


_BREAK_SPAN = 3  # a second slow conducted beat within this many VT beats of one ends VT
WIDE_QRS_MS = 120.0  # a QRS this wide is not normally conducted
VT_WIDTH_SPREAD = 0.2  # a wide beat within this share of the VT's QRS width and RR continues it


class VtMonitor:
    """VT: at least ``vt_beats`` consecutive ventricular beats faster than ``vt_bpm``.

    To keep noise from passing for VT, the run must be regular (longest RR at most
    ``vt_rr_spread`` times the shortest) and of one QRS shape (monomorphic: by default every
    beat of the run; chaotic polymorphic rhythms are the VF detector's). Motion artefact that
    passes for a fast ventricular run rarely repeats one shape three times in a row. Once VT
    runs, beats of its QRS shape keep it going even if the classifier comes to call that shape
    normal, and so do wide beats (>= ``WIDE_QRS_MS``) as wide and as fast as the VT's within
    ``VT_WIDTH_SPREAD`` (over minutes of VT the classifier may file its beats under another
    cluster); it ends at the second beat in a row that is none of these, or slower than the
    limit, or at the second slow
    non-ventricular beat within ``_BREAK_SPAN`` VT beats (bigeminy is not VT).
    """

    def __init__(self, fs_hz: float, config: RhythmConfig | None = None) -> None:
        self.fs_hz = check_fs(fs_hz)
        self.config = config or RhythmConfig()
        self._run: list[Beat] = []
        self._episodes = _Episodes(self.fs_hz)
        self._max_rr = 60.0 * self.fs_hz / self.config.vt_bpm
        self._shape: int | None = None  # QRS shape of the running VT
        self._width_ms: float | None = None  # its QRS width (median of the onset run)
        self._rr = 0.0  # its RR interval (samples, median of the onset run)
        self._breaks: list[int] = []
        self._conducted: int | None = None  # last slow conducted beat inside the running VT
        self._since_conducted = 0  # VT beats since then
        self._last: int | None = None

    @property
    def active(self) -> bool:
        return "VT" in self._episodes.open

    def on_beat(self, beat: Beat) -> list[EpisodeStart | EpisodeEnd]:
        last, self._last = self._last, beat.sample
        rr = None if last is None else beat.sample - last
        fast = rr is not None and rr < self._max_rr
        if "VT" in self._episodes.open:
            return self._continue(beat, rr if fast else None)
        if beat.label == "V" and (fast or not self._run):
            self._run.append(beat)
        else:
            self._run = [beat] if beat.label == "V" else []
            return []
        return self._maybe_start(beat)

    def _maybe_start(self, beat: Beat) -> list[EpisodeStart | EpisodeEnd]:
        cfg = self.config
        run = self._run[-cfg.vt_beats :]
        if len(run) < cfg.vt_beats:
            return []
        rr = np.diff([b.sample for b in run])
        if rr.mean() >= self._max_rr or rr.max() > cfg.vt_rr_spread * rr.min():
            return []
        shapes = [b.morphology for b in run]
        shape = max(set(shapes), key=shapes.count)
        if shape is None or shapes.count(shape) < cfg.vt_same_shape * len(run):
            return []
        self._shape, self._breaks, self._conducted = shape, [], None
        widths = [b.qrs_ms for b in run if b.qrs_ms is not None]
        self._width_ms = float(np.median(widths)) if widths else None
        self._rr = float(np.median(rr))
        return list(self._episodes.start("VT", run[0].sample, beat.sample))

    def _continue(self, beat: Beat, fast_rr: int | None) -> list[EpisodeStart | EpisodeEnd]:
        """``fast_rr``: the beat's RR when it is faster than the VT limit, else None."""
        if fast_rr is not None and (
            beat.label == "V" or beat.morphology == self._shape or self._as_wide(beat, fast_rr)
        ):
            self._breaks = []
            self._since_conducted += 1
            return []
        self._breaks.append(beat.sample)
        end: int | None = self._breaks[0] if len(self._breaks) >= 2 else None
        if fast_rr is None and beat.label != "V":
            # slow non-ventricular beats twice within a few VT beats: ventricular bigeminy or
            # trigeminy, not VT (a single one is ridden through, as a misread beat would be)
            if self._conducted is not None and self._since_conducted <= _BREAK_SPAN:
                end = self._conducted if end is None else min(end, self._conducted)
            self._conducted, self._since_conducted = beat.sample, 0
        if end is None:
            return []
        self._run, self._shape, self._breaks, self._conducted = [], None, [], None
        return list(self._episodes.end("VT", end, beat.sample))

    def _as_wide(self, beat: Beat, rr: int) -> bool:
        """A wide QRS about as wide as the running VT's, at about its rate."""
        vt, qrs = self._width_ms, beat.qrs_ms
        if vt is None or qrs is None or vt < WIDE_QRS_MS or qrs < WIDE_QRS_MS:
            return False
        return (
            abs(rr - self._rr) <= VT_WIDTH_SPREAD * self._rr
            and abs(qrs - vt) <= VT_WIDTH_SPREAD * vt
        )

    def finish(self, end: int) -> list[EpisodeEnd]:
        return self._episodes.close_all(end)


def detect_episodes(signal: np.ndarray, fs: float) -> list[Episode]:
    """Rhythm episodes of ``signal`` (mV) at ``fs`` Hz, sorted by start.

    ``signal`` is one lead (1-D), or leads in columns (n_samples, n_leads): then the first is
    analysed and the second confirms pauses, asystole and VF and stands in while the first is
    off, as in the streaming ``Analyzer``. Labels: AF, VT, VF, ASYSTOLE, PAUSE, BRADY, TACHY;
    ``end`` is exclusive.
    """
    from ambulink.signal.analyzer import analyze_record

    record, fs_hz = as_record(signal, fs)
    events = analyze_record(record, fs_hz)
    raised = {(e.label, e.onset): e.decided_at for e in events if isinstance(e, EpisodeStart)}
    episodes = [
        Episode(e.start, e.end, e.label, raised.get((e.label, e.start)))
        for e in events
        if isinstance(e, EpisodeEnd)
    ]
    return sorted(absorb_in_vf(episodes), key=lambda e: (e.start, e.end, e.label))


def absorb_in_vf(episodes: list[Episode]) -> list[Episode]:
    """Drop VT and AF episodes that lie wholly inside a VF episode.

    Ventricular flutter waves pass the QRS detector as fast ventricular beats, so the VT
    monitor also fires inside VF/VFL, and fibrillation waves taken for beats are as irregular
    as AF; the arrhythmia is one, and VF is its name. (The streaming Analyzer reports them all;
    the alarm layer annunciates the higher-priority one.)
    """
    vf = [(e.start, e.end) for e in episodes if e.label == "VF"]
    return [
        e
        for e in episodes
        if not (e.label in ("VT", "AF") and any(a <= e.start and e.end <= b for a, b in vf))
    ]


__all__ = [
    "Episode",
    "GapMonitor",
    "RateMonitor",
    "RhythmConfig",
    "VtMonitor",
    "absorb_in_vf",
    "detect_episodes",
    "evidence_window",
]
