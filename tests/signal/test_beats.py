from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import resample_poly

from ambulink.evaluation.matching import match_beats, tolerance_samples
from ambulink.signal.beats import BeatDetector, classify
from tests.conftest import Record, bundled, shared
from tests.signal.chunking import chunks


def v_scores(record: Record) -> tuple[float, float, int]:
    """Se and +P of the V label over matched beats after the 5-minute learning period."""
    ref = record.reference()
    beats = classify(record.lead(0), record.fs)
    detected = np.array([b.sample for b in beats])
    match = match_beats(ref.beat_sample, detected, tolerance_samples(record.fs))
    start = 300 * record.fs
    tp = fn = fp = 0
    for r, d in zip(match.ref_index, match.det_index, strict=True):
        if ref.beat_sample[r] < start:
            continue
        is_v, said_v = ref.beat_class[r] == "V", beats[d].label == "V"
        tp += is_v and said_v
        fn += is_v and not said_v
        fp += said_v and not is_v and ref.beat_class[r] != "F"
    return tp / max(tp + fn, 1), tp / max(tp + fp, 1), tp + fn


def test_ventricular_bigeminy_is_labelled_v() -> None:
    se, ppv, n_v = v_scores(bundled("mitdb/119"))
    assert n_v > 300
    assert se >= 0.95 and ppv >= 0.95, f"V Se {se:.3f}, +P {ppv:.3f}"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mitdb/106", "mitdb/200", "mitdb/208"])
def test_frequent_pvcs_are_labelled_v(name: str) -> None:
    se, ppv, n_v = v_scores(shared(name))
    assert n_v > 300
    assert se >= 0.85 and ppv >= 0.85, f"{name}: V Se {se:.3f}, +P {ppv:.3f}"


@pytest.mark.slow
@pytest.mark.parametrize("mains_hz", [50.0, 60.0])
def test_pvcs_are_labelled_v_under_powerline_hum(mains_hz: float) -> None:
    """0.2 mV of hum on mitdb 200: the classifier's 40 Hz low-pass left half of it, which read
    as QRS roughness and shape change (V Se 0.95 clean, 0.89 and 0.86 under hum). Notched
    while the lead has hum, the labels are as clean."""
    record = shared("mitdb/200")
    t = np.arange(record.signals_mv.shape[0]) / record.fs
    hum = 0.2 * np.sin(2 * np.pi * mains_hz * t)
    se, ppv, _ = v_scores(replace(record, signals_mv=record.signals_mv + hum[:, None]))
    assert se >= 0.94 and ppv >= 0.99, f"V Se {se:.3f}, +P {ppv:.3f}"


@pytest.mark.slow
def test_frequent_pvcs_are_labelled_v_at_250_hz() -> None:
    # mitdb 208 resampled to 250 Hz: its normal beats split over several shape clusters, each
    # rarer than the one PVC cluster, which then passed for "normal" from ~540 s to ~1100 s
    # (V Se 0.48). The normal beats' clusters together outnumber it.
    record = shared("mitdb/208")
    fs = 250.0
    lead = resample_poly(record.lead(0), 25, 36)
    ref = record.reference()
    ref_samples = np.round(ref.beat_sample * fs / record.fs).astype(np.int64)
    beats = classify(lead, fs)
    match = match_beats(ref_samples, np.array([b.sample for b in beats]), tolerance_samples(fs))
    tp = fn = fp = 0
    for r, d in zip(match.ref_index, match.det_index, strict=True):
        if ref_samples[r] < 300 * fs:
            continue
        is_v, said_v = ref.beat_class[r] == "V", beats[d].label == "V"
        tp += is_v and said_v
        fn += is_v and not said_v
        fp += said_v and not is_v and ref.beat_class[r] != "F"
    assert tp + fn > 700
    assert tp / (tp + fn) >= 0.9 and tp / (tp + fp) >= 0.9, (tp, fn, fp)


def test_sinus_rhythm_is_normal() -> None:
    beats = classify(bundled("mitdb/100").lead(0), 360.0)
    labels = [b.label for b in beats]
    assert len(labels) > 2200
    assert labels.count("N") / len(labels) > 0.97
    assert labels.count("V") <= 5  # 100 has one PVC


@pytest.mark.slow
def test_a_new_rhythm_is_learnt_after_chaos() -> None:
    # vfdb 609: after VFL (1021-1042 s) and ventricular escape, sinus beats of one shape from
    # about 1045 s. The shapes learnt during the chaos once filled every cluster slot and each
    # new shape was evicted at birth, so these beats stayed "new" and were labelled Q for good.
    record = shared("vfdb/609")
    beats = classify(record.lead(0, seconds=1164.0), record.fs)
    sinus = [b for b in beats if 1150.0 * record.fs < b.sample]
    assert len(sinus) >= 10
    assert [b.label for b in sinus].count("N") >= 0.9 * len(sinus), [b.label for b in sinus]
    assert len({b.morphology for b in sinus}) <= 2


def test_beats_carry_rr_and_qrs_width() -> None:
    beats = classify(bundled("mitdb/100").lead(0, seconds=60), 360.0)
    rr = [b.rr_ms for b in beats[1:]]
    assert all(r is not None and 500 < r < 1200 for r in rr)
    widths = [b.qrs_ms for b in beats if b.qrs_ms is not None]
    assert 40 < float(np.median(widths)) < 120


@settings(max_examples=8)
@given(sizes=st.lists(st.integers(min_value=1, max_value=2500), min_size=1, max_size=30))
def test_labels_do_not_depend_on_chunk_sizes(sizes: list[int]) -> None:
    lead = bundled("mitdb/119").lead(0, seconds=150)
    whole = classify(lead, 360.0)
    detector = BeatDetector(360.0)
    chunked = [b for part in chunks(lead, sizes) for b in detector.feed(part)] + detector.flush()
    assert chunked == whole
    assert sum(b.label == "V" for b in whole) > 20


def test_leads_in_columns_label_the_first_leads_beats_and_the_second_while_it_is_off() -> None:
    record = bundled("mitdb/119")
    excerpt = record.signals_mv[: int(300 * record.fs)].copy()
    assert classify(excerpt, record.fs) == classify(excerpt[:, 0], record.fs)
    off = slice(int(120 * record.fs), int(180 * record.fs))
    excerpt[off, 0] = 0.0
    lo, hi = off.start + record.fs, off.stop - record.fs  # the steps at the edges aside
    inside = [b for b in classify(excerpt, record.fs) if lo < b.sample < hi]
    assert len(inside) >= 50 and {b.label for b in inside} <= {"N", "V", "S", "Q"}
    assert not [b for b in classify(excerpt[:, 0], record.fs) if lo < b.sample < hi]
