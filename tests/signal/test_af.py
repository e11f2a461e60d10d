"""AF detector fed the reference beats of real MIT-BIH records, scored by their rhythm notes."""

from __future__ import annotations

import math

import pytest

from ambulink.errors import SignalError
from ambulink.evaluation.rhythm_scoring import LabelScore, score_label
from ambulink.signal.af import AfDetector
from ambulink.signal.atrial import AtrialCoherence
from ambulink.signal.beats import PRECEDING_S
from ambulink.signal.events import Transition
from ambulink.signal.filters import SosFilter, bandpass_sos
from tests.conftest import Record, bundled, shared
from tests.signal.transitions import detected_episodes

Beat = tuple[int, str]
Episode = tuple[int, int, int]  # start, end, decided_at (samples)

# AAMI class of the reference beats -> label the detector takes (fusion F counts as ventricular)
DETECTOR_LABEL = {"N": "N", "S": "S", "V": "V", "F": "V", "Q": "Q"}
ONSET_LIMIT_S = 40.0


def reference_beats(record: Record) -> list[Beat]:
    ref = record.reference()
    return [
        (int(s), DETECTOR_LABEL[c]) for s, c in zip(ref.beat_sample, ref.beat_class, strict=True)
    ]


def run(fs: float, beats: list[Beat]) -> list[Transition]:
    detector = AfDetector(fs)
    transitions: list[Transition] = []
    for sample, label in beats:
        transitions += detector.push(sample, label)
    return transitions


def annotated_af(record: Record) -> list[tuple[int, int]]:
    """Annotated (AFIB and (AFL episodes, to the next rhythm note."""
    return [(e.start, e.end) for e in record.reference().episodes if e.label == "AF"]


def af_score(record: Record, beats: list[Beat]) -> tuple[LabelScore, list[Episode]]:
    n_samples = len(record.signals_mv)
    found = detected_episodes(run(record.fs, beats), n_samples)
    detected = [(start, end) for start, end, _ in found]
    return score_label("AF", annotated_af(record), detected, record.fs, n_samples), found


def test_af_in_201_matches_the_annotated_time() -> None:
    record = bundled("mitdb/201")
    score, found = af_score(record, reference_beats(record))
    assert score.reference_s > 500  # 201 holds ~10 min of AF: the test scores something
    assert score.duration_se is not None and score.duration_se >= 0.90, score.as_dict()
    assert score.duration_ppv is not None and score.duration_ppv >= 0.90, score.as_dict()
    # every annotated episode of 30 s or more is found, decided soon after it began
    for start, end in annotated_af(record):
        if end - start >= 30 * record.fs:
            hits = [e for e in found if e[0] < end and start < e[1]]
            assert hits, f"AF episode at {start / record.fs:.0f} s missed"
            assert (hits[0][2] - start) / record.fs <= ONSET_LIMIT_S


@pytest.mark.parametrize("name", ["mitdb/202", "mitdb/219"])
def test_af_in_shared_records(name: str) -> None:
    record = shared(name)
    score, _ = af_score(record, reference_beats(record))
    # 202 holds 48 s of flutter with fixed 2:1 block, regular and so out of reach of RR analysis
    assert score.duration_se is not None and score.duration_se >= 0.85, score.as_dict()
    assert score.duration_ppv is not None and score.duration_ppv >= 0.85, score.as_dict()
    assert score.long_se == 1.0, score.as_dict()


def test_s_labels_scattered_in_af_do_not_hide_it() -> None:
    # the beat classifier may call some irregular narrow beats in AF premature (S)
    record = bundled("mitdb/201")
    af = annotated_af(record)
    beats = reference_beats(record)
    in_af = [i for i, (s, lab) in enumerate(beats) if lab == "N" and any(a <= s < b for a, b in af)]
    relabelled = set(in_af[::10])
    beats = [(s, "S" if i in relabelled else lab) for i, (s, lab) in enumerate(beats)]
    score, _ = af_score(record, beats)
    assert len(relabelled) > 80
    assert score.duration_se is not None and score.duration_se >= 0.90, score.as_dict()


@pytest.mark.parametrize("name", ["mitdb/100", "mitdb/119", "mitdb/207"])
def test_no_af_without_af(name: str) -> None:
    # 119: ventricular bigeminy and trigeminy; 207: bundle branch blocks, PVC runs, flutter waves
    record = bundled(name)
    beats = reference_beats(record)
    assert len(beats) > 1500
    assert run(record.fs, beats) == []


@pytest.mark.parametrize("name", ["mitdb/106", "mitdb/200", "mitdb/208"])
def test_no_af_with_heavy_ventricular_ectopy(name: str) -> None:
    record = shared(name)
    assert run(record.fs, reference_beats(record)) == []


