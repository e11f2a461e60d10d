"""12-lead ST analysis on real records: STEMI, ischemic depression, normals, bad input,
and the streaming StMonitor."""

from __future__ import annotations

import numpy as np
import pytest
import wfdb
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from scipy.signal import resample_poly

from ambulink.errors import SignalError
from ambulink.signal.st import (
    STANDARD,
    StemiCleared,
    StemiSuspected,
    StMonitor,
    STResult,
    analyze,
    canonical_lead,
)
from tests.conftest import SHARED_ECG, Record, bundled
from tests.signal.chunking import chunks
from tests.signal.interference import motion_artefact
from tests.signal.ludb import ludb


def run(rec: Record, **kwargs: object) -> STResult:
    return analyze(rec.signals_mv, rec.fs, rec.leads, **kwargs)  # type: ignore[arg-type]


def test_normal_12_lead_is_not_stemi() -> None:
    result = run(bundled("ptbxl/00003_hr"))
    assert result.evaluable and result.why_not is None
    assert not result.stemi and result.territories == ()
    assert not result.ischemic_depression
    assert tuple(result.per_lead) == STANDARD
    assert all(abs(s.st_j_mv) < 0.1 for s in result.per_lead.values())
    assert result.r_peaks.size >= 8 and result.evidence.end == 5000
    assert -70 < result.qrs_onset_offset_ms < 0 < result.j_offset_ms < 70


def test_subendocardial_injury_is_depression_not_stemi() -> None:
    """PTB-XL 468 (INJAL): ST depression, which must not be called STEMI."""
    result = run(bundled("ptbxl/00468_hr"))
    assert not result.stemi
    assert result.ischemic_depression and "lateral" in result.depression_territories
    assert any("ischemic ST depression" in r for r in result.reasons)


def test_acute_inferolateral_mi_is_flagged() -> None:
    """PTB s0010_re: acute infero-lateral MI. Inferior elevation (III) with reciprocal
    depression in I/aVL and V2-V3 depression deepest there: STEMI (posterior equivalent)."""
    result = run(bundled("ptbdb/s0010_re"))
    assert result.stemi
    assert "posterior" in result.territories
    assert {"I", "aVL"} <= set(result.reciprocal)
    assert result.per_lead["III"].st_j_mv >= 0.1
    assert any("lead 'vx' is not a known ECG lead" in n for n in result.notes)
    assert result.evidence.end - result.evidence.start == 10000  # the last 10 s of 38 s


@pytest.mark.xfail(
    strict=True,
    reason="an evolving infarct (Q waves, inverted T): inferior ST is III 0.11 mV at J but "
    "0.06 mV at J+60, aVF 0.07/0.04 mV, stable over the whole 38 s: the inferior territory is "
    "not met by the definition (see docs/signal.md)",
)
def test_acute_inferolateral_mi_territory() -> None:
    result = run(bundled("ptbdb/s0010_re"))
    assert {"inferior", "lateral"} & set(result.territories)


def test_acute_inferolateral_mi_shows_its_q_waves() -> None:
    """The infarct's territory is in its Q waves (II, aVF; V5, V6), reported as infarction of
    undetermined age beside the posterior STEMI equivalent; no Q waves in a normal ECG."""
    result = run(bundled("ptbdb/s0010_re"))
    assert result.q_wave_territories == ("inferior", "lateral")
    assert any(r.startswith("pathological Q waves in II, aVF") for r in result.reasons)
    assert run(bundled("ptbxl/00003_hr")).q_wave_territories == ()


@pytest.mark.parametrize("n", [21, 55, 86])
def test_ludb_stemi_readings_show_anterior_elevation(n: int) -> None:
    signals, fs, leads = ludb(n)
    result = analyze(signals, fs, leads)
    assert result.evaluable and not result.confounders
    j60 = {lead: s.st_j60_mv for lead, s in result.per_lead.items()}
    top = max(j60, key=lambda lead: j60[lead])
    assert top in ("V1", "V2", "V3", "V4") and j60[top] >= 0.1


