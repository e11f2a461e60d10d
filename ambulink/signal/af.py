"""Streaming atrial fibrillation detector fed classified beats (RR-interval irregularity).

AF is an irregularly irregular ventricular response: each conducted RR interval is unrelated to
the ones before it. Sinus rhythm, even with sinus arrhythmia, repeats its recent intervals, and
so do patterned rhythms (bigeminy, trigeminy, Wenckebach cycles), which repeat with a period of
two or three beats. So every conducted interval is asked whether it *differs* by more than
``_DIFFERENT`` (relative to the pair's mean) from the conducted interval 1, 2 and 3 before it, and
the AF evidence of a window is the smallest of the three per-lag shares of differing intervals: a
rhythm that repeats at any lag up to 3 gives none.

Ectopy is not atrial irregularity (as in Petrėnas et al. 2015, ectopic beats are filtered before
irregularity is measured): intervals touching a V or Q beat are dropped and break the run of
compared intervals; intervals touching an S beat are dropped too but the run goes on across them,
so a few S labels in AF (irregular narrow beats taken as premature) do not hide it. A premature
interval followed by a long one, both ``_PREMATURE`` away from the recent interval, is taken as an
ectopic beat the classifier called N and dropped the same way.

Irregularity alone also fires on sinus rhythm with irregular blocked or dropped beats (mitdb 219
alternates two RR intervals in no fixed order), so P waves have a say: each conducted beat may
carry the P-wave coherence of the recent beats (``ambulink.signal.atrial``). AF does not start
while the median of the last ``_P_BEATS`` readings is ``_P_ABSENT`` or more, and stops, however
irregular the RR intervals, once it reaches ``_P_PRESENT``; the change point then also honours
the readings (AF cannot start before the beats that still showed P waves). Without readings
(a noisy lead, fast rates, a caller that gives none) RR irregularity decides alone.

AF starts when at least ``_ONSET_SHARE`` of a window of ``_WINDOW_INTERVALS`` compared intervals
(none older than ``_WINDOW_S``) differ, and stops when at most ``_OFFSET_SHARE`` do, or when fewer
than ``_MIN_INTERVALS`` compared intervals are left in ``_WINDOW_S`` (a ventricular rhythm or
ectopy took over). The reported onset/offset sample is the change point in the recent intervals,
where a CUSUM run backwards from the decision peaks; ectopic beats count there as evidence of an
organised rhythm, so an episode is not stretched over the ectopy around it.
"""

from __future__ import annotations

import operator
import statistics
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ambulink.errors import SignalError
from ambulink.signal.atrial import SEGMENTS
from ambulink.signal.events import Transition
from ambulink.signal.validation import check_fs

_LABELS = frozenset({"N", "V", "S", "Q"})
_LAGS = 3  # an interval is compared with the conducted intervals 1..3 before it
_MIN_LAGS = 2  # ... and is evidence once at least 2 of them are known
_DIFFERENT = 0.09  # two RRs differ when apart by more than this share of their mean
_PREMATURE = 0.12  # unlabelled ectopic: RR this share below the recent RR, the next this above
_REFERENCE_INTERVALS = 3  # recent RR = median of this many accepted conducted intervals
_WINDOW_INTERVALS = 40  # compared intervals judged together (30-40 s at 60-80 bpm)
_WINDOW_S = 60.0  # ... none older than this (s)
_MIN_INTERVALS = 20  # fewer compared intervals than this in the window: no AF
_ONSET_SHARE = 0.55  # AF starts at or above this share of differing intervals
_OFFSET_SHARE = 0.20  # AF stops at or below this share
_CHANGE_LEVEL = 0.35  # CUSUM reference between the shares of the two rhythms
_HISTORY_ITEMS = 60  # intervals and ectopic beats searched for the change point
_P_BEATS = 8  # P-wave coherence: median of the last this many conducted beats' values
_P_ABSENT = 0.40  # AF starts only below this coherence (when it is known)
_P_PRESENT = 0.50  # AF stops at or above it: P waves are back, however irregular the RR
_AF_SHIFT = SEGMENTS // 3  # beats between an AF onset and the reading that drops under _P_ABSENT
_SINUS_SHIFT = 2 * SEGMENTS // 3  # ... between P waves' return and the reading that rises to it


