"""STEMI scoring and the J-point check, with stand-in analysis results."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from ambulink.evaluation.st_jpoint import (
    ErrorSummary,
    MarkedBeat,
    QrsMark,
    group_beats,
    jpoint_errors,
    qrs_marks,
)
from ambulink.evaluation.st_records import list_cases, read_delineation
from ambulink.evaluation.st_reference import Group, StReference
from ambulink.evaluation.st_scoring import RecordOutcome, reason_key, score


@dataclass(frozen=True)
class Found:
    """Stands for ambulink.signal.st.STResult in the pure scoring layer."""

    stemi: bool
    territories: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    ischemic_depression: bool = False
    confounders: tuple[str, ...] = ()
    evaluable: bool = True
    why_not: str | None = None


REFERENCES = [
    StReference(Group.STEMI, ("inferior", "lateral")),
    StReference(Group.STEMI, ("anterior",)),
    StReference(Group.NORMAL),
    StReference(Group.NORMAL),
    StReference(Group.NORMAL),
    StReference(Group.OLD_MI),
    StReference(Group.SUBENDOCARDIAL),
]


def outcomes(found: list[Found]) -> list[RecordOutcome]:
    return [
        RecordOutcome.of("test", str(i), ref, f)
        for i, (ref, f) in enumerate(zip(REFERENCES, found, strict=True))
    ]


def test_a_perfect_analysis_scores_100_percent() -> None:
    found = [
        Found(True, ("inferior", "lateral"), ("ST elevation ≥ 0.1 mV in II, III, aVF (inferior)",)),
        Found(True, ("anterior",), ("ST elevation ≥ 0.2 mV in V2, V3 (anterior)",)),
        Found(False),
        Found(False),
        Found(False),
        Found(False),
        Found(False, ischemic_depression=True),
    ]
    scored = score(outcomes(found))
    assert (scored.se, scored.sp) == (1.0, 1.0)
    assert scored.not_flagged(Group.OLD_MI) == 1.0
    assert scored.groups[Group.SUBENDOCARDIAL].depression == 1
    assert scored.territory.with_reference == 2
    assert (scored.territory.overlap, scored.territory.all_found) == (2, 2)
    assert scored.reasons == {"ST elevation": 2}
    data = scored.as_dict()
    assert data["se"] == 1.0
    assert data["groups"]["normal"] == {  # type: ignore[index]
        "records": 3,
        "stemi": 0,
        "no_stemi": 3,
        "ischemic_depression": 0,
        "not_evaluable": 0,
    }


def test_territory_counts_come_out_in_name_order_whatever_the_set_order() -> None:
    """Counted from sets (whose order follows string hashing, which changes between runs),
    they are written sorted, so two runs' JSON are the same bytes."""
    found = [Found(True, ("posterior", "lateral", "inferior"))] * 2 + [Found(False)] * 5
    territory = score(outcomes(found)).as_dict()["territory"]
    assert list(territory["named"]) == ["anterior", "inferior", "lateral"]  # type: ignore[index]
    assert list(territory["extra"]) == ["inferior", "lateral", "posterior"]  # type: ignore[index]


def test_flagging_everything_gives_no_specificity() -> None:
    scored = score(outcomes([Found(True, ("anterior",))] * len(REFERENCES)))
    assert scored.se == 1.0
    assert scored.sp == 0.0
    assert scored.not_flagged(Group.OLD_MI) == 0.0
    assert scored.not_flagged(Group.SUBENDOCARDIAL) == 0.0
    # the inferior-lateral positive is flagged, but in the wrong territory
    assert (scored.territory.flagged, scored.territory.overlap) == (2, 1)
    assert scored.territory.extra["anterior"] == 1


def test_not_evaluable_records_count_as_not_flagged_and_are_listed() -> None:
    mute = Found(False, evaluable=False, why_not="every lead is flat")
    scored = score(outcomes([mute] * len(REFERENCES)))
    assert scored.se == 0.0
    assert scored.sp == 1.0
    assert scored.groups[Group.STEMI].not_evaluable == 2
    assert scored.why_not == {"every lead is flat": 7}
    assert score([]).se is None


def test_reason_keys_drop_numbers_and_leads_but_keep_lead_names_in_the_text() -> None:
    assert reason_key("ST elevation ≥ 0.1 mV in II, III, aVF (inferior)") == "ST elevation"
    assert reason_key("V2-V3 threshold 0.2 mV used (man ≥ 40 y)") == "V2-V3 threshold used (man)"
    assert reason_key("not evaluable: every lead is flat") == "not evaluable"
    assert reason_key("LBBB present: ST criteria less reliable") == "LBBB present"
    both = Found(False, reasons=("ST depression in V1", "ST depression in V2"))
    assert score(outcomes([both] * len(REFERENCES))).reasons == {"ST depression": 7}


def test_qrs_marks_pair_each_peak_with_its_offset() -> None:
    samples = [10, 20, 30, 40, 50, 60, 70, 80, 90]
    symbols = ["(", "p", ")", "(", "N", ")", "(", "t", ")"]
    assert qrs_marks(samples, symbols) == [QrsMark(50, 60)]
    assert qrs_marks([5, 6], ["N", "("]) == []


def test_marks_of_one_beat_in_several_leads_are_grouped() -> None:
    marks = {
        "I": [QrsMark(1000, 1040), QrsMark(1500, 1545)],
        "II": [QrsMark(1010, 1044), QrsMark(1505, 1541)],
        "V1": [QrsMark(1020, 1050)],
    }
    beats = group_beats(marks, 500.0)
    assert beats == [
        MarkedBeat(1010.0, 1044.0, {"I": 1040, "II": 1044, "V1": 1050}),
        MarkedBeat(1502.5, 1543.0, {"I": 1545, "II": 1541}),
    ]
    # R peaks at 1008 and 1502 with a J point 70 ms (35 samples) after them
    errors = jpoint_errors(beats, [1008, 1502, 3000], 70.0, 500.0)
    assert errors.beats_ms == [pytest.approx(-2.0), pytest.approx(-12.0)]
    assert errors.per_lead_ms["I"] == [pytest.approx(6.0), pytest.approx(-16.0)]
    assert errors.unmatched == 0
    assert jpoint_errors(beats, [], 70.0, 500.0).unmatched == 2
    assert jpoint_errors(beats, [1200], 70.0, 500.0).unmatched == 2  # > 150 ms away


def test_error_summary() -> None:
    summary = ErrorSummary.of([-4.0, 2.0, 6.0, -30.0])
    assert summary.n == 4
    assert summary.median_abs_ms == 5.0
    assert summary.median_ms == -1.0
    assert summary.p95_abs_ms == pytest.approx(26.4)
    assert not summary.meets_goal
    assert ErrorSummary.of([1.0, -2.0]).meets_goal
    assert ErrorSummary.of([]) == ErrorSummary(0, None, None, None)


def test_ludb_marks_of_record_21_group_into_beats(shared_ecg: Path) -> None:
    case = next(c for c in list_cases(shared_ecg / "ludb") if c.name == "21")
    leads = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    marks = read_delineation(case, leads)
    assert set(marks) == set(leads)
    beats = group_beats(marks, 500.0)
    assert len(beats) >= 8  # ~10 s at a normal rate, the record's ends left unmarked
    assert all(len(b.lead_offsets) == 12 for b in beats)
    widths_ms = [(b.offset - b.peak) * 2.0 for b in beats]
    assert all(10.0 < w < 120.0 for w in widths_ms)  # peak to QRS end