def test_ludb_55_anterior_stemi_meets_criteria() -> None:
    """Woman, 54: V1-V3 ST 0.16-0.21 mV at J+60 ms (0.08-0.15 mV at a J point that sits on
    the end of the QRS): anterior STEMI with reciprocal inferior depression."""
    signals, fs, leads = ludb(55)
    result = analyze(signals, fs, leads, "F", 54)
    assert result.stemi and result.territories == ("anterior",)
    assert {"II", "III", "aVF"} <= set(result.reciprocal)


def test_ludb_86_subtle_anterior_stemi_by_the_four_variable_formula() -> None:
    """Man, 50: V2 0.24, V3 0.17 mV at J+60 ms, V1 and V4 0.09 mV: under the Fourth UDMI
    cut-points (0.2 mV in two of V2-V3), flagged by the 4-variable formula, which weighs the
    ST elevation in V3 against QTc, the QRS size in V2 and R in V4."""
    signals, fs, leads = ludb(86)
    result = analyze(signals, fs, leads, "M", 50)
    assert result.stemi and result.territories == ("anterior",)
    assert any(r.startswith("subtle LAD occlusion suspected") for r in result.reasons)
    assert 380.0 <= result.qtc_ms <= 500.0


@pytest.mark.xfail(
    strict=True,
    reason="men >= 40 y need 0.2 mV in V2-V3: LUDB 21 has V2 0.12, V3 0.13 mV at J+60 ms, "
    "and its QS waves in V1-V4 put it outside the 4-variable formula (see docs/signal.md)",
)
def test_ludb_21_meets_criteria() -> None:
    signals, fs, leads = ludb(21)
    assert "anterior" in analyze(signals, fs, leads, "M", 55).territories


@pytest.mark.parametrize("n", [8, 34, 74, 90, 104])
def test_ludb_ventricular_pacing_is_a_confounder(n: int) -> None:
    """LUDB's ventricular-paced records (unipolar 8, 34, 74, 104; bipolar 90, whose spikes
    are small): paced, so no STEMI is called from their secondary ST elevation."""
    signals, fs, leads = ludb(n)
    result = analyze(signals, fs, leads)
    assert "paced" in result.confounders and not result.stemi
    assert any("pacing spikes" in n or "paced rhythm" in n for n in result.notes)


@pytest.mark.parametrize(("n", "age"), [(8, 57), (74, 69)])
def test_ludb_right_ventricular_pacing_at_250_hz_is_a_confounder(n: int, age: int) -> None:
    """At 250 Hz a pacing spike of 1-2 ms is filtered to the sharpness of a QRS, so it is not
    seen; the wide QRS with a negative V1 (LBBB-like) still keeps the secondary ST elevation
    of these paced records (women, as the headers say) from being called STEMI. Before, 74
    was called an inferior STEMI; 8's spikes are still just seen (2x, the weakest evidence)."""
    signals, fs, leads = ludb(n)
    result = analyze(resample_poly(signals, 1, 2, axis=0), fs / 2, leads, "F", age)
    assert not result.stemi
    assert set(result.confounders) & {"paced", "LBBB-like wide QRS"}, result.confounders
    assert any("unreliable" in r for r in result.reasons)


@pytest.mark.parametrize("n", [62, 140, 184])
def test_ludb_narrow_qrs_is_not_paced_and_early_repolarisation_is_not_stemi(n: int) -> None:
    """62: normal, J-point elevation in II, III, aVF gone by J+40 ms (it was a false STEMI
    when measured at J alone); 140: early repolarisation syndrome; 140 and 184 "wandering
    atrial pacemaker" (no device)."""
    signals, fs, leads = ludb(n)
    result = analyze(signals, fs, leads)
    assert "paced" not in result.confounders and not result.stemi


def test_flat_lead_is_not_evaluable_and_never_stemi() -> None:
    rec = bundled("ptbxl/00003_hr")
    signals = rec.signals_mv.copy()
    signals[:, 2] = 0.4  # III off: a flat line with an offset
    result = analyze(signals, rec.fs, rec.leads)
    assert result.evaluable and not result.stemi
    assert not result.per_lead["III"].evaluable
    assert "flat" in (result.per_lead["III"].reason or "")
    flat = analyze(np.zeros_like(signals), rec.fs, rec.leads)
    assert not flat.evaluable and not flat.stemi and "flat" in (flat.why_not or "")


