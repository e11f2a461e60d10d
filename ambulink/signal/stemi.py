"""STEMI criteria on per-lead ST deviations (Fourth Universal Definition of MI, 2018).

- ST elevation in >= 2 leads of one contiguous group: >= 0.1 mV in all leads other than
  V2-V3; V2-V3 >= 0.2 mV men >= 40 y, >= 0.25 mV men < 40 y, >= 0.15 mV women (without
  sex/age the conservative 0.25 mV, said in the reasons). Posterior leads V7-V9 >= 0.05 mV
  (0.1 mV men < 40 y); right-sided V3R/V4R >= 0.05 mV (0.1 mV men < 30 y).
  A lead counts as elevated when its ST segment is (``is_elevated``): the level at J+60 ms
  reaches the threshold and the level at the J point reaches half of it. The J point alone
  sits on the end of the QRS, where a J wave or slur (early repolarisation) or a QRS end
  placed a few ms early reads as "elevation" that is gone 20-40 ms later; J+60 alone counts
  the normal upsloping ST of V2-V3 rising into a tall T. docs/signal.md lists the variants.
- Ischemic ST depression: >= 0.05 mV at the J point, horizontal or downsloping, in >= 2 leads
  of a group; its own finding, never STEMI (subendocardial injury). ST depression in V1-V3,
  deepest there, with positive T waves is a posterior STEMI equivalent (the mirror image of
  posterior ST elevation); ST elevation in aVR with diffuse depression is reported on its own.
- Subtle anterior STEMI: ST elevation in V2-V4 that stays under the cut-points is scored with
  the 4-variable formula of Driver, Smith et al. (J Electrocardiol 2017;50:561-569), which
  tells early repolarisation from LAD occlusion: 1.062 STE60 V3 + 0.052 QTc - 0.151 QRS V2
  - 0.268 R V4 (mm, ms) > 18.2. It is applied only where it was derived: >= 0.1 mV ST
  elevation in one of V2-V4, no T-wave inversion in V2-V6, no pathological Q wave in V2-V4,
  no LBBB, pacing or LVH strain.
- LBBB and ventricular pacing make the criteria unreliable: no STEMI is called by them.

Pure logic on numbers (mV); the measurements come from ``ambulink.signal.st``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from ambulink.errors import SignalError

Slope = Literal["up", "horizontal", "down"]
Sex = Literal["M", "F"]

GROUPS: dict[str, tuple[str, ...]] = {
    "inferior": ("II", "III", "aVF"),
    "lateral": ("I", "aVL", "V5", "V6"),
    "anterior": ("V1", "V2", "V3", "V4"),
    "posterior": ("V7", "V8", "V9"),
    "right_ventricle": ("V3R", "V4R"),
}
DEPRESSION_MV = 0.05
DIFFUSE_DEPRESSION_LEADS = 6  # aVR elevation counts with depression in at least this many leads
UPSLOPE_MV_PER_S = 1.0  # ST rising faster than this (J -> J+80 ms) is upsloping
DOWNSLOPE_MV_PER_S = -0.5  # falling faster than this is downsloping
J_SHARE = 0.5  # the J point must reach this share of the threshold J+60 ms must reach
POSTERIOR_T_MV = 0.10  # positive T wave of a posterior STEMI equivalent in V1-V3
LAD_CUTOFF = 18.2  # 4-variable formula: above this, LAD occlusion rather than early repolarisation
LAD_MIN_STE_MV = 0.10  # ... applied when ST elevation (J+60 ms) reaches this in one of V2-V4
T_INVERTED_MV = -0.05  # a T wave this far below the PR level is inverted
QS_R_MV = 0.05  # a QRS whose R wave stays under this (with an S wave of >= 0.1 mV) is QS
MIN_Q_MV = 0.05  # the shallowest initial dip read as a Q wave in V2-V3
LBBB = "LBBB"
LBBB_LIKE = "LBBB-like wide QRS"
PACED = "paced"
BLOCKING = (LBBB, LBBB_LIKE, PACED)  # confounders under which no STEMI is called


@dataclass(frozen=True, slots=True)
class LeadST:
    """ST measurement of one lead's median beat, mV relative to the PR baseline (NaN when not
    evaluable). ``baseline_mv`` is the PR level of the median beat before subtraction;
    ``t_mv`` the T-wave peak (largest deviation from J+80 to J+350 ms, signed; NaN unknown);
    ``j_uncertainty_mv`` how far the J-point level can move when the J point moves by half a
    sample of the recording (the slope there times that time)."""

    lead: str
    st_j_mv: float
    st_j60_mv: float
    st_j80_mv: float
    baseline_mv: float
    slope: Slope
    evaluable: bool
    reason: str | None = None
    t_mv: float = math.nan
    j_uncertainty_mv: float = 0.0


@dataclass(frozen=True, slots=True)
class Findings:
    """What the criteria say about a set of per-lead ST deviations."""

    stemi: bool
    territories: tuple[str, ...]
    reciprocal: tuple[str, ...]
    ischemic_depression: bool
    depression_territories: tuple[str, ...]
    reasons: tuple[str, ...]
    notes: tuple[str, ...]
    q_wave_territories: tuple[str, ...] = ()


def classify_slope(st_j_mv: float, st_j80_mv: float) -> Slope:
    """ST slope from J to J+80 ms: up above 1 mV/s, down below -0.5 mV/s, else horizontal."""
    rate = (st_j80_mv - st_j_mv) / 0.080
    if rate > UPSLOPE_MV_PER_S:
        return "up"
    if rate < DOWNSLOPE_MV_PER_S:
        return "down"
    return "horizontal"


def _missing(value: object) -> bool:
    """None, or a float NaN (how pandas and CSV readers spell "not recorded")."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def normalise_sex(sex: str | None) -> Sex | None:
    """Sex as "M" or "F" from "M"/"male"/"F"/"female" (any case); None (or NaN) is unknown."""
    if _missing(sex):
        return None
    if not isinstance(sex, str):
        raise SignalError(
            f"sex must be 'M', 'F', 'male', 'female' or None, got {sex!r} "
            "(numeric codes differ between databases: PTB-XL uses 0 for male, 1 for female)"
        )
    key = sex.strip().lower()
    if key in ("m", "male", "man"):
        return "M"
    if key in ("f", "female", "woman"):
        return "F"
    raise SignalError(f"sex must be 'M', 'F', 'male', 'female' or None, got {sex!r}")


