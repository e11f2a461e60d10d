"""The per-stream ``Analyzer``: every detector of ``ambulink.signal`` behind one ``feed``.

Fed (n_samples, n_leads) chunks of a stream (int16 with ``gain``, or float mV) and, optionally,
the monitor's lead-off bits; returns typed events: beats, heart rate, rhythm episode starts and
ends (each start with a 10 s evidence window), lead off/on, signal-quality changes and the
lead beats and rhythm come from when it changes.

Quality and lead-off are judged on every lead. Beats and rhythm run on one analysis lead,
chosen by name (II, then MLII, I, V5, ...) or given; while it is off, on a backup lead (the
confirming lead, see ``ambulink.signal.lead_chain``), which also has a say on VF then.
Feeding a stream in any chunk sizes yields the same events: within one call they are sorted by
``event_order``; a different chunking may return an event in a later call, never a different
event.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ambulink.errors import SignalError
from ambulink.signal.af import AfDetector
from ambulink.signal.events import (
    AnalysisLeadEvent,
    AnalyzerEvent,
    Beat,
    BeatEvent,
    EpisodeEnd,
    EpisodeStart,
    LeadOffEvent,
    QualityEvent,
    RhythmLabel,
    Transition,
    event_order,
)
from ambulink.signal.hr import HeartRateMeter, RRStats
from ambulink.signal.lead_chain import (
    BACKUP_IDENT_BASE,
    BackupTrust,
    BeatChain,
    BeatMerger,
    ChainBeat,
    VfVote,
)
from ambulink.signal.qrs import RPeak
from ambulink.signal.quality import BlockQuality, StreamQuality
from ambulink.signal.rhythm import (
    GapMonitor,
    RateMonitor,
    RhythmConfig,
    VtMonitor,
    _Episodes,
)
from ambulink.signal.st import StemiEvent, StMonitor
from ambulink.signal.validation import check_fs, to_millivolts
from ambulink.signal.vf import VfDetector

PROCESS_BLOCK_S = 0.4  # internal processing granularity (adds at most this much latency)
STANDARD_12 = frozenset(("I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"))
MIN_ST_LEADS = 8  # ST/STEMI watch runs on streams with at least this many standard leads
StreamEvent = AnalyzerEvent | StemiEvent


def stream_event_order(event: StreamEvent) -> tuple[int, int, str]:
    """``event_order`` extended to the STEMI watch's events (after rhythm events)."""
    if event.kind in ("stemi_suspected", "stemi_cleared"):
        return (int(getattr(event, "sample", 0)), 9, event.kind)
    return event_order(event)  # type: ignore[arg-type]


PREFERRED_LEADS = ("II", "MLII", "ML2", "I", "V5", "V2", "V1", "ECG")


def choose_analysis_lead(leads: Sequence[str]) -> int:
    """Index of the lead rhythm analysis runs on: the first preferred name present, else 0."""
    upper = [name.strip().upper() for name in leads]
    for name in PREFERRED_LEADS:
        if name in upper:
            return upper.index(name)
    return 0


def choose_confirming_lead(leads: Sequence[str], analysis_lead: int) -> int | None:
    """A second lead whose beats confirm pauses and asystole: the next preferred name present,
    else any other lead; None for a one-lead stream."""
    upper = [name.strip().upper() for name in leads]
    for name in ("V5", "V2", "V1", "I", "II", "MLII", "III", "V4", "V6"):
        if name in upper and upper.index(name) != analysis_lead:
            return upper.index(name)
    others = [i for i in range(len(leads)) if i != analysis_lead]
    return others[0] if others else None


def _band(sqi: float) -> str:
    return "good" if sqi >= 0.7 else "fair" if sqi >= 0.4 else "poor"