def test_noisy_leads_are_not_evaluable() -> None:
    """Baseline jumps (electrode motion) up to 0.3 mV every 0.1 s on II, III, aVF of a normal
    record: those leads become not evaluable instead of showing ST shifts."""
    rec = bundled("ptbxl/00003_hr")
    signals = rec.signals_mv.copy()
    rng = np.random.default_rng(1)
    steps = np.repeat(rng.uniform(-0.3, 0.3, size=100), 50)[: len(signals)]
    for column in (1, 2, 5):
        signals[:, column] += steps + rng.normal(0, 0.02, len(signals))
    result = analyze(signals, rec.fs, rec.leads)
    assert not result.stemi
    noisy = [lead for lead, s in result.per_lead.items() if not s.evaluable]
    assert {"II", "III", "aVF"} <= set(noisy), result.per_lead
    assert all("noisy" in (result.per_lead[lead].reason or "") for lead in noisy)


def test_microvolts_are_refused_as_not_millivolts() -> None:
    """Samples in µV (or ADC units) span hundreds of mV: not evaluable, saying so, not a
    verdict on "noisy" leads."""
    rec = bundled("ptbxl/00003_hr")
    result = analyze(rec.signals_mv * 1000.0, rec.fs, rec.leads)
    assert not result.evaluable and not result.stemi
    assert "not in mV" in (result.why_not or "")
    one = rec.signals_mv.copy()
    one[:, 1] *= 1000.0  # lead II alone
    result = analyze(one, rec.fs, rec.leads)
    assert result.evaluable and not result.stemi
    assert "not in mV" in (result.per_lead["II"].reason or "")
    assert all(s.evaluable for lead, s in result.per_lead.items() if lead != "II")


def test_pure_noise_is_not_evaluable() -> None:
    rng = np.random.default_rng(2)
    result = analyze(rng.normal(0, 0.3, (5000, 12)), 500.0, list(bundled("ptbxl/00003_hr").leads))
    assert not result.stemi and not result.evaluable and result.why_not


def test_missing_leads_and_aliases() -> None:
    rec = bundled("ptbxl/00003_hr")
    keep = [0, 1, 2, 3, 4, 5]  # limb leads only
    names = ["i", "MLII", "III", "AVR", "avl", "aVF"]
    result = analyze(rec.signals_mv[:, keep], rec.fs, names)
    assert result.evaluable and set(result.per_lead) == {"I", "II", "III", "aVR", "aVL", "aVF"}
    assert any(n.startswith("anterior criteria not evaluable") for n in result.notes)
    assert any("leads not recorded: V1" in n for n in result.notes)
    assert canonical_lead("v4r") == "V4R" and canonical_lead("vx") is None


def test_bad_input_raises_clear_errors() -> None:
    rec = bundled("ptbxl/00003_hr")
    x = rec.signals_mv
    with pytest.raises(SignalError, match=r"\(n_samples, 12\)"):
        analyze(x[:, :11], rec.fs, rec.leads)
    with pytest.raises(SignalError, match="fs must be"):
        analyze(x, 50.0, rec.leads)
    bad = x.copy()
    bad[100, 3] = np.nan
    with pytest.raises(SignalError, match="finite"):
        analyze(bad, rec.fs, rec.leads)
    with pytest.raises(SignalError, match="leads must be"):
        analyze(x, rec.fs, "I II")  # type: ignore[arg-type]
    with pytest.raises(SignalError, match="sex must be"):
        analyze(x, rec.fs, rec.leads, sex="?")
    with pytest.raises(SignalError, match="age must be"):
        analyze(x, rec.fs, rec.leads, age=-3)


def test_sex_and_age_change_the_v2_v3_threshold_reason() -> None:
    rec = bundled("ptbxl/00003_hr")
    assert any("conservative" in r for r in run(rec).reasons)
    assert any("woman" in r for r in run(rec, sex="female").reasons)
    assert any("man ≥ 40" in r for r in run(rec, sex="M", age=60).reasons)