def check_age(age: float | None) -> float | None:
    """Age in years, None (or NaN) when unknown."""
    if _missing(age):
        return None
    try:
        value = float(age)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise SignalError(f"age must be a number of years or None, got {age!r}") from None
    if not math.isfinite(value) or not 0.0 <= value <= 130.0:
        raise SignalError(f"age must be 0-130 years or None, got {age!r}")
    return value


def v2_v3_threshold(sex: Sex | None, age: float | None) -> tuple[float, str]:
    """ST-elevation threshold (mV) for V2-V3 and a plain-words note on how it was chosen."""
    if sex == "F":
        return 0.15, "V2-V3 threshold 0.15 mV used (woman)"
    if sex == "M" and age is not None:
        if age >= 40:
            return 0.20, "V2-V3 threshold 0.2 mV used (man ≥ 40 y)"
        return 0.25, "V2-V3 threshold 0.25 mV used (man < 40 y)"
    missing = "sex/age not given" if sex is None else "age not given"
    return 0.25, f"V2-V3 threshold 0.25 mV used: {missing} (conservative)"


def elevation_threshold(lead: str, sex: Sex | None, age: float | None) -> float:
    """ST elevation (mV) at the J point that counts in ``lead``."""
    if lead in ("V2", "V3"):
        return v2_v3_threshold(sex, age)[0]
    if lead in GROUPS["posterior"]:
        return 0.10 if sex == "M" and age is not None and age < 40 else 0.05
    if lead in GROUPS["right_ventricle"]:
        return 0.10 if sex == "M" and age is not None and age < 30 else 0.05
    return 0.10


def _names(leads: list[str]) -> str:
    return ", ".join(leads)


def _mv(value: float) -> str:
    return f"{value:g}"


def is_elevated(st: LeadST, threshold: float) -> bool:
    """ST elevation that counts: >= ``threshold`` at J+60 ms and >= half of it at J, beyond
    the J-point level's uncertainty (at 100 Hz half a sample is 5 ms, and a J point on the
    steep end of an S wave moves its level by a tenth of a mV)."""
    return (
        st.evaluable
        and st.st_j60_mv >= threshold
        and st.st_j_mv - st.j_uncertainty_mv >= J_SHARE * threshold
    )


def is_depressed(st: LeadST) -> bool:
    """Ischemic-type depression: >= 0.05 mV at the J point, horizontal or downsloping."""
    return st.evaluable and st.st_j_mv <= -DEPRESSION_MV and st.slope != "up"


