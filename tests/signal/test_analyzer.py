import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ambulink.errors import SignalError
from ambulink.signal.analyzer import Analyzer, choose_analysis_lead
from ambulink.signal.events import (
    BeatEvent,
    EpisodeEnd,
    EpisodeStart,
    HeartRateEvent,
    LeadOffEvent,
    QualityEvent,
    event_order,
)
from tests.conftest import bundled, shared
from tests.signal.chunking import chunks


def run(analyzer: Analyzer, signals: np.ndarray, sizes: list[int] | None = None) -> list:
    parts = [signals] if sizes is None else list(chunks(signals, sizes))
    events = [e for part in parts for e in analyzer.feed(part)]
    return events + analyzer.flush()


def vt_vf_excerpt() -> tuple[np.ndarray, float]:
    """Record 422 (VFDB) from a minute before its VT onset to well into the VF."""
    record = bundled("vfdb/422")
    onset = min(e.start for e in record.reference().episodes if e.label in ("VT", "VF"))
    lo = max(0, onset - int(60 * record.fs))
    return record.signals_mv[lo : onset + int(90 * record.fs)], record.fs


@settings(max_examples=6)
@given(sizes=st.lists(st.integers(min_value=1, max_value=4000), min_size=1, max_size=25))
def test_events_do_not_depend_on_chunk_sizes(sizes: list[int]) -> None:
    signals, fs = vt_vf_excerpt()
    whole = run(Analyzer(fs, ["ECG1", "ECG2"]), signals)
    chunked = run(Analyzer(fs, ["ECG1", "ECG2"]), signals, sizes)
    assert sorted(chunked, key=event_order) == sorted(whole, key=event_order)
    assert {type(e) for e in whole} >= {BeatEvent, HeartRateEvent, EpisodeStart, EpisodeEnd}


@settings(max_examples=6)
@given(sizes=st.lists(st.integers(min_value=1, max_value=4000), min_size=1, max_size=25))
def test_af_decisions_with_p_waves_do_not_depend_on_chunk_sizes(sizes: list[int]) -> None:
    # mitdb 201, 330-560 s: AF ends into nodal and sinus rhythm with P waves, then returns;
    # the P-wave readings come from each beat's preceding samples, whatever the chunking
    record = bundled("mitdb/201")
    signals = record.signals_mv[int(330 * record.fs) : int(560 * record.fs)]
    whole = run(Analyzer(record.fs, ["MLII", "V1"]), signals)
    chunked = run(Analyzer(record.fs, ["MLII", "V1"]), signals, sizes)
    assert sorted(chunked, key=event_order) == sorted(whole, key=event_order)
    af = [e for e in whole if isinstance(e, EpisodeStart | EpisodeEnd) and e.label == "AF"]
    assert len(af) >= 4


def test_vt_and_vf_onsets_carry_a_ten_second_evidence_strip() -> None:
    signals, fs = vt_vf_excerpt()
    events = run(Analyzer(fs, ["ECG1", "ECG2"]), signals)
    starts = [e for e in events if isinstance(e, EpisodeStart) and e.label in ("VT", "VF")]
    assert starts
    for start in starts:
        assert start.evidence.end - start.evidence.start == int(10 * fs)
        assert start.evidence.end <= start.decided_at
        assert start.onset <= start.decided_at
    # Every start is ended (at the latest at the end of the stream).
    ended = {(e.label, e.start) for e in events if isinstance(e, EpisodeEnd)}
    assert {(s.label, s.onset) for s in events if isinstance(s, EpisodeStart)} <= ended


def test_a_lead_that_goes_flat_is_reported_off_and_back_on() -> None:
    record = bundled("ptbxl/00003_hr")
    signals = record.signals_mv.copy()
    v3 = record.leads.index("V3")
    signals[2000:3500, v3] = 0.0  # the electrode fell off for 3 s
    events = run(Analyzer(record.fs, record.leads), signals)
    changes = [(e.lead, e.off) for e in events if isinstance(e, LeadOffEvent)]
    assert changes == [("V3", True), ("V3", False)]
    assert any(isinstance(e, QualityEvent) and e.lead == "II" for e in events)


def test_monitor_lead_off_bits_are_reported_too() -> None:
    record = bundled("ptbxl/00003_hr")
    analyzer = Analyzer(record.fs, record.leads, gain=1000.0)
    adc = np.round(record.signals_mv * 1000).astype(np.int16)
    bits = [name == "V1" for name in record.leads]
    events = analyzer.feed(adc[:1000], lead_off=bits) + analyzer.feed(adc[1000:])
    assert [(e.lead, e.off) for e in events if isinstance(e, LeadOffEvent)] == [
        ("V1", True),
        ("V1", False),
    ]