def events_of(monitor: StMonitor, parts: list[NDArray[np.float64]]) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for part in parts:
        out.extend((event.kind, event.sample) for event in monitor.feed(part))
    return out


def test_monitor_raises_stemi_with_evidence() -> None:
    rec = bundled("ptbdb/s0010_re")
    monitor = StMonitor(rec.fs, rec.leads)
    events = monitor.feed(rec.signals_mv)
    assert len(events) == 1
    event = events[0]
    assert isinstance(event, StemiSuspected)
    assert event.sample == 15000  # second 10 s window agreeing (fs 1000 Hz, every 5 s)
    assert event.evidence.end == 15000 and event.evidence.start == 5000
    assert "posterior" in event.territories
    assert event.result.r_peaks.min() >= 5000


def test_monitor_clears_when_the_signal_turns_normal() -> None:
    """s0010_re's last 20 s, then PTB-XL 00003 (normal) resampled to 1000 Hz twice over."""
    ptb = bundled("ptbdb/s0010_re")
    normal = bundled("ptbxl/00003_hr").signals_mv
    normal_1k = np.repeat(normal, 2, axis=0)  # 500 -> 1000 Hz, sample and hold
    names = ptb.leads[:12]
    stream = np.concatenate((ptb.signals_mv[-20000:, :12], normal_1k, normal_1k))
    events = StMonitor(ptb.fs, names).feed(stream)
    kinds = [type(e) for e in events]
    assert kinds == [StemiSuspected, StemiCleared]
    assert events[1].sample > 20000


@settings(max_examples=8)
@given(sizes=st.lists(st.integers(min_value=1, max_value=7000), min_size=1, max_size=10))
def test_monitor_events_do_not_depend_on_chunk_sizes(sizes: list[int]) -> None:
    rec = bundled("ptbdb/s0010_re")
    x = rec.signals_mv[:25000]
    whole = events_of(StMonitor(rec.fs, rec.leads), [x])
    chunked = events_of(StMonitor(rec.fs, rec.leads), list(chunks(x, sizes)))
    assert chunked == whole
    assert whole == [("stemi_suspected", 15000)]


def low_rate_agreement(names: list[str]) -> tuple[int, list[float], list[str]]:
    """PTB-XL's own 100 Hz versions against the 500 Hz ones: records whose STEMI flag agrees,
    the J-point differences (ms), and the disagreeing records."""
    agree, j_diff, differ = 0, [], []
    for name in names:
        high = wfdb.rdrecord(name)
        low = wfdb.rdrecord(name.replace("records500", "records100").replace("_hr", "_lr"))
        fast = analyze(high.p_signal, high.fs, high.sig_name)
        slow = analyze(low.p_signal, low.fs, low.sig_name)
        assert slow.r_peaks.max() < low.p_signal.shape[0]  # peaks in the input's own samples
        agree += fast.stemi == slow.stemi
        if fast.stemi != slow.stemi:
            differ.append(name)
        j_diff.append(abs(fast.j_offset_ms - slow.j_offset_ms))
    return agree, j_diff, differ


def test_100_hz_input_is_measured_like_500_hz() -> None:
    # At 100 Hz a sample is 10 ms: the J point fell a sample into the end of the QRS and lifted
    # the J level; 8 of these 60 records were flagged at 100 Hz and not at 500 Hz.
    folder = SHARED_ECG / "ptbxl" / "records500" / "00000"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent: the development records are not on this machine")
    names = sorted(str(p.with_suffix("")) for p in folder.glob("*_hr.hea"))[:60]
    agree, j_diff, differ = low_rate_agreement(names)
    assert agree >= 0.95 * len(names), differ
    assert float(np.median(j_diff)) <= 5.0, np.median(j_diff)


