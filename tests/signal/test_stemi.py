"""STEMI criteria logic (Fourth Universal Definition of MI) on per-lead ST deviations."""

from __future__ import annotations

import math

import pytest

from ambulink.errors import SignalError
from ambulink.signal.stemi import (
    LAD_CUTOFF,
    LadScore,
    LeadST,
    QrsShape,
    check_age,
    classify_slope,
    evaluate,
    find_confounders,
    is_elevated,
    lad_score,
    normalise_sex,
    pathological_q,
    v2_v3_threshold,
)

LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")


def leads(t_mv: float = 0.3, **st_j_mv: float) -> dict[str, LeadST]:
    """A 12-lead set, flat ST except the given levels (mV, the same at J, J+60 and J+80 ms),
    ST horizontal, T waves ``t_mv``."""
    return {
        name: LeadST(
            name,
            st_j_mv.get(name, 0.0),
            st_j_mv.get(name, 0.0),
            st_j_mv.get(name, 0.0),
            0.0,
            "horizontal",
            True,
            None,
            t_mv,
        )
        for name in LEADS
    }


def shaped(j: dict[str, float], j60: dict[str, float]) -> dict[str, LeadST]:
    """A 12-lead set with separate J and J+60 ms levels (J+80 = J+60)."""
    return {
        name: LeadST(
            name, j.get(name, 0.0), j60.get(name, 0.0), j60.get(name, 0.0), 0.0, "horizontal", True
        )
        for name in LEADS
    }


def test_elevation_must_hold_at_j_and_j60() -> None:
    """A J wave or slur that is gone by J+60 (early repolarisation) is not ST elevation; nor
    is a low J point with the ST rising into a tall T; a sustained ST shift is."""
    j_wave = shaped({"II": 0.15, "III": 0.12, "aVF": 0.14}, {"II": 0.03, "III": 0.02, "aVF": 0.03})
    assert not evaluate(j_wave).stemi
    rising = shaped({"V2": 0.02, "V3": 0.04}, {"V2": 0.3, "V3": 0.3})
    assert not evaluate(rising, "M", 50).stemi
    sustained = shaped(
        {"II": 0.06, "III": 0.08, "aVF": 0.07}, {"II": 0.12, "III": 0.15, "aVF": 0.1}
    )
    found = evaluate(sustained)
    assert found.territories == ("inferior",)
    assert any("at J+60 ms" in r and "at the J point" in r for r in found.reasons)


def test_the_j_point_counts_net_of_its_timing_uncertainty() -> None:
    """A J point on a steep slope, sampled coarsely, may sit where the QRS still is: its level
    counts only beyond how far half a sample's shift could move it."""
    sure = LeadST("V3", 0.06, 0.15, 0.15, 0.0, "horizontal", True, j_uncertainty_mv=0.005)
    unsure = LeadST("V3", 0.06, 0.15, 0.15, 0.0, "horizontal", True, j_uncertainty_mv=0.02)
    assert is_elevated(sure, 0.1) and not is_elevated(unsure, 0.1)


def test_v2_v3_thresholds_by_sex_and_age() -> None:
    assert v2_v3_threshold("M", 55)[0] == 0.20
    assert v2_v3_threshold("M", 40)[0] == 0.20
    assert v2_v3_threshold("M", 39)[0] == 0.25
    assert v2_v3_threshold("F", 30)[0] == 0.15
    assert v2_v3_threshold("F", None)[0] == 0.15
    threshold, why = v2_v3_threshold(None, None)
    assert threshold == 0.25 and "conservative" in why
    assert v2_v3_threshold("M", None)[0] == 0.25


def test_anterior_elevation_depends_on_sex_and_age() -> None:
    st = leads(V2=0.22, V3=0.22)
    assert evaluate(st, "M", 60).territories == ("anterior",)
    assert not evaluate(st, "M", 35).stemi
    unknown = evaluate(st)
    assert not unknown.stemi
    assert any("0.25 mV" in r and "conservative" in r for r in unknown.reasons)
    assert evaluate(leads(V2=0.16, V3=0.16), "F", 70).stemi
    assert not evaluate(leads(V2=0.16, V3=0.16), "M", 70).stemi


