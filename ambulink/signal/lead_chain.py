"""Beats of one lead, and which lead's beats count when the analysis lead comes off.

``BeatChain`` runs the QRS detector, the beat classifier and the P-wave coherence on one lead.
The ``Analyzer`` keeps two: on the analysis lead and on a backup (the confirming lead). While
the analysis lead is off (flat, railed or the monitor's lead-off bit) and the backup is on, the
backup's beats carry heart rate and rhythm analysis, so a detached electrode does not blind the
monitor. ``BeatMerger`` joins the two beat streams in sample order: ownership is judged per
quality block, beats are released only once both chains can no longer report an earlier beat
in the time they own, so the merged stream depends on the signal alone, never on chunking.
"""

from __future__ import annotations

import bisect
import dataclasses
import sys
from collections import deque
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ambulink.signal.atrial import AtrialCoherence
from ambulink.signal.beats import BeatClassifier
from ambulink.signal.events import Beat, Transition
from ambulink.signal.qrs import QrsDetector, RPeak

SETTLE_S = 3.0  # a lead back on is trusted after this long (its filters and levels settle)
SAME_BEAT_MS = 200.0  # beats of two leads this close at a switch are one beat (QRS refractory)
BACKUP_IDENT_BASE = 1_000_000  # the backup's QRS shape ids, apart from the analysis lead's
TRUST_WINDOW_S = 30.0  # the backup's beats are counted against the analysis lead's over this
TRUST_LAG_S = 5.0  # ... much time both were on, ending this long before the block judged
MIN_TRUST_BEATS = 10  # fewer analysis-lead beats than this in the window: the judgement stands
MIN_BACKUP_SHARE = 0.75  # the backup must find this share of the analysis lead's beats ...
NEAR_FLOOR = 3.0  # ... when its QRS complexes are small: this share of them under this many
NEAR_FLOOR_SHARE = (
    0.2  # times the detector's floor (a QRS of ~0.17 mV); else it is the analysis lead's noise
)


@dataclass(frozen=True, slots=True)
class ChainBeat:
    """A labelled beat and the band-passed samples before its R peak (for the P-wave measure),
    taken when it was labelled: the merger may hold it back while later beats are labelled."""

    beat: Beat
    preceding: NDArray[np.float64] | None


class BeatChain:
    """QRS detection, beat classification and P-wave coherence of one lead."""

    def __init__(self, fs_hz: float, *, ident_base: int = 0) -> None:
        self.qrs = QrsDetector(fs_hz)
        self.classifier = BeatClassifier(fs_hz, ident_base=ident_base)
        self.atrial = AtrialCoherence(fs_hz)

    def feed(self, lead: NDArray[np.float64]) -> tuple[list[RPeak], list[ChainBeat]]:
        """Add samples (mV); return the R peaks and the labelled beats they complete."""
        self.classifier.feed(lead)
        peaks = self.qrs.feed(lead)
        beats: list[ChainBeat] = []
        for peak in peaks:
            beats.extend(self._with_preceding(self.classifier.add_peak(peak.sample)))
        beats.extend(self._with_preceding(self.classifier.ready_beats()))
        beats.extend(self._with_preceding(self.classifier.expire(self.qrs.horizon)))
        return peaks, beats

    def flush(self) -> tuple[list[RPeak], list[ChainBeat]]:
        peaks = self.qrs.flush()
        beats = [b for p in peaks for b in self._with_preceding(self.classifier.add_peak(p.sample))]
        return peaks, beats + self._with_preceding(self.classifier.flush())

    def _with_preceding(self, beats: list[Beat]) -> list[ChainBeat]:
        return [ChainBeat(b, self.classifier.preceding(b.sample)) for b in beats]

    @property
    def horizon(self) -> int:
        """Every beat before this sample has been returned."""
        pending = self.classifier.oldest_pending
        return self.qrs.horizon if pending is None else min(self.qrs.horizon, pending)

    def coherence(self, beat: ChainBeat, previous: int | None) -> float | None:
        """P-wave coherence after adding conducted ``beat`` (``previous``: the beat before)."""
        return self.atrial.push(beat.beat.sample, previous, beat.preceding)