@pytest.mark.parametrize("name", ["00213", "00254"])
def test_normal_records_at_100_hz_are_not_stemi(name: str) -> None:
    """PTB-XL 213 and 254 (NORM, men of 38 and 63) at their own 100 Hz: V2-V3's ST rises
    steeply from a J point that 5 ms of timing moves by ~0.1 mV; they were called anterior
    STEMI at 100 Hz and not at 500 Hz."""
    path = SHARED_ECG / "ptbxl" / "records100" / "00000" / f"{name}_lr"
    if not path.with_suffix(".hea").is_file():
        pytest.skip(f"{path} is absent: the development records are not on this machine")
    rec = wfdb.rdrecord(str(path))
    age = {"00213": 38, "00254": 63}[name]
    result = analyze(rec.p_signal, rec.fs, rec.sig_name, "M", age)
    assert result.evaluable and not result.stemi, result.reasons
    assert max(result.per_lead[lead].j_uncertainty_mv for lead in ("V2", "V3")) > 0.02


def with_interference(rec: Record, mains_mv: float = 0.0, wander_mv: float = 0.0) -> np.ndarray:
    """The record with powerline hum (50 Hz, a slow drift of phase) and respiratory wander
    (0.3 Hz, a different size on every lead) added."""
    t = np.arange(rec.signals_mv.shape[0]) / rec.fs
    size = np.linspace(0.6, 1.4, rec.signals_mv.shape[1])
    hum = mains_mv * np.sin(2 * np.pi * 50.02 * t + 0.3)
    drift = wander_mv * np.sin(2 * np.pi * 0.3 * t)
    return rec.signals_mv + hum[:, None] + drift[:, None] * size


@pytest.mark.parametrize("name", ["ptbxl/00003_hr", "ptbxl/00468_hr", "ptbdb/s0010_re"])
@pytest.mark.parametrize(
    ("mains_mv", "wander_mv"), [(0.2, 0.0), (0.0, 0.5)], ids=["50 Hz hum", "wander"]
)
def test_hum_and_wander_do_not_change_the_st_levels(
    name: str, mains_mv: float, wander_mv: float
) -> None:
    rec = bundled(name)
    clean = run(rec)
    noisy = analyze(with_interference(rec, mains_mv, wander_mv), rec.fs, rec.leads)
    assert noisy.evaluable, noisy.why_not
    assert (noisy.stemi, noisy.territories) == (clean.stemi, clean.territories)
    assert noisy.ischemic_depression == clean.ischemic_depression
    for lead, st_clean in clean.per_lead.items():
        assert noisy.per_lead[lead].evaluable
        assert abs(noisy.per_lead[lead].st_j60_mv - st_clean.st_j60_mv) <= 0.02, lead


@pytest.mark.parametrize("seed", [2, 3])
def test_a_lead_with_motion_artefact_does_not_move_the_others(seed: int) -> None:
    rec = bundled("ptbxl/00003_hr")
    clean = run(rec)
    signals = rec.signals_mv.copy()
    signals[:, rec.leads.index("II")] += motion_artefact(len(signals), rec.fs, 0.3, seed)
    noisy = analyze(signals, rec.fs, rec.leads)
    assert not noisy.per_lead["II"].evaluable and noisy.analysis_lead != "II"
    assert not noisy.stemi
    for lead, st_clean in clean.per_lead.items():
        if lead != "II":
            assert abs(noisy.per_lead[lead].st_j60_mv - st_clean.st_j60_mv) <= 0.01, lead


def swap_arms(rec: Record) -> np.ndarray:
    """The record as if its left and right arm electrodes were swapped: I inverted, II and III
    exchanged, aVR and aVL exchanged."""
    x = rec.signals_mv.copy()
    lead = {name.upper(): i for i, name in enumerate(rec.leads)}
    x[:, lead["I"]] = -rec.signals_mv[:, lead["I"]]
    for a, b in (("II", "III"), ("AVR", "AVL")):
        x[:, lead[a]], x[:, lead[b]] = rec.signals_mv[:, lead[b]], rec.signals_mv[:, lead[a]]
    return x


@pytest.mark.parametrize("name", ["ptbxl/00003_hr", "ptbxl/00468_hr", "ptbdb/s0010_re"])
def test_swapped_arm_electrodes_are_pointed_out(name: str) -> None:
    rec = bundled(name)
    assert not [n for n in run(rec).notes if "arm electrodes" in n]
    swapped = analyze(swap_arms(rec), rec.fs, rec.leads)
    assert [n for n in swapped.notes if "arm electrodes swapped" in n]