def evaluate(
    per_lead: Mapping[str, LeadST],
    sex: Sex | None = None,
    age: float | None = None,
    confounders: tuple[str, ...] = (),
    shapes: Mapping[str, QrsShape] | None = None,
    qtc_ms: float = math.nan,
) -> Findings:
    """Apply the criteria to ``per_lead`` (canonical lead names -> measurements); ``shapes``
    (QRS per lead) and ``qtc_ms`` feed the subtle-anterior formula, skipped without them."""
    reasons: list[str] = []
    notes: list[str] = []
    ok = {name: st for name, st in per_lead.items() if st.evaluable}
    elevated_by_group: dict[str, list[str]] = {}
    for territory, group in GROUPS.items():
        present = [lead for lead in group if lead in per_lead]
        usable = [lead for lead in group if lead in ok]
        if not present:
            if territory in ("posterior", "right_ventricle"):
                continue  # not recorded: a 12-lead ECG has none
            notes.append(f"{territory} criteria not evaluable: none of {_names(list(group))}")
            continue
        if len(usable) < 2:
            notes.append(
                f"{territory} criteria not evaluable: fewer than 2 usable leads of "
                f"{_names(list(group))}"
            )
        elevated = [
            lead for lead in usable if is_elevated(ok[lead], elevation_threshold(lead, sex, age))
        ]
        if len(elevated) >= 2:
            elevated_by_group[territory] = elevated
    if any(lead in per_lead for lead in ("V2", "V3")):
        reasons.append(v2_v3_threshold(sex, age)[1])

    lad = None
    if "anterior" not in elevated_by_group and shapes is not None:
        score = lad_score(ok, shapes, qtc_ms, confounders)
        lad = score if score is not None and score.value > LAD_CUTOFF else None
    if lad is not None:
        elevated_by_group["anterior"] = [
            lead for lead in ("V2", "V3", "V4") if ok[lead].st_j60_mv >= LAD_MIN_STE_MV
        ]

    depressed = [name for name, st in ok.items() if is_depressed(st)]
    posterior_equivalent = _posterior_equivalent(ok, depressed)
    if posterior_equivalent and "posterior" not in elevated_by_group:
        elevated_by_group["posterior"] = posterior_equivalent

    blocking = [c for c in confounders if c in BLOCKING]
    territories: tuple[str, ...] = ()
    if elevated_by_group and blocking:
        leads = [lead for group in elevated_by_group.values() for lead in group]
        reasons.append(
            f"ST elevation in {_names(leads)} not called STEMI: {' and '.join(blocking)} makes "
            "the ST criteria unreliable (consider Sgarbossa criteria and clinical context)"
        )
    elif elevated_by_group:
        territories = tuple(elevated_by_group)
        for territory, leads in elevated_by_group.items():
            if territory == "posterior" and leads == posterior_equivalent:
                reasons.append(
                    f"ST depression ≥ 0.05 mV in {_names(leads)}, deepest in V1-V3, with "
                    "positive T waves: posterior STEMI equivalent suspected (record V7-V9 to "
                    "confirm)"
                )
                continue
            if territory == "anterior" and lad is not None:
                reasons.append(
                    "subtle LAD occlusion suspected (anterior): the 4-variable formula "
                    f"1.062 STE60 V3 {lad.ste60_v3_mm:.1f} mm + 0.052 QTc {lad.qtc_ms:.0f} ms "
                    f"- 0.151 QRS V2 {lad.qrs_v2_mm:.1f} mm - 0.268 R V4 {lad.r_v4_mm:.1f} mm "
                    f"= {lad.value:.1f} > {LAD_CUTOFF:g} favours it over early repolarisation; "
                    f"ST elevation in {_names(leads)} is under the cut-points"
                )
                continue
            least = min(elevation_threshold(lead, sex, age) for lead in leads)
            reasons.append(
                f"ST elevation ≥ {_mv(least)} mV at J+60 ms (≥ {_mv(J_SHARE * least)} mV at the "
                f"J point) in {_names(leads)} ({territory.replace('_', ' ')})"
            )
    for confounder in confounders:
        if confounder not in blocking:
            reasons.append(f"{confounder} present: ST criteria less reliable")
    stemi = bool(territories)

    depression_territories = tuple(
        territory
        for territory in ("inferior", "lateral", "anterior")
        if sum(lead in depressed for lead in GROUPS[territory]) >= 2
    )
    reciprocal: tuple[str, ...] = ()
    if stemi:
        in_stemi = {lead for t in territories for lead in GROUPS[t]} | set(posterior_equivalent)
        reciprocal = tuple(
            name
            for name, st in ok.items()
            if name not in in_stemi and name != "aVR" and st.st_j_mv <= -DEPRESSION_MV
        )
        if reciprocal:
            reasons.append(f"reciprocal ST depression in {_names(list(reciprocal))}")
    ischemic = bool(depression_territories) and not stemi
    if ischemic:
        leads = [
            lead for lead in depressed if any(lead in GROUPS[t] for t in depression_territories)
        ]
        reasons.append(
            f"ischemic ST depression ≥ 0.05 mV (horizontal/downsloping) in {_names(leads)} "
            f"({', '.join(depression_territories)}): not STEMI criteria"
        )
    avr = ok.get("aVR")
    diffuse = [lead for lead in ok if lead != "aVR" and ok[lead].st_j_mv <= -DEPRESSION_MV]
    if avr is not None and avr.st_j_mv >= 0.10 and len(diffuse) >= DIFFUSE_DEPRESSION_LEADS:
        reasons.append(
            f"ST elevation in aVR ({avr.st_j_mv:.2f} mV) with ST depression in {len(diffuse)} "
            "leads: left main / multivessel ischemia suspected"
        )
    if not stemi and not ischemic and not blocking and ok:
        reasons.append("no lead group meets ST-elevation or ischemic ST-depression criteria")
    q_waves = {} if shapes is None or blocking else _q_wave_groups(ok, shapes)
    if q_waves:
        where = "; ".join(f"{_names(leads)} ({territory})" for territory, leads in q_waves.items())
        reasons.append(
            f"pathological Q waves in {where}: infarction of undetermined age (an older ECG "
            "tells old from new)"
        )
    return Findings(
        stemi=stemi,
        territories=territories,
        reciprocal=reciprocal,
        ischemic_depression=ischemic,
        depression_territories=depression_territories,
        reasons=tuple(reasons),
        notes=tuple(notes),
        q_wave_territories=tuple(q_waves),
    )