class BackupTrust:
    """What the backup lead can be trusted with: standing in for the analysis lead, and
    confirming its VF. Both judged over the last ``TRUST_WINDOW_S`` of time both leads were on.

    - **Standing in** (``stands_in``). A lead with a tiny QRS (V1 of many patients) finds a
      fraction of the beats; standing in, it would raise false pauses and asystole. The backup
      stands in while it finds at least ``MIN_BACKUP_SHARE`` of the analysis lead's R peaks
      (judged on at least ``MIN_TRUST_BEATS``). Finding more never counts against it (VF,
      noise, tall T waves; extra beats raise no pause); a noisy analysis lead can count
      against it, which is harmless: the analysis lead is on then.
    - **Confirming VF** (``confirms_vf``). The backup's VF detector must be able to see VF:
      its QRS complexes must not press against the detector's floor (under
      ``NEAR_FLOOR_SHARE`` of them below ``NEAR_FLOOR`` times the floor energy, a QRS of
      ~0.17 mV). This does not depend on the analysis lead, so its noise (motion artefact,
      the case VF confirmation is for) does not take the confirmation away.

    Both start trusted. The judgement for a block uses the time both leads were on up to
    ``TRUST_LAG_S`` before it: a QRS detector reports every R peak less than ~3.4 s after it
    was fed (its searchback), so the counts are final there whatever the chunking, provided
    the chains are fed up to the block's end first.
    """

    def __init__(self, fs_hz: float) -> None:
        self._window = int(round(TRUST_WINDOW_S * fs_hz))
        self._lag = int(round(TRUST_LAG_S * fs_hz))
        # R peaks not counted yet, per lead: (sample, QRS energy in its detector's floors)
        self._peaks: tuple[list[tuple[int, float]], ...] = ([], [])
        self._pending: deque[tuple[int, int]] = deque()  # both-on blocks not counted yet
        self._counted: deque[_TrustBlock] = deque()  # the window's both-on blocks
        self.stands_in = True
        self.confirms_vf = True

    def add(self, chain: int, samples: list[int], sizes: list[float]) -> None:
        """R peaks of chain 0 (analysis lead) or 1 (backup), in order, with ``sizes``: each
        QRS's energy in units of its detector's floor."""
        self._peaks[chain].extend(zip(samples, sizes, strict=True))

    def judge(self, start: int, end: int, *, both_on: bool) -> None:
        """The block ``[start, end)`` (in stream order, both leads on or not): updates
        ``stands_in`` and ``confirms_vf`` for it."""
        if both_on:
            self._pending.append((start, end))
        cutoff = start - self._lag
        while self._pending and self._pending[0][1] <= cutoff:
            lo, hi = self._pending.popleft()
            analysis, backup = (self._take(peaks, lo, hi) for peaks in self._peaks)
            self._counted.append(_TrustBlock(hi - lo, len(analysis), backup))
            while sum(b.length for b in self._counted) - self._counted[0].length >= self._window:
                self._counted.popleft()
            n_analysis = sum(b.analysis_beats for b in self._counted)
            sizes = [size for b in self._counted for size in b.backup_sizes]
            if n_analysis >= MIN_TRUST_BEATS:
                self.stands_in = len(sizes) >= MIN_BACKUP_SHARE * n_analysis
            if len(sizes) >= MIN_TRUST_BEATS:
                near = sum(size < NEAR_FLOOR for size in sizes)
                self.confirms_vf = near < NEAR_FLOOR_SHARE * len(sizes)
        keep_from = min(cutoff, self._pending[0][0]) if self._pending else cutoff
        for peaks in self._peaks:
            del peaks[: bisect.bisect_left(peaks, keep_from, key=lambda p: p[0])]

    @staticmethod
    def _take(peaks: list[tuple[int, float]], lo: int, hi: int) -> list[float]:
        """Sizes of the peaks in ``[lo, hi)``."""
        first = bisect.bisect_left(peaks, lo, key=lambda p: p[0])
        last = bisect.bisect_left(peaks, hi, key=lambda p: p[0])
        return [size for _, size in peaks[first:last]]