def test_inferior_elevation_with_reciprocal_depression() -> None:
    found = evaluate(leads(II=0.15, III=0.2, aVF=0.18, aVL=-0.1, I=-0.06))
    assert found.stemi and found.territories == ("inferior",)
    assert set(found.reciprocal) == {"aVL", "I"}
    assert any("II, III, aVF (inferior)" in r for r in found.reasons)
    assert not found.ischemic_depression


def test_one_elevated_lead_or_sub_threshold_is_not_stemi() -> None:
    assert not evaluate(leads(III=0.3)).stemi
    assert not evaluate(leads(II=0.09, III=0.09, aVF=0.09)).stemi
    assert not evaluate(leads(V5=0.12, II=0.12)).stemi  # two leads, but not contiguous


def test_lateral_and_right_ventricle_and_posterior_leads() -> None:
    assert evaluate(leads(I=0.12, aVL=0.15)).territories == ("lateral",)
    extra = leads()
    for name, value in (("V7", 0.06), ("V8", 0.07), ("V9", 0.0), ("V3R", 0.06), ("V4R", 0.07)):
        extra[name] = LeadST(name, value, value, value, 0.0, "horizontal", True)
    found = evaluate(extra, "F", 60)
    assert set(found.territories) == {"posterior", "right_ventricle"}
    assert not evaluate(extra, "M", 25).stemi  # men < 40 / < 30: 0.1 mV


def test_horizontal_depression_is_ischemia_not_stemi() -> None:
    found = evaluate(leads(V4=-0.1, V5=-0.12, V6=-0.08))
    assert not found.stemi
    assert found.ischemic_depression and found.depression_territories == ("lateral",)
    up = {
        name: LeadST(name, v.st_j_mv, 0.05, 0.05, 0.0, "up", True)
        for name, v in leads(V5=-0.12, V6=-0.08).items()
    }
    assert not evaluate(up).ischemic_depression  # upsloping J-point depression is not ischemic


def test_depression_deepest_in_v1_v3_is_posterior_equivalent() -> None:
    found = evaluate(leads(V1=-0.1, V2=-0.15, V3=-0.12, V4=-0.05))
    assert found.stemi and found.territories == ("posterior",)
    assert any("posterior" in r and "V7-V9" in r for r in found.reasons)
    # with flat or negative T waves it is ischemic depression, not a posterior equivalent
    flat_t = evaluate(leads(t_mv=0.05, V1=-0.1, V2=-0.15, V3=-0.12, V4=-0.05))
    assert not flat_t.stemi and flat_t.ischemic_depression
    # deepest in V4-V6: the subendocardial pattern, not posterior
    assert not evaluate(leads(V2=-0.06, V3=-0.08, V4=-0.15, V5=-0.2)).stemi


def test_avr_elevation_with_diffuse_depression_is_its_own_reason() -> None:
    found = evaluate(
        leads(aVR=0.15, I=-0.1, II=-0.12, aVF=-0.1, V3=-0.1, V4=-0.15, V5=-0.15, V6=-0.12)
    )
    assert not found.stemi and found.ischemic_depression
    assert any("aVR" in r and "left main" in r for r in found.reasons)


def test_lbbb_blocks_plain_criteria_and_says_so() -> None:
    found = evaluate(leads(V2=0.4, V3=0.4), "M", 60, confounders=("LBBB",))
    assert not found.stemi and found.territories == ()
    assert any("LBBB" in r and "unreliable" in r for r in found.reasons)


