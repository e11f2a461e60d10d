import dataclasses
import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ambulink.evaluation.matching import match_beats, tolerance_samples
from ambulink.signal.analyzer import Analyzer
from ambulink.signal.beats import BeatClassifier
from ambulink.signal.events import (
    AnalysisLeadEvent,
    Beat,
    BeatEvent,
    EpisodeEnd,
    EpisodeStart,
    LeadOffEvent,
    Transition,
    event_order,
)
from ambulink.signal.lead_chain import BackupTrust, BeatMerger, ChainBeat, VfVote
from ambulink.signal.qrs import QrsDetector
from tests.conftest import Record, bundled, shared
from tests.signal.chunking import chunks
from tests.signal.interference import motion_artefact

FLAT_MV = 0.4  # a detached electrode: the amplifier holds a constant level


def detach(record: Record, lead: int, t0: float, t1: float) -> np.ndarray:
    signals = record.signals_mv.copy()
    signals[int(t0 * record.fs) : int(t1 * record.fs), lead] = FLAT_MV
    return signals


def beats_in(events: list, record: Record, t0: float, t1: float) -> tuple[float, float, int]:
    """Share of the reference beats in [t0, t1) s found, and of the V beats labelled V."""
    ref = record.reference()
    lo, hi = int(t0 * record.fs), int(t1 * record.fs)
    beats = [e.beat for e in events if isinstance(e, BeatEvent) and lo <= e.beat.sample < hi]
    in_span = (ref.beat_sample >= lo) & (ref.beat_sample < hi)
    samples = ref.beat_sample[in_span]
    classes = [c for c, inside in zip(ref.beat_class, in_span, strict=True) if inside]
    match = match_beats(samples, [b.sample for b in beats], tolerance_samples(record.fs))
    found = len(match.ref_index) / len(samples)
    v_ref = sum(c == "V" for c in classes)
    v_hit = sum(
        classes[r] == "V" and beats[d].label == "V"
        for r, d in zip(match.ref_index, match.det_index, strict=True)
    )
    return found, v_hit / max(v_ref, 1), v_ref


def run(analyzer: Analyzer, signals: np.ndarray, sizes: list[int] | None = None) -> list:
    parts = [signals] if sizes is None else list(chunks(signals, sizes))
    return [e for part in parts for e in analyzer.feed(part)] + analyzer.flush()


def test_beats_go_on_from_the_backup_lead_while_the_analysis_lead_is_off() -> None:
    # mitdb 119: ventricular bigeminy; MLII detached for 5 minutes, V1 carries the beats
    record = bundled("mitdb/119")
    signals = detach(record, 0, 100.0, 400.0)
    analyzer = Analyzer(record.fs, record.leads)
    assert (analyzer.analysis_lead, analyzer.confirming_lead) == (0, 1)
    events = run(analyzer, signals)
    assert [(e.lead, e.off) for e in events if isinstance(e, LeadOffEvent)] == [
        ("MLII", True),
        ("MLII", False),
    ]
    moves = [(e.lead, e.backup, e.sample) for e in events if isinstance(e, AnalysisLeadEvent)]
    # V1 takes over with the first block judged off, MLII is back 3 s after it is on again
    assert [(lead, backup) for lead, backup, _ in moves] == [("V1", True), ("MLII", False)]
    assert abs(moves[0][2] - 100 * record.fs) <= record.fs
    assert abs(moves[1][2] - 403 * record.fs) <= record.fs
    found, v_found, n_v = beats_in(events, record, 102.0, 398.0)
    assert n_v > 70
    assert found >= 0.99, f"{found:.3f} of the beats found while MLII was off"
    assert v_found >= 0.95, f"{v_found:.3f} of the PVCs labelled V while MLII was off"
    # one beat stream: strictly increasing, no beat twice across the switches
    samples = [e.beat.sample for e in events if isinstance(e, BeatEvent)]
    assert all(b - a >= 0.2 * record.fs for a, b in itertools.pairwise(samples))
    # nothing is lost at the hand-over and hand-back
    found_all, _, _ = beats_in(events, record, 30.0, 500.0)
    assert found_all >= 0.99
    labels = {e.label for e in events if isinstance(e, EpisodeStart)}
    assert not labels & {"ASYSTOLE", "PAUSE", "BRADY"}


def test_without_a_backup_lead_the_detached_span_has_no_beats() -> None:
    record = bundled("mitdb/119")
    signals = detach(record, 0, 400.0, 700.0)[:, :1]
    events = run(Analyzer(record.fs, record.leads[:1]), signals)
    found, _, _ = beats_in(events, record, 402.0, 698.0)
    assert found < 0.01  # the hand-over above is what finds them