@dataclass(frozen=True, slots=True)
class _Interval:
    """One RR interval ``[start, end)`` (samples) between two consecutive beats."""

    start: int
    end: int
    conducted: bool  # both beats N: a candidate for the irregularity measure
    breaks_run: bool  # touches a V or Q beat: later intervals are not compared across it
    ends_ectopic: bool  # its closing beat is not N


@dataclass(frozen=True, slots=True)
class _Evidence:
    """A compared interval ``[start, end)`` and, per lag 1, 2, 3 (as far as known), whether it
    differs; ``differs == ()`` marks an ectopic beat (used only to place change points)."""

    start: int
    end: int
    differs: tuple[bool, ...]


def _shares(evidence: Iterable[_Evidence]) -> list[float]:
    """Share of compared intervals that differ, per lag (0.0 for a lag none reaches)."""
    counts = [0] * _LAGS
    differing = [0] * _LAGS
    for item in evidence:
        for lag, differs in enumerate(item.differs):
            counts[lag] += 1
            differing[lag] += differs
    return [d / c if c else 0.0 for d, c in zip(differing, counts, strict=True)]


def _sample_index(sample: Any) -> int:
    """A beat's R-peak sample as a non-negative int, or ``SignalError``."""
    try:
        index = operator.index(sample)
    except TypeError as exc:
        raise SignalError(f"beat sample must be an integer index, got {sample!r}") from exc
    if index < 0:
        raise SignalError(f"beat sample must be >= 0, got {index}")
    return index