def test_missing_and_unusable_leads_are_named() -> None:
    st = {k: v for k, v in leads(II=0.2, III=0.2).items() if k not in ("V1", "V2", "V3", "V4")}
    st["aVL"] = LeadST("aVL", math.nan, math.nan, math.nan, math.nan, "horizontal", False, "flat")
    st["I"] = LeadST("I", math.nan, math.nan, math.nan, math.nan, "horizontal", False, "flat")
    found = evaluate(st)
    assert found.territories == ("inferior",)
    assert any(n.startswith("anterior criteria not evaluable") for n in found.notes)
    assert not any(n.startswith("lateral") for n in found.notes)  # V5, V6 still usable


def test_confounders_from_qrs_shape() -> None:
    lbbb = {"V1": QrsShape(0.1, 1.5), "I": QrsShape(1.0, 0.1), "V6": QrsShape(1.2, 0.0)}
    assert find_confounders(150.0, lbbb, {}, False, None) == ("LBBB",)
    assert find_confounders(100.0, lbbb, {}, False, None) == ()
    assert find_confounders(150.0, lbbb, {}, True, None) == ("paced",)
    # V1 negative but no tall lateral R (right-ventricular pacing with its spikes unseen)
    paced_like = {"V1": QrsShape(0.1, 1.2), "I": QrsShape(0.4, 0.3), "V6": QrsShape(0.1, 0.3)}
    assert find_confounders(170.0, paced_like, {}, False, None) == ("LBBB-like wide QRS",)
    assert find_confounders(110.0, paced_like, {}, False, None) == ()
    rbbb = {"V1": QrsShape(1.0, 0.2), "I": QrsShape(0.5, 0.4), "V6": QrsShape(0.4, 0.3)}
    assert find_confounders(140.0, rbbb, {}, False, None) == ()
    blocked = evaluate(leads(II=0.2, III=0.2), confounders=("LBBB-like wide QRS",))
    assert not blocked.stemi and any("LBBB-like wide QRS makes" in r for r in blocked.reasons)
    lvh = {"V1": QrsShape(0.2, 2.0), "V5": QrsShape(2.0, 0.1)}
    strain = leads(V5=-0.1, V6=-0.1)
    assert find_confounders(100.0, lvh, strain, False, "M") == ("LVH strain",)
    assert find_confounders(100.0, lvh, leads(), False, "M") == ()


def test_slope_and_sex_parsing() -> None:
    assert classify_slope(-0.1, 0.0) == "up"
    assert classify_slope(-0.1, -0.1) == "horizontal"
    assert classify_slope(-0.05, -0.15) == "down"
    assert normalise_sex("male") == "M" and normalise_sex("Female") == "F"
    with pytest.raises(SignalError, match="sex must be"):
        normalise_sex("x")
    with pytest.raises(SignalError, match="numeric codes differ"):
        normalise_sex(0)  # type: ignore[arg-type]
    assert normalise_sex(math.nan) is None  # type: ignore[arg-type]  # pandas' "missing"
    assert check_age(math.nan) is None and check_age(54) == 54.0
    with pytest.raises(SignalError, match="age must be a number"):
        check_age("old")  # type: ignore[arg-type]


def test_pathological_q_waves_follow_the_fourth_definition() -> None:
    assert pathological_q("V2", QrsShape(0.5, 1.0, q_ms=24.0, q_mv=0.05))  # any Q > 20 ms
    assert not pathological_q("V2", QrsShape(0.5, 1.0, q_ms=16.0, q_mv=0.05))
    assert pathological_q("V3", QrsShape(0.0, 1.2, q_ms=90.0, q_mv=1.2))  # QS
    assert pathological_q("aVF", QrsShape(0.6, 0.1, q_ms=32.0, q_mv=0.15))
    assert not pathological_q("aVF", QrsShape(0.6, 0.1, q_ms=32.0, q_mv=0.05))  # too shallow
    assert not pathological_q("V5", QrsShape(1.5, 0.2, q_ms=20.0, q_mv=0.2))  # septal q
    for normal_qs in ("V1", "III", "aVR"):
        assert not pathological_q(normal_qs, QrsShape(0.0, 1.0, q_ms=90.0, q_mv=1.0))