def _q_wave_groups(
    ok: Mapping[str, LeadST], shapes: Mapping[str, QrsShape]
) -> dict[str, list[str]]:
    """Territories with pathological Q waves (``pathological_q``) in >= 2 of their usable
    leads, the Fourth Universal Definition's ECG sign of prior (or evolving) infarction; not
    read with LBBB or pacing, which make Q waves meaningless."""
    found: dict[str, list[str]] = {}
    for territory in ("inferior", "lateral", "anterior"):
        leads = [
            lead
            for lead in GROUPS[territory]
            if lead in ok and lead in shapes and pathological_q(lead, shapes[lead])
        ]
        if len(leads) >= 2:
            found[territory] = leads
    return found


def _posterior_equivalent(ok: Mapping[str, LeadST], depressed: list[str]) -> list[str]:
    """V1-V3 leads with ischemic depression and a positive T wave (>= 0.1 mV) when >= 2 of
    them have it and the depression is deepest there (deeper than in any of V4-V6): a
    posterior STEMI equivalent (Fourth Universal Definition: "especially when the terminal
    T wave is positive"). Depression deepest in V4-V6, or with flat or negative T waves, is
    the subendocardial pattern instead."""
    v1_v3: list[str] = [
        lead for lead in ("V1", "V2", "V3") if lead in depressed and ok[lead].t_mv >= POSTERIOR_T_MV
    ]
    if len(v1_v3) < 2:
        return []
    deepest = min(ok[lead].st_j_mv for lead in v1_v3)
    others = [ok[lead].st_j_mv for lead in ("V4", "V5", "V6") if lead in ok]
    return v1_v3 if all(deepest < value for value in others) else []


@dataclass(frozen=True, slots=True)
class QrsShape:
    """QRS of one lead's median beat: largest positive (R) and negative (S) deflection from
    the PR baseline (mV, both >= 0), and the initial negative deflection (Q wave: duration in
    ms, depth in mV; 0 when the QRS starts upwards)."""

    r_mv: float
    s_mv: float
    q_ms: float = 0.0
    q_mv: float = 0.0

    @property
    def qs(self) -> bool:
        return self.r_mv < QS_R_MV and self.s_mv >= 0.10