class AfDetector:
    """AF (atrial flutter counted as AF) from the RR-interval series of one stream.

    Feed every beat in sample order with ``push``; it returns the AF onsets and offsets decided
    at that beat. ``Transition.sample`` estimates where the rhythm changed (first beat of the
    irregular run for an onset, of the regular run for an offset); ``decided_at`` is the sample
    of the beat that settled it, typically 10-40 s later. Atrial flutter is found only when its
    conduction varies: flutter with fixed 2:1 block is as regular as sinus tachycardia.
    """

    def __init__(self, fs_hz: float) -> None:
        self._fs_hz = check_fs(fs_hz)
        self._last_sample: int | None = None
        self._last_label = ""
        self._pending: _Interval | None = None  # judged once the next interval is known
        self._run: deque[int] = deque(maxlen=_LAGS)  # compared RRs (samples), oldest first
        self._reference: deque[int] = deque(maxlen=_REFERENCE_INTERVALS)
        self._window: deque[_Evidence] = deque(maxlen=_WINDOW_INTERVALS)
        self._history: deque[_Evidence] = deque(maxlen=_HISTORY_ITEMS)
        self._p_history: deque[tuple[int, float]] = deque(maxlen=_HISTORY_ITEMS)
        self._active = False
        self._last_change = 0

    @property
    def active(self) -> bool:
        """True while the rhythm is judged to be AF."""
        return self._active

    def push(self, sample: int, label: str, p_coherence: float | None = None) -> list[Transition]:
        """Feed one beat: R-peak ``sample`` (index since stream start), AAMI ``label`` N/V/S/Q,
        and for a conducted beat the P-wave coherence of the recent beats
        (``ambulink.signal.atrial``), when known."""
        index = _sample_index(sample)
        if not isinstance(label, str) or label not in _LABELS:
            raise SignalError(f"beat label must be one of N, V, S, Q; got {label!r}")
        previous, previous_label = self._last_sample, self._last_label
        if previous is not None and index <= previous:
            raise SignalError(f"beat samples must increase; got {index} after {previous}")
        self._last_sample, self._last_label = index, label
        if p_coherence is not None:
            if not (isinstance(p_coherence, int | float) and 0.0 <= p_coherence <= 1.0):
                raise SignalError(f"p_coherence must be a number in [0, 1], got {p_coherence!r}")
            if label == "N":
                self._p_history.append((index, float(p_coherence)))
        if previous is None:
            return []
        labels = {previous_label, label}
        interval = _Interval(
            previous, index, labels == {"N"}, not labels <= {"N", "S"}, label != "N"
        )
        pending, self._pending = self._pending, interval
        if pending is not None:
            self._judge(pending, interval)
        return self._decide(index)

    def _judge(self, interval: _Interval, following: _Interval) -> None:
        """Turn ``interval`` into evidence, knowing the ``following`` one (ectopy check)."""
        if interval.breaks_run:
            self._run.clear()
        if interval.ends_ectopic:
            self._history.append(_Evidence(interval.start, interval.end, ()))
        if not interval.conducted:
            return
        rr = interval.end - interval.start
        if self._reference and following.conducted:
            recent = statistics.median(self._reference)
            following_rr = following.end - following.start
            if rr < (1 - _PREMATURE) * recent and following_rr > (1 + _PREMATURE) * recent:
                # an early beat then a pause: ectopic, although labelled N
                self._run.clear()
                self._history.append(_Evidence(interval.start, interval.end, ()))
                self._pending = _Interval(following.start, following.end, False, True, False)
                return
        self._reference.append(rr)
        if len(self._run) >= _MIN_LAGS:
            differs = tuple(
                abs(rr - old) > _DIFFERENT * 0.5 * (rr + old) for old in reversed(self._run)
            )
            evidence = _Evidence(interval.start, interval.end, differs)
            self._window.append(evidence)
            self._history.append(evidence)
        self._run.append(rr)

    def _decide(self, now: int) -> list[Transition]:
        oldest = now - _WINDOW_S * self._fs_hz
        while self._window and self._window[0].end < oldest:
            self._window.popleft()
        if len(self._window) < _MIN_INTERVALS:
            if not self._active:
                return []
            start = self._change_point(to_af=False, lag=0)
        else:
            # only the intervals since the last change judge the new state
            current = [e for e in self._window if e.start >= self._last_change]
            if len(current) < _MIN_INTERVALS:
                return []
            shares = _shares(current)
            share = min(shares)
            recent = [c for _, c in list(self._p_history)[-_P_BEATS:]]
            p_waves = statistics.median(recent) if recent else None
            if self._active:
                p_back = p_waves is not None and p_waves >= _P_PRESENT
                if share > _OFFSET_SHARE and not p_back:
                    return []
            elif share < _ONSET_SHARE or (p_waves is not None and p_waves >= _P_ABSENT):
                return []
            start = self._change_point(to_af=not self._active, lag=shares.index(share))
            start = self._p_wave_bound(start, to_af=not self._active)
        self._active = not self._active
        start = min(max(start, self._last_change), now)
        self._last_change = start
        return [Transition(start, self._active, now)]

    def _p_wave_bound(self, start: int, *, to_af: bool) -> int:
        """Move a change point to agree with the P-wave readings: AF cannot start before the
        beats of the last reading that saw P waves, and P waves that came back end it at the
        first of them.

        A reading covers the last ``SEGMENTS`` beats. With ``k`` of them showing the same P wave
        it is about ``(k / SEGMENTS) ** 2``, so it falls under ``_P_ABSENT`` once about a third of
        them lost their P wave and rises to it once about two thirds have one: the change lies
        that many beats before the crossing.
        """
        readings = list(self._p_history)
        present = [i for i, (_, c) in enumerate(readings) if c >= _P_ABSENT]
        if not present:
            return start
        if to_af:
            return max(start, readings[max(present[-1] - _AF_SHIFT, 0)][0])
        if present[-1] != len(readings) - 1:
            return start
        first = len(readings) - 1
        while first > 0 and readings[first - 1][1] >= _P_ABSENT:
            first -= 1
        return min(start, readings[max(first - _SINUS_SHIFT, 0)][0])

    def _change_point(self, *, to_af: bool, lag: int) -> int:
        """Start of the recent run of the new rhythm: where a CUSUM run backwards peaks.

        Compared intervals add (differs at ``lag``) - ``_CHANGE_LEVEL`` towards AF; ectopic
        beats count as organised rhythm (-``_CHANGE_LEVEL``).
        """
        sign = 1.0 if to_af else -1.0
        best_score, best = 0.0, self._history[-1].end
        score = 0.0
        for item in reversed(self._history):
            if item.end <= self._last_change:
                break
            if not item.differs:
                score -= sign * _CHANGE_LEVEL
            elif lag < len(item.differs):
                score += sign * (item.differs[lag] - _CHANGE_LEVEL)
                if score > best_score:
                    best_score, best = score, item.start
        return best