def test_transitions_alternate_and_are_decided_after_the_change() -> None:
    record = bundled("mitdb/201")
    transitions = run(record.fs, reference_beats(record))
    assert len(transitions) >= 4
    assert [t.active for t in transitions] == [i % 2 == 0 for i in range(len(transitions))]
    for t in transitions:
        assert t.decided_at >= t.sample
    samples = [t.sample for t in transitions]
    decisions = [t.decided_at for t in transitions]
    assert samples == sorted(samples) and decisions == sorted(decisions)


def test_active_follows_the_transitions() -> None:
    record = bundled("mitdb/201")
    detector = AfDetector(record.fs)
    for sample, label in reference_beats(record):
        for t in detector.push(sample, label):
            assert detector.active == t.active
    assert detector.active  # 201 ends in AF (annotated until 2 s before the end)


def test_same_beats_same_transitions() -> None:
    record = bundled("mitdb/201")
    beats = reference_beats(record)
    assert run(record.fs, beats) == run(record.fs, beats)


@pytest.mark.parametrize("fs", [0, 50.0, 5000, math.nan, "fast", None])
def test_bad_rate_is_rejected(fs: object) -> None:
    with pytest.raises(SignalError, match="fs"):
        AfDetector(fs)  # type: ignore[arg-type]


@pytest.mark.parametrize("label", ["X", "n", "", None, 1])
def test_unknown_label_is_rejected(label: object) -> None:
    detector = AfDetector(360.0)
    with pytest.raises(SignalError, match="label"):
        detector.push(100, label)  # type: ignore[arg-type]


@pytest.mark.parametrize("second", [1000, 999])
def test_samples_must_increase(second: int) -> None:
    detector = AfDetector(360.0)
    detector.push(1000, "N")
    with pytest.raises(SignalError, match="increase"):
        detector.push(second, "N")
    assert detector.push(1300, "N") == []  # the rejected beat left no trace


@pytest.mark.parametrize("sample", [-1, 10.5, "100", None])
def test_bad_sample_is_rejected(sample: object) -> None:
    with pytest.raises(SignalError, match="sample"):
        AfDetector(360.0).push(sample, "N")  # type: ignore[arg-type]


def with_p_waves(record: Record, beats: list[Beat]) -> list[tuple[int, str, float | None]]:
    """The beats with the P-wave coherence the Analyzer would pass (reference R peaks, the
    beat classifier's band-pass)."""
    fs = record.fs
    filtered = SosFilter(bandpass_sos(0.5, 40.0, fs))(record.lead(0))
    n = int(round(PRECEDING_S * fs))
    atrial = AtrialCoherence(fs)
    out: list[tuple[int, str, float | None]] = []
    previous = None
    for sample, label in beats:
        value = None
        if label == "N":
            value = atrial.push(
                sample, previous, filtered[sample - n : sample] if sample >= n else None
            )
        out.append((sample, label, value))
        previous = sample
    return out


def af_score_with_p_waves(record: Record) -> LabelScore:
    detector = AfDetector(record.fs)
    transitions: list[Transition] = []
    for sample, label, p_waves in with_p_waves(record, reference_beats(record)):
        transitions += detector.push(sample, label, p_waves)
    n_samples = len(record.signals_mv)
    detected = [(s, e) for s, e, _ in detected_episodes(transitions, n_samples)]
    return score_label("AF", annotated_af(record), detected, record.fs, n_samples)


def test_p_waves_keep_irregular_sinus_rhythm_out_of_af() -> None:
    # 219's sinus stretches alternate two RR intervals irregularly: RR alone calls them AF
    record = shared("mitdb/219")
    rr_only, _ = af_score(record, reference_beats(record))
    both = af_score_with_p_waves(record)
    assert rr_only.duration_ppv is not None and both.duration_ppv is not None
    assert both.duration_ppv >= 0.93 and both.duration_ppv > rr_only.duration_ppv + 0.05, (
        rr_only.as_dict(),
        both.as_dict(),
    )
    assert both.duration_se is not None and both.duration_se >= 0.95, both.as_dict()


def test_p_waves_do_not_hide_af() -> None:
    record = bundled("mitdb/201")
    score = af_score_with_p_waves(record)
    assert score.duration_se is not None and score.duration_se >= 0.95, score.as_dict()
    assert score.long_se == 1.0, score.as_dict()


def test_steady_p_waves_veto_an_af_onset() -> None:
    record = bundled("mitdb/201")
    detector = AfDetector(record.fs)
    transitions = [t for s, lab in reference_beats(record) for t in detector.push(s, lab, 0.9)]
    assert transitions == []


@pytest.mark.parametrize("bad", [math.nan, -0.1, 1.5, "0.5"])
def test_a_p_wave_reading_outside_zero_to_one_is_refused(bad: object) -> None:
    detector = AfDetector(360.0)
    with pytest.raises(SignalError, match="p_coherence"):
        detector.push(1000, "N", bad)  # type: ignore[arg-type]