def test_the_monitor_lead_off_bit_hands_over_too() -> None:
    record = bundled("mitdb/100")
    signals = record.signals_mv[: int(120 * record.fs)].copy()
    rng = np.random.default_rng(5)
    lo, hi = int(40 * record.fs), int(80 * record.fs)
    signals[lo:hi, 0] = rng.normal(0.0, 0.5, hi - lo)  # a loose electrode: noise, not ECG
    analyzer = Analyzer(record.fs, record.leads)
    events: list = []
    step = int(record.fs // 10)
    for start in range(0, len(signals), step):
        part = signals[start : start + step]
        off = lo <= start < hi
        events.extend(analyzer.feed(part, lead_off=[off, False]))
    events.extend(analyzer.flush())
    found, _, _ = beats_in(events, record, 41.0, 79.0)
    assert found >= 0.99
    beats = [e.beat for e in events if isinstance(e, BeatEvent) and lo <= e.beat.sample < hi]
    assert all(b.label != "Q" for b in beats[10:])


@settings(max_examples=5)
@given(sizes=st.lists(st.integers(min_value=1, max_value=5000), min_size=1, max_size=20))
def test_hand_over_does_not_depend_on_chunk_sizes(sizes: list[int]) -> None:
    record = bundled("mitdb/119")
    signals = detach(record, 0, 60.0, 95.5)[: int(150 * record.fs)]
    whole = run(Analyzer(record.fs, record.leads), signals)
    chunked = run(Analyzer(record.fs, record.leads), signals, sizes)
    assert sorted(chunked, key=event_order) == sorted(whole, key=event_order)


@settings(max_examples=3)
@given(sizes=st.lists(st.integers(min_value=1, max_value=6000), min_size=1, max_size=20))
def test_a_backup_lead_that_misses_beats_does_not_stand_in(sizes: list[int]) -> None:
    # mitdb 101: V1's QRS is ~0.15 mV, under the detector's floor for most beats; with MLII
    # detached, standing in it gave pauses and asystole on a patient in sinus rhythm
    record = shared("mitdb/101")
    lo = int(540 * record.fs)
    signals = detach(record, 0, 600.0, 700.0)[lo : int(760 * record.fs)]
    whole = run(Analyzer(record.fs, record.leads), signals)
    assert [(e.lead, e.off) for e in whole if isinstance(e, LeadOffEvent)] == [
        ("MLII", True),
        ("MLII", False),
    ]
    assert not [e for e in whole if isinstance(e, AnalysisLeadEvent)]
    assert not [e.label for e in whole if isinstance(e, EpisodeStart)]
    beats = [e.beat.sample + lo for e in whole if isinstance(e, BeatEvent)]
    assert not [b for b in beats if 600 * record.fs <= b < 700 * record.fs]
    # with MLII on, both before and after, every beat is there
    found_before, _, _ = beats_in(
        [
            BeatEvent(dataclasses.replace(e.beat, sample=e.beat.sample + lo))
            for e in whole
            if isinstance(e, BeatEvent)
        ],
        record,
        545.0,
        598.0,
    )
    assert found_before >= 0.99
    chunked = run(Analyzer(record.fs, record.leads), signals, sizes)
    assert sorted(chunked, key=event_order) == sorted(whole, key=event_order)


def trust_after(
    analysis: list[int], backup: list[int], blocks: int, off_from: int, size: float = 50.0
) -> list[tuple[bool, bool]]:
    """(stands_in, confirms_vf) of a BackupTrust fed 1 s blocks at 100 Hz, the analysis lead
    off from block ``off_from``; every backup QRS ``size`` times its detector's floor."""
    trust = BackupTrust(100.0)
    seen = [p for p in analysis if p < 100 * off_from]
    trust.add(0, seen, [50.0] * len(seen))
    trust.add(1, backup, [size] * len(backup))
    judged = []
    for i in range(blocks):
        trust.judge(100 * i, 100 * (i + 1), both_on=i < off_from)
        judged.append((trust.stands_in, trust.confirms_vf))
    return judged


def test_a_backup_finding_most_beats_stands_in_extra_beats_or_not() -> None:
    analysis = list(range(50, 6000, 100))  # one beat a second for 60 s
    missing_few = [p + 3 for p in analysis if p % 1000 != 50]  # nine in ten
    doubled = sorted([p + 3 for p in analysis] + [p + 40 for p in analysis])
    for backup in (missing_few, doubled):
        assert all(stands for stands, _ in trust_after(analysis, backup, 60, off_from=40))


def test_a_backup_missing_beats_does_not_stand_in_after_the_lag() -> None:
    analysis = list(range(50, 6000, 100))
    half = [p + 3 for p in analysis if p % 200 == 50]  # every other beat
    stands = [s for s, _ in trust_after(analysis, half, 60, off_from=40)]
    # the first block is counted once TRUST_LAG_S (5 s) has passed, and from ten beats on
    assert stands[:15] == [True] * 15
    assert stands[15:] == [False] * 45  # also while the analysis lead is off: no new counts
    assert trust_after(analysis, half, 60, off_from=9)[-1][0]  # too few beats seen to judge


def test_a_backup_with_small_qrs_complexes_cannot_confirm_vf() -> None:
    analysis = list(range(50, 6000, 100))
    backup = [p + 3 for p in analysis]
    assert all(confirms for _, confirms in trust_after(analysis, backup, 60, off_from=40))
    small = [c for _, c in trust_after(analysis, backup, 60, off_from=40, size=2.0)]
    assert small[:15] == [True] * 15 and small[15:] == [False] * 45


def test_expired_beats_get_the_label_the_next_beat_would_give() -> None:
    # the last beat before a pause is labelled once the pause is long enough to count in full
    # (2 normal RRs), not when the next beat comes; the label must be the same
    record = bundled("mitdb/201")
    lead = record.lead(0)
    fs = record.fs

    def labels(expire: bool) -> tuple[list[Beat], int]:
        qrs, classifier = QrsDetector(fs), BeatClassifier(fs)
        out: list[Beat] = []
        expired = 0
        for part in chunks(lead, [int(fs // 4)]):
            classifier.feed(part)
            for peak in qrs.feed(part):
                out.extend(classifier.add_peak(peak.sample))
            out.extend(classifier.ready_beats())
            if expire:
                early = classifier.expire(qrs.horizon)
                expired += len(early)
                out.extend(early)
        out.extend(b for p in qrs.flush() for b in classifier.add_peak(p.sample))
        return out + classifier.flush(), expired

    waited, _ = labels(expire=False)
    early, expired = labels(expire=True)
    assert expired >= 3  # 201 has pauses of 2-3 s
    assert early == waited


def beat(sample: int, label: str = "N") -> ChainBeat:
    return ChainBeat(Beat(sample, label, 800.0, 80.0, 1), None)  # type: ignore[arg-type]


def test_merger_waits_for_the_backup_to_settle_after_the_lead_comes_back() -> None:
    merger = BeatMerger(100.0)  # blocks of 100 samples = 1 s
    off = [False, True, True, False, False, False, False, False]
    for i, analysis_off in enumerate(off):
        merger.judge(100 * i, 100 * (i + 1), analysis_off=analysis_off, backup_off=False)
    merger.add(0, [beat(s) for s in (50, 150, 350, 450, 560, 650, 750)])
    merger.add(1, [beat(s + 5) for s in (50, 150, 250, 350, 450, 560, 650, 750)])
    released = merger.release((800, 800))
    # the backup owns the two off blocks and the SETTLE_S (3 s) after the lead came back
    assert [(chain, b.beat.sample) for chain, b in released] == [
        (0, 50),
        (1, 155),
        (1, 255),
        (1, 355),
        (1, 455),
        (1, 565),
        (0, 650),
        (0, 750),
    ]
    assert [b.beat.rr_ms for _, b in released[1:]] == [
        1050.0,
        1000.0,
        1000.0,
        1000.0,
        1100.0,
        850.0,
        1000.0,
    ]


def test_merger_holds_beats_a_chain_may_still_precede() -> None:
    merger = BeatMerger(100.0)
    merger.judge(0, 100, analysis_off=False, backup_off=False)
    merger.judge(100, 200, analysis_off=True, backup_off=False)
    merger.add(0, [beat(40)])
    merger.add(1, [beat(160)])
    # the backup could still report a beat at 100-159: only the analysis lead's beat is out
    assert [b.beat.sample for _, b in merger.release((100, 120))] == [40]
    assert [b.beat.sample for _, b in merger.release((100, 200))] == [160]


def vf_episodes(events: list) -> list[tuple[int, int]]:
    return [(e.start, e.end) for e in events if isinstance(e, EpisodeEnd) and e.label == "VF"]


def test_vf_is_raised_from_the_backup_lead_while_the_analysis_lead_is_off() -> None:
    record = bundled("vfdb/418")
    onset = min(e.start for e in record.reference().episodes if e.label == "VF")
    lo = onset - int(60 * record.fs)
    signals = record.signals_mv[lo : onset + int(30 * record.fs)].copy()
    signals[:, 0] = FLAT_MV  # the first ECG lead detached throughout
    events = run(Analyzer(record.fs, record.leads), signals)
    starts = [e for e in events if isinstance(e, EpisodeStart) and e.label == "VF"]
    assert starts, "no VF raised from the second lead"
    assert (starts[0].decided_at + lo - onset) / record.fs <= 10.0
    alone = run(Analyzer(record.fs, record.leads[:1]), signals[:, :1])
    assert not vf_episodes(alone)  # the flat lead alone shows nothing


@settings(max_examples=4)
@given(sizes=st.lists(st.integers(min_value=1, max_value=6000), min_size=1, max_size=20))
def test_vf_goes_on_when_the_analysis_lead_comes_off_during_it(sizes: list[int]) -> None:
    # vfdb 422: VT then VF, called VF from the start of this excerpt; lead 0 detached after 130 s
    record = bundled("vfdb/422")
    onset = min(e.start for e in record.reference().episodes if e.label == "VF")
    signals = record.signals_mv[onset - int(120 * record.fs) : onset + int(120 * record.fs)]
    signals = signals.copy()
    signals[int(130 * record.fs) :, 0] = FLAT_MV
    whole = run(Analyzer(record.fs, record.leads), signals)
    assert len(vf_episodes(whole)) == 1  # one VF, not ended by the detachment
    start, end = vf_episodes(whole)[0]
    assert start < 130 * record.fs and end == len(signals)
    chunked = run(Analyzer(record.fs, record.leads), signals, sizes)
    assert sorted(chunked, key=event_order) == sorted(whole, key=event_order)
    alone = run(Analyzer(record.fs, record.leads[:1]), signals[:, :1])
    assert vf_episodes(alone)[0][1] < 140 * record.fs  # the analysis lead alone loses it


def motion_bursts(record: Record, seconds: float, seed: int) -> np.ndarray:
    """The record's first ``seconds`` with 10 s bursts of 1-10 Hz motion artefact (0.5 mV RMS,
    the band of VF) on the first lead, every 60 s from 30 s."""
    signals = record.signals_mv[: int(seconds * record.fs)].copy()
    n = signals.shape[0]
    artefact = motion_artefact(n, record.fs, 0.5, seed)
    burst = np.zeros(n)
    for start in range(int(30 * record.fs), n - int(10 * record.fs), int(60 * record.fs)):
        burst[start : start + int(10 * record.fs)] = 1.0
    signals[:, 0] += burst * artefact
    return signals


def test_motion_artefact_on_one_lead_is_not_vf() -> None:
    record = bundled("mitdb/100")
    signals = motion_bursts(record, 360.0, seed=100)
    alone = run(Analyzer(record.fs, record.leads[:1]), signals[:, :1])
    assert vf_episodes(alone), "the artefact looks like VF to one lead's detector"
    both = run(Analyzer(record.fs, record.leads), signals)
    assert not vf_episodes(both)  # V5 shows sinus rhythm: VF is not confirmed


def vote(events: list[tuple[str, int, bool]], confirming: bool = True) -> list[tuple[int, bool]]:
    """VfVote at 100 Hz fed ("a"nalysis / "b"ackup detector, sample, active) transitions,
    each decided 3 s after its sample; returns the VF (sample, on) transitions."""
    vf = VfVote()
    out = vf.confirm(Transition(0, confirming, 0))
    for source, sample, active in events:
        out += vf.transition(0 if source == "a" else 1, Transition(sample, active, sample + 300))
    return [(t.sample, t.active) for t in out]


def test_vf_vote_needs_both_leads_to_start_and_one_to_go_on() -> None:
    one_lead = [("a", 1000, True), ("a", 2000, False)]
    assert vote(one_lead) == []
    assert vote(one_lead, confirming=False) == [(1000, True), (2000, False)]
    both = [("a", 1000, True), ("b", 1200, True), ("a", 5000, False), ("b", 6000, False)]
    assert vote(both) == [(1200, True), (6000, False)]  # from the later onset to the last offset
    assert vote([("b", 1000, True), ("b", 2000, False)]) == []  # the backup never alone


def test_vf_held_by_the_backup_ends_where_the_backup_stops_confirming() -> None:
    vf = VfVote()
    vf.confirm(Transition(0, True, 100))
    vf.transition(0, Transition(1000, True, 1300))
    vf.transition(1, Transition(1100, True, 1400))
    vf.transition(0, Transition(3000, False, 3300))  # held by the backup's VF
    ended = vf.confirm(Transition(3500, False, 3600))  # the backup's electrode comes off
    assert [(t.sample, t.active, t.decided_at) for t in ended] == [(3500, False, 3600)]