def test_four_variable_formula_value() -> None:
    """Driver et al. 2017: 1.062 STE60 V3 + 0.052 QTc - 0.151 QRS V2 - 0.268 R V4."""
    early_repolarisation = LadScore(ste60_v3_mm=2.0, qtc_ms=400.0, qrs_v2_mm=15.0, r_v4_mm=10.0)
    assert early_repolarisation.value == pytest.approx(2.124 + 20.8 - 2.265 - 2.68)
    assert early_repolarisation.value < LAD_CUTOFF
    occlusion = LadScore(ste60_v3_mm=3.0, qtc_ms=420.0, qrs_v2_mm=10.0, r_v4_mm=5.0)
    assert occlusion.value == pytest.approx(3.186 + 21.84 - 1.51 - 1.34)
    assert occlusion.value > LAD_CUTOFF


SHAPES = {
    "V2": QrsShape(0.3, 0.7),
    "V3": QrsShape(0.4, 0.6),
    "V4": QrsShape(0.5, 0.5),
    "V5": QrsShape(1.0, 0.2),
    "V6": QrsShape(0.8, 0.1),
}  # small QRS: QRS V2 10 mm, R V4 5 mm


def test_subtle_anterior_elevation_is_flagged_by_the_formula() -> None:
    st = leads(V2=0.18, V3=0.18)  # under 0.2 mV (man >= 40): not by the cut-points
    assert not evaluate(st, "M", 55).stemi
    found = evaluate(st, "M", 55, shapes=SHAPES, qtc_ms=440.0)  # 1.9 + 22.9 - 1.5 - 1.3 = 21.9
    assert found.stemi and found.territories == ("anterior",)
    lad = [r for r in found.reasons if r.startswith("subtle LAD occlusion suspected")]
    assert len(lad) == 1 and "= 21.9 > 18.2" in lad[0]
    assert not evaluate(st, "M", 55, shapes=SHAPES).stemi  # no QTc: formula not applied
    big = SHAPES | {"V2": QrsShape(1.5, 2.5), "V4": QrsShape(2.0, 0.5)}  # 40 mm, 20 mm
    assert not evaluate(st, "M", 55, shapes=big, qtc_ms=440.0).stemi  # early repolarisation


def test_four_variable_formula_only_where_it_was_derived() -> None:
    st = leads(V2=0.18, V3=0.18)
    assert lad_score(st, SHAPES, 440.0, ()) is not None
    assert lad_score(leads(V2=0.08, V3=0.08), SHAPES, 440.0, ()) is None  # no ST elevation
    assert lad_score(st, SHAPES, 440.0, ("LVH strain",)) is None
    inverted = st | {"V5": LeadST("V5", 0.0, 0.0, 0.0, 0.0, "horizontal", True, None, -0.2)}
    assert lad_score(inverted, SHAPES, 440.0, ()) is None  # T-wave inversion in V2-V6
    q_waves = SHAPES | {"V3": QrsShape(0.0, 1.0, q_ms=80.0, q_mv=1.0)}
    assert lad_score(st, q_waves, 440.0, ()) is None  # QS in V3: infarct, not the formula's case


def test_q_waves_in_two_leads_of_a_group_are_reported_not_called_stemi() -> None:
    q_wave = QrsShape(0.8, 0.2, q_ms=40.0, q_mv=0.3)
    shapes = {lead: QrsShape(0.8, 0.2) for lead in LEADS} | {"II": q_wave, "aVF": q_wave}
    found = evaluate(leads(), shapes=shapes)
    assert found.q_wave_territories == ("inferior",) and not found.stemi
    assert any(r.startswith("pathological Q waves in II, aVF (inferior)") for r in found.reasons)
    one = {lead: QrsShape(0.8, 0.2) for lead in LEADS} | {"II": q_wave}
    assert evaluate(leads(), shapes=one).q_wave_territories == ()
    assert evaluate(leads(), shapes=shapes, confounders=("LBBB",)).q_wave_territories == ()