def pathological_q(lead: str, shape: QrsShape) -> bool:
    """Q wave that the Fourth Universal Definition counts as a sign of infarction: in V2-V3
    any Q wave > 20 ms or QS; in I, II, aVL, aVF and V4-V6 a Q wave >= 30 ms and >= 0.1 mV
    deep, or QS (III, aVR and V1 have Q or QS complexes in normal hearts). "Any" Q wave in
    V2-V3 is taken as one of at least ``MIN_Q_MV``: shallower dips are baseline noise."""
    if lead in ("V2", "V3"):
        return shape.qs or (shape.q_ms > 20.0 and shape.q_mv >= MIN_Q_MV)
    if lead in ("I", "II", "aVL", "aVF", "V4", "V5", "V6"):
        return shape.qs or (shape.q_ms >= 30.0 and shape.q_mv >= 0.10)
    return False


@dataclass(frozen=True, slots=True)
class LadScore:
    """The 4-variable formula's inputs (mm and ms, as published) and its value."""

    ste60_v3_mm: float
    qtc_ms: float
    qrs_v2_mm: float
    r_v4_mm: float

    @property
    def value(self) -> float:
        return (
            1.062 * self.ste60_v3_mm
            + 0.052 * self.qtc_ms
            - 0.151 * self.qrs_v2_mm
            - 0.268 * self.r_v4_mm
        )


def lad_score(
    ok: Mapping[str, LeadST],
    shapes: Mapping[str, QrsShape],
    qtc_ms: float,
    confounders: tuple[str, ...],
) -> LadScore | None:
    """The 4-variable formula where it applies (see the module docstring), else None."""
    if confounders or not math.isfinite(qtc_ms):
        return None
    if any(lead not in ok or lead not in shapes for lead in ("V2", "V3", "V4")):
        return None
    if max(ok[lead].st_j60_mv for lead in ("V2", "V3", "V4")) < LAD_MIN_STE_MV:
        return None
    inverted = [
        lead
        for lead in ("V2", "V3", "V4", "V5", "V6")
        if lead in ok and not ok[lead].t_mv > T_INVERTED_MV  # NaN (no T found) counts too
    ]
    if inverted or any(pathological_q(lead, shapes[lead]) for lead in ("V2", "V3", "V4")):
        return None
    v2 = shapes["V2"]
    return LadScore(
        ste60_v3_mm=10.0 * ok["V3"].st_j60_mv,
        qtc_ms=qtc_ms,
        qrs_v2_mm=10.0 * (v2.r_mv + v2.s_mv),
        r_v4_mm=10.0 * shapes["V4"].r_mv,
    )


def find_confounders(
    qrs_ms: float,
    shapes: Mapping[str, QrsShape],
    per_lead: Mapping[str, LeadST],
    paced: bool,
    sex: Sex | None,
) -> tuple[str, ...]:
    """Confounders among "LBBB", "LBBB-like wide QRS", "paced", "LVH strain" from the QRS
    width (ms) and shapes.

    LBBB: QRS >= 120 ms, V1 mainly negative (QS/rS) and I, V5 or V6 mainly positive.
    LBBB-like wide QRS: QRS >= 120 ms and V1 mainly negative without LBBB's lateral R waves:
    a right-ventricular paced beat whose spike the recording lost (at 250 Hz and below a spike
    of 1-2 ms is filtered to the sharpness of a QRS), a ventricular rhythm, or an atypical
    LBBB. Its ST deviation is secondary too.
    LVH strain: Sokolow-Lyon (S V1 + R V5/V6 >= 3.5 mV) or Cornell (R aVL + S V3 > 2.8 mV men,
    2.0 mV women) voltage with ischemic-type ST depression in a lateral lead.
    """
    found: list[str] = []
    if paced:
        found.append(PACED)
    v1 = shapes.get("V1")
    lateral = [shapes[lead] for lead in ("I", "V5", "V6") if lead in shapes]
    if not paced and qrs_ms >= 120.0 and v1 is not None and v1.s_mv > v1.r_mv:
        found.append(LBBB if any(s.r_mv > 2.0 * s.s_mv for s in lateral) else LBBB_LIKE)
    sokolow = cornell = False
    if v1 is not None and ("V5" in shapes or "V6" in shapes):
        r_v56 = max(shapes[lead].r_mv for lead in ("V5", "V6") if lead in shapes)
        sokolow = v1.s_mv + r_v56 >= 3.5
    if "aVL" in shapes and "V3" in shapes:
        cornell = shapes["aVL"].r_mv + shapes["V3"].s_mv > (2.0 if sex == "F" else 2.8)
    strain = any(
        lead in per_lead and is_depressed(per_lead[lead]) for lead in ("I", "aVL", "V5", "V6")
    )
    if (sokolow or cornell) and strain and LBBB not in found and LBBB_LIKE not in found:
        found.append("LVH strain")
    return tuple(found)