def test_a_normal_twelve_lead_analyses_lead_ii_at_a_normal_rate() -> None:
    record = bundled("ptbxl/00003_hr")
    analyzer = Analyzer(record.fs, record.leads)
    assert record.leads[analyzer.analysis_lead].upper() == "II"
    events = run(analyzer, record.signals_mv)
    rates = [e.average_bpm for e in events if isinstance(e, HeartRateEvent)]
    assert rates and 40 < rates[-1] < 110
    assert sum(isinstance(e, BeatEvent) for e in events) >= 7


def test_lead_choice_prefers_lead_ii() -> None:
    assert choose_analysis_lead(["I", "II", "III"]) == 1
    assert choose_analysis_lead(["V1", "MLII"]) == 1
    assert choose_analysis_lead(["X", "Y"]) == 0


def test_bad_chunks_are_rejected_with_clear_errors() -> None:
    analyzer = Analyzer(500.0, ["I", "II"])
    with pytest.raises(SignalError, match=r"\(n_samples, 2\)"):
        analyzer.feed(np.zeros((10, 3)))
    with pytest.raises(SignalError, match="gain"):
        analyzer.feed(np.zeros((10, 2), dtype=np.int16))
    with pytest.raises(SignalError, match="lead_off needs 2"):
        analyzer.feed(np.zeros((10, 2)), lead_off=[True])
    with pytest.raises(SignalError, match="at least one lead"):
        Analyzer(500.0, [])
    analyzer.flush()
    with pytest.raises(SignalError, match="flushed"):
        analyzer.feed(np.zeros((10, 2)))


def test_one_detached_electrode_is_lead_off_not_asystole() -> None:
    record = bundled("mitdb/100")
    signals = record.signals_mv[: int(60 * record.fs)].copy()
    signals[int(20 * record.fs) : int(30 * record.fs), 0] = 0.4  # MLII flat for 10 s
    analyzer = Analyzer(record.fs, record.leads)
    assert analyzer.confirming_lead == 1  # V5 confirms what MLII shows
    events = run(analyzer, signals)
    assert [(e.lead, e.off) for e in events if isinstance(e, LeadOffEvent)] == [
        ("MLII", True),
        ("MLII", False),
    ]
    labels = {e.label for e in events if isinstance(e, EpisodeStart)}
    assert not labels & {"ASYSTOLE", "PAUSE"}


def test_annotated_asystole_is_raised_on_both_leads() -> None:
    record = shared("vfdb/424")
    asystole = [e for e in record.reference().episodes if e.label == "ASYSTOLE"]
    assert asystole
    onset = asystole[0].start
    lo = onset - int(30 * record.fs)
    events = run(
        Analyzer(record.fs, record.leads), record.signals_mv[lo : onset + int(12 * record.fs)]
    )
    starts = [e for e in events if isinstance(e, EpisodeStart) and e.label == "ASYSTOLE"]
    assert starts, "no asystole raised"
    delay_s = (starts[0].decided_at + lo - onset) / record.fs
    assert delay_s <= 10.0


def test_a_stream_that_starts_in_asystole_alarms() -> None:
    record = shared("vfdb/424")
    onset = max(
        e.start
        for e in record.reference().episodes
        if e.label == "ASYSTOLE" and e.end - e.start > 20 * record.fs
    )
    events = run(
        Analyzer(record.fs, record.leads), record.signals_mv[onset : onset + int(20 * record.fs)]
    )
    starts = [e for e in events if isinstance(e, EpisodeStart) and e.label == "ASYSTOLE"]
    assert starts and starts[0].decided_at <= 8 * record.fs


def test_a_twelve_lead_stream_gets_a_stemi_watch() -> None:
    record = bundled("ptbdb/s0010_re")  # acute infero-lateral MI, 15 leads at 1000 Hz
    analyzer = Analyzer(record.fs, record.leads)
    events = run(analyzer, record.signals_mv, [400] * 3 + [1000])
    suspected = [e for e in events if e.kind == "stemi_suspected"]
    assert suspected, "no STEMI suspected on an acute MI"
    first = suspected[0]
    assert first.evidence.end - first.evidence.start == int(10 * record.fs)
    assert first.sample <= 20 * record.fs  # two 5 s evaluations after the first 10 s window
    normal = bundled("ptbxl/00003_hr")
    quiet = run(Analyzer(normal.fs, normal.leads), normal.signals_mv)
    assert not [e for e in quiet if e.kind.startswith("stemi")]
    two_leads = Analyzer(360.0, ["MLII", "V5"])
    assert not [
        e
        for e in run(two_leads, bundled("mitdb/100").signals_mv[:36000])
        if e.kind.startswith("stemi")
    ]