@dataclass(frozen=True, slots=True)
class _TrustBlock:
    """One both-on quality block as ``BackupTrust`` counted it."""

    length: int  # samples
    analysis_beats: int
    backup_sizes: list[float]  # the backup's R peaks, in energy floors


class BeatMerger:
    """Joins the analysis lead's beats (chain 0) and the backup's (chain 1) in sample order.

    ``judge`` is told, block by block, which of the two leads is off: chain 1 owns a block when
    the analysis lead is off, or came back on less than ``SETTLE_S`` ago, and the backup is on;
    chain 0 owns the rest. ``release`` hands out the owned beats that no chain can precede any
    more.
    """

    def __init__(self, fs_hz: float) -> None:
        self._fs_hz = fs_hz
        self._same_beat = int(round(SAME_BEAT_MS * fs_hz / 1000.0))
        self._settle = int(round(SETTLE_S * fs_hz))
        self._spans: list[tuple[int, int]] = []  # backup-owned [start, end), sorted, merged
        self._judged = 0  # ownership known up to here
        self._was_off = False  # the analysis lead was off in the last block
        self._back_on: int | None = None  # ... and came back on here
        self._held: list[tuple[int, int, ChainBeat]] = []  # (sample, chain, beat)
        self._released = 0  # every beat before this has been released or dropped
        self._last: int | None = None  # sample of the last released beat
        self._last_chain = 0  # ... and its chain

    def judge(self, start: int, end: int, *, analysis_off: bool, backup_off: bool) -> bool:
        """The quality of the block ``[start, end)`` (blocks come in stream order); returns
        whether the backup owns it."""
        if analysis_off:
            self._back_on = None
        elif self._back_on is None and self._judged > 0 and self._was_off:
            self._back_on = start
        self._was_off = analysis_off
        settling = self._back_on is not None and start - self._back_on < self._settle
        backup = (analysis_off or settling) and not backup_off
        if backup:
            if self._spans and self._spans[-1][1] == start:
                self._spans[-1] = (self._spans[-1][0], end)
            else:
                self._spans.append((start, end))
        self._judged = end
        return backup

    @property
    def judged(self) -> int:
        """Block quality, and so ownership, is known up to this sample."""
        return self._judged

    def add(self, chain: int, beats: list[ChainBeat]) -> None:
        self._held.extend((b.beat.sample, chain, b) for b in beats)

    def owner(self, sample: int) -> int:
        i = bisect.bisect_right(self._spans, (sample, np.iinfo(np.int64).max)) - 1
        return 1 if i >= 0 and self._spans[i][0] <= sample < self._spans[i][1] else 0

    def release(
        self, horizons: tuple[int, int | None], final: bool = False
    ) -> list[tuple[int, ChainBeat]]:
        """(chain, beat) of the owned beats, in order, up to where ownership or a chain's beats
        are not known yet; ``horizons`` are the chains' (None: no backup)."""
        limit = sys.maxsize if final else self._judged
        if not final:
            for chain, horizon in enumerate(horizons):
                if horizon is not None:
                    limit = min(limit, self._next_owned(chain, max(horizon, self._released)))
        self._held.sort(key=lambda item: (item[0], item[1]))
        out: list[tuple[int, ChainBeat]] = []
        keep: list[tuple[int, int, ChainBeat]] = []
        for sample, chain, beat in self._held:
            if sample >= limit:
                keep.append((sample, chain, beat))
                continue
            if sample < self._released or self.owner(sample) != chain:
                continue  # not this chain's span, or came after later beats were released
            last = self._last
            if chain != self._last_chain and last is not None and sample - last < self._same_beat:
                continue  # the other lead's view of the beat just released
            relabelled = dataclasses.replace(beat.beat, rr_ms=self._rr_ms(beat.beat))
            out.append((chain, dataclasses.replace(beat, beat=relabelled)))
            self._last, self._last_chain = sample, chain
        self._held = keep
        self._released = max(self._released, min(limit, self._judged))
        while self._spans and self._spans[0][1] <= self._released:
            self._spans.pop(0)
        return out

    def _rr_ms(self, beat: Beat) -> float | None:
        """The interval from the last released beat, whichever lead it came from."""
        if self._last is None:
            return beat.rr_ms
        return (beat.sample - self._last) * 1000.0 / self._fs_hz

    def _next_owned(self, chain: int, sample: int) -> int:
        """The first sample at or after ``sample`` that ``chain`` owns (ownership known up to
        the judged limit; beyond it, the limit)."""
        if self.owner(sample) == chain:
            return sample
        for start, end in self._spans:
            if chain == 1 and start > sample:
                return min(start, self._judged)
            if chain == 0 and start <= sample < end:
                return min(end, self._judged)
        return self._judged