class _LeadState:
    """Quality tracking of one lead, with hardware lead-off spans merged in."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.hardware_off: deque[tuple[int, int]] = deque()
        self.off: bool | None = None
        self.band: str | None = None

    def judge(self, block: BlockQuality) -> tuple[bool, list[AnalyzerEvent]]:
        while self.hardware_off and self.hardware_off[0][1] <= block.start:
            self.hardware_off.popleft()
        hw = any(a < block.end and block.start < b for a, b in self.hardware_off)
        off = block.off or hw
        events: list[AnalyzerEvent] = []
        if off != self.off:
            if self.off is not None or off:
                events.append(LeadOffEvent(self.name, block.start, off))
            self.off = off
        if not off:
            band = _band(block.sqi)
            if band != self.band:
                events.append(QualityEvent(self.name, block.start, block.sqi, band))  # type: ignore[arg-type]
                self.band = band
        else:
            self.band = None
        return off, events


class Analyzer:
    """Streaming analysis of one ECG stream (see the module docstring)."""

    def __init__(
        self,
        fs_hz: float,
        leads: Sequence[str],
        *,
        gain: float | None = None,
        analysis_lead: int | None = None,
        rhythm: RhythmConfig | None = None,
    ) -> None:
        self.fs_hz = check_fs(fs_hz)
        if not leads:
            raise SignalError("an ECG stream needs at least one lead name")
        self.leads = [str(name) for name in leads]
        self._gain = gain
        index = choose_analysis_lead(self.leads) if analysis_lead is None else analysis_lead
        if not 0 <= index < len(self.leads):
            raise SignalError(f"analysis_lead must be 0-{len(self.leads) - 1}, got {analysis_lead}")
        self.analysis_lead = index
        fs = self.fs_hz
        self._lead_states = [_LeadState(name) for name in self.leads]
        self._quality = StreamQuality(fs, len(self.leads))
        self._block = max(int(round(PROCESS_BLOCK_S * fs)), 1)
        self._held: list[NDArray[np.float64]] = []
        self._n_held = 0
        self._af = AfDetector(fs)
        self._last_beat: int | None = None
        self._hr = HeartRateMeter(fs)
        self._gaps = GapMonitor(fs, rhythm)
        self._rate = RateMonitor(fs, rhythm)
        self._vt = VtMonitor(fs, rhythm)
        standard = [name.strip().upper() for name in self.leads]
        self._st = (
            StMonitor(fs, self.leads)
            if len(STANDARD_12.intersection(standard)) >= MIN_ST_LEADS
            else None
        )
        self._waveform_episodes = _Episodes(fs)  # VF and AF
        # Pauses and asystole need silence on the analysis lead and on a confirming lead, so
        # one noisy or detached electrode does not raise them.
        # The confirming lead is also the backup that carries beats while the analysis lead is
        # off.
        self.confirming_lead = choose_confirming_lead(self.leads, index)
        self._chain_leads = (
            [index] if self.confirming_lead is None else [index, self.confirming_lead]
        )
        self._chains = [
            BeatChain(fs, ident_base=BACKUP_IDENT_BASE * i) for i in range(len(self._chain_leads))
        ]
        self._merger = BeatMerger(fs)
        self._trust = BackupTrust(fs)
        self._vf = [VfDetector(fs) for _ in self._chains]  # analysis lead, backup
        self._vf_vote = VfVote()
        self._backup_owns = False
        self._confirming = False  # the backup lead can confirm the analysis lead's VF
        self._gap_peaks: list[int] = []
        self._fed = 0
        self._finished = False

    @property
    def samples_fed(self) -> int:
        return self._fed

    def rr_stats(self) -> RRStats | None:
        """Statistics of the recent RR intervals of the analysis lead."""
        return self._hr.stats()

    def feed(self, samples: Any, lead_off: Sequence[bool] | None = None) -> list[StreamEvent]:
        """Add a chunk (n_samples, n_leads); ``lead_off`` gives the monitor's bits per lead."""
        if self._finished:
            raise SignalError("this stream was flushed; start a new Analyzer")
        x = to_millivolts(samples, n_leads=len(self.leads), gain=self._gain)
        if x.shape[0] == 0:
            return []
        start, self._fed = self._fed, self._fed + x.shape[0]
        if lead_off is not None:
            if len(lead_off) != len(self.leads):
                raise SignalError(f"lead_off needs {len(self.leads)} flags, got {len(lead_off)}")
            for state, off in zip(self._lead_states, lead_off, strict=True):
                if off:
                    state.hardware_off.append((start, self._fed))
        # Work in whole blocks of PROCESS_BLOCK_S: results depend on the signal only, and a
        # stream sent in 20 ms frames costs little more than one sent in seconds.
        self._held.append(x)
        self._n_held += x.shape[0]
        if self._n_held < self._block:
            return []
        held = np.concatenate(self._held)
        cut = (held.shape[0] // self._block) * self._block
        self._held, self._n_held = [held[cut:]], held.shape[0] - cut
        return self._process(held[:cut])

    def _process(self, x: NDArray[np.float64]) -> list[StreamEvent]:
        events: list[AnalyzerEvent] = []
        # confirmation (chain -2) and ownership (-1) changes and VF transitions, keyed by the
        # sample that made them known: within one call they are handled in that order,
        # whatever the chunking
        vf_news: list[tuple[int, int, Transition]] = []
        # The chains first: the backup's trust is judged on R peaks up to the blocks' ends.
        for i, (chain, lead) in enumerate(zip(self._chains, self._chain_leads, strict=True)):
            self._add_beats(i, *chain.feed(np.ascontiguousarray(x[:, lead])))
        analysis, confirming = self.analysis_lead, self.confirming_lead
        for blocks in self._quality.feed(x):
            off = [False] * len(self.leads)
            for i, (state, block) in enumerate(zip(self._lead_states, blocks, strict=True)):
                off[i], changes = state.judge(block)
                events.extend(changes)
            start, end = blocks[0].start, blocks[0].end
            both_on = confirming is not None and not off[analysis] and not off[confirming]
            self._trust.judge(start, end, both_on=both_on)
            backup_off = confirming is None or off[confirming]
            stand_in = not backup_off and self._trust.stands_in
            if off[analysis] and not stand_in:
                self._gaps.lead_off(start, end)  # no lead to see a pause or asystole on
            backup = self._merger.judge(
                start, end, analysis_off=off[analysis], backup_off=not stand_in
            )
            can_confirm = not off[analysis] and not backup_off and self._trust.confirms_vf
            if can_confirm != self._confirming:
                self._confirming = can_confirm
                vf_news.append((end, -2, Transition(start, can_confirm, end)))
            if backup != self._backup_owns:
                self._backup_owns = backup
                vf_news.append((end, -1, Transition(start, backup, end)))
                lead = self._chain_leads[1 if backup else 0]
                events.append(AnalysisLeadEvent(self.leads[lead], start, backup))
        events.extend(self._release_beats(final=False))
        events.extend(self._advance_gaps(final=False))
        for source, (vf, lead) in enumerate(zip(self._vf, self._chain_leads, strict=True)):
            for t in vf.feed(np.ascontiguousarray(x[:, lead])):
                vf_news.append((t.decided_at + 1, source, t))  # known once decided_at is fed
        events.extend(self._vote_vf(vf_news))
        out: list[StreamEvent] = list(events)
        if self._st is not None:
            out.extend(self._st.feed(x))
        return sorted(out, key=stream_event_order)

    def flush(self) -> list[StreamEvent]:
        """End of stream: decide what is pending and close open episodes at the last sample."""
        if self._finished:
            return []
        self._finished = True
        events: list[StreamEvent] = []
        if self._n_held:
            events.extend(self._process(np.concatenate(self._held)))
            self._held, self._n_held = [], 0
        for i, chain in enumerate(self._chains):
            self._add_beats(i, *chain.flush())
        events.extend(self._release_beats(final=True))
        events.extend(self._advance_gaps(final=True))
        end = self._fed
        events.extend(self._gaps.finish(end))
        events.extend(self._rate.finish(end))
        events.extend(self._vt.finish(end))
        events.extend(self._waveform_episodes.close_all(end))
        return sorted(events, key=stream_event_order)

    # -- internals ------------------------------------------------------------------------

    def _add_beats(self, chain: int, peaks: list[RPeak], beats: list[ChainBeat]) -> None:
        samples = [peak.sample for peak in peaks]
        self._gap_peaks.extend(samples)  # pauses need silence on both leads, beats or not
        floor = self._chains[chain].qrs.energy_floor
        self._trust.add(chain, samples, [peak.energy / floor for peak in peaks])
        self._merger.add(chain, beats)

    def _release_beats(self, final: bool) -> list[AnalyzerEvent]:
        horizons = (
            self._chains[0].horizon,
            self._chains[1].horizon if len(self._chains) > 1 else None,
        )
        out: list[AnalyzerEvent] = []
        for chain, beat in self._merger.release(horizons, final=final):
            out.extend(self._on_beat(beat, self._chains[chain]))
        return out

    def _advance_gaps(self, final: bool) -> list[AnalyzerEvent]:
        # Gap decisions wait until every R peak before them is known on both gap leads and
        # their quality is judged, so they come out the same whatever the chunking.
        known = self._fed
        if not final:
            known = min([self._merger.judged, *(chain.qrs.horizon for chain in self._chains)])
        self._gap_peaks.sort()
        due = [p for p in self._gap_peaks if p < known or final]
        self._gap_peaks = self._gap_peaks[len(due) :]
        out: list[AnalyzerEvent] = []
        for peak in due:
            out.extend(self._gaps.on_peak(peak))
        out.extend(self._gaps.advance(known))
        return out

    def _on_beat(self, chain_beat: ChainBeat, chain: BeatChain) -> list[AnalyzerEvent]:
        beat = chain_beat.beat
        out: list[AnalyzerEvent] = [BeatEvent(beat)]
        rate = self._hr.on_beat(beat.sample)
        if rate is not None:
            out.append(rate)
        out.extend(self._rate.on_beat(beat.sample))
        out.extend(self._vt.on_beat(beat))
        # Beats of a running VT are ventricular whatever the classifier now calls them; their
        # irregularity must not read as AF.
        label = "V" if self._vt.active else beat.label
        coherence = None
        if label == "N":
            coherence = chain.coherence(chain_beat, self._last_beat)
        self._last_beat = beat.sample
        for transition in self._af.push(beat.sample, label, coherence):
            out.extend(self._waveform_change("AF", transition))
        return out

    def _vote_vf(self, news: list[tuple[int, int, Transition]]) -> list[AnalyzerEvent]:
        out: list[AnalyzerEvent] = []
        for _, chain, t in sorted(news, key=lambda n: (n[0], n[1])):
            if chain == -2:
                votes = self._vf_vote.confirm(t)
            elif chain == -1:
                votes = self._vf_vote.owner(t)
            else:
                votes = self._vf_vote.transition(chain, t)
            for vote in votes:
                out.extend(self._waveform_change("VF", vote))
        return out

    def _waveform_change(
        self, label: RhythmLabel, t: Transition
    ) -> list[EpisodeStart] | list[EpisodeEnd]:
        if t.active:
            return self._waveform_episodes.start(label, t.sample, t.decided_at)
        return self._waveform_episodes.end(label, t.sample, t.decided_at)


def analyze_record(record: NDArray[np.float64], fs_hz: float) -> list[StreamEvent]:
    """Every event of a whole record (mV, (n_samples, n_leads)) through one ``Analyzer``.

    The batch entry points' multi-lead form: the columns are named ECG1, ECG2, ..., so the
    first is the analysis lead and the second confirms pauses, asystole and VF and stands in
    while the first is off.
    """
    analyzer = Analyzer(fs_hz, [f"ECG{i + 1}" for i in range(record.shape[1])])
    return analyzer.feed(record) + analyzer.flush()


def record_beats(record: NDArray[np.float64], fs_hz: float) -> list[Beat]:
    """The beats an ``Analyzer`` reports for a whole record (the first lead's, and the second's
    while the first is off): the multi-lead form of ``qrs.detect`` and ``beats.classify``."""
    return [e.beat for e in analyze_record(record, fs_hz) if isinstance(e, BeatEvent)]