class VfVote:
    """VF/VFL from the analysis lead's detector (chain 0) and the backup lead's (chain 1).

    - While the analysis lead owns the stream and the backup lead is on and able to see VF
      (``confirm``; ``BackupTrust.confirms_vf``), VF starts only when both detectors see it,
      and goes on while either does. Motion artefact (1-10 Hz, the band of VF) on one
      electrode looks like VF to that lead's detector; true VF is in every lead.
    - Without such a backup, the analysis lead's detector decides alone.
    - While the backup owns the stream (analysis lead off), the backup's VF counts once it is
      active then, and keeps counting until its own offset, so a returning analysis lead does
      not split an ongoing VF while its detector gathers its windows.

    Feed ownership and confirmation changes and both detectors' transitions in the order of
    the sample at which each became known (``Analyzer`` sorts them), and the output depends on
    the signal alone.
    """

    def __init__(self) -> None:
        self._active = [False, False]  # each detector's own state
        self._onsets = [0, 0]  # ... and the onset of its current VF
        self._backup_counts = False
        self._backup_owns = False
        self._confirming = False
        self._on = False

    def owner(self, change: Transition) -> list[Transition]:
        """Ownership is the backup's (``change.active``) from the block that starts at
        ``change.sample`` and ended at ``change.decided_at``."""
        self._backup_owns = change.active
        if change.active and self._active[1]:
            self._backup_counts = True
        return self._update(self._onsets[1], change.sample, change.decided_at)

    def confirm(self, change: Transition) -> list[Transition]:
        """From the block at ``change.sample`` (ended at ``change.decided_at``), the backup
        lead can (``change.active``) or cannot confirm the analysis lead's VF."""
        self._confirming = change.active
        return self._update(self._onsets[0], change.sample, change.decided_at)

    def transition(self, chain: int, t: Transition) -> list[Transition]:
        """A transition of chain ``chain``'s VF detector."""
        self._active[chain] = t.active
        if t.active:
            self._onsets[chain] = t.sample
        if chain == 1:
            self._backup_counts = t.active and self._backup_owns
        return self._update(t.sample, t.sample, t.decided_at)

    def _update(self, onset: int, offset: int, decided_at: int) -> list[Transition]:
        """VF turned on (at ``onset``) or off (at ``offset``) with the last input; an onset
        that needed both leads is the later of their onsets."""
        analysis, backup = self._active
        if self._on:
            now = analysis or self._backup_counts or (self._confirming and backup)
        elif self._confirming and not self._backup_owns:
            now = analysis and backup
            onset = max(self._onsets)
        else:
            now = analysis or self._backup_counts
        if now == self._on:
            return []
        self._on = now
        return [Transition(onset if now else offset, now, decided_at)]
