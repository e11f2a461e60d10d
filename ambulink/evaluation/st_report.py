"""Plain-text tables of ``ambulink eval st`` results (the JSON output is for machines)."""

from __future__ import annotations

import textwrap
from collections import Counter

from ambulink.evaluation.report import num, pct, table
from ambulink.evaluation.st_evaluate import StEvaluation
from ambulink.evaluation.st_jpoint import JPOINT_MEDIAN_GOAL_MS, JPOINT_P95_GOAL_MS, ErrorSummary
from ambulink.evaluation.st_records import STANDARD_LEADS
from ambulink.evaluation.st_reference import GROUP_TITLES, Group
from ambulink.evaluation.st_scoring import TERRITORIES, RecordOutcome, StScore

MIN_SP = 0.95  # issue 4: specificity on normal ECGs
GOAL_SE, GOAL_SP = 0.90, 0.88  # DESIGN §5, acute ST-elevation MI vs normals


def _fraction(part: int, whole: int) -> str:
    return f"{pct(part / whole if whole else None)} % ({part}/{whole})"


def group_table(scored: StScore) -> str:
    headers = ["reference group", "records", "STEMI", "no STEMI", "ST depression", "not evaluable"]
    rows = [
        [
            GROUP_TITLES[group],
            str(t.records),
            str(t.stemi),
            str(t.no_stemi),
            str(t.depression),
            str(t.not_evaluable),
        ]
        for group, t in scored.groups.items()
    ]
    return table(headers, rows)


def headline(scored: StScore) -> list[str]:
    g = scored.groups
    positives, normals = g[Group.STEMI], g[Group.NORMAL]
    old, injury = g[Group.OLD_MI], g[Group.SUBENDOCARDIAL]
    return [
        f"Se {_fraction(positives.stemi, positives.records)} of acute STEMI flagged; "
        f"Sp {_fraction(normals.no_stemi, normals.records)} of normals not flagged",
        f"old MI not flagged as STEMI: {_fraction(old.no_stemi, old.records)}",
        f"subendocardial injury not flagged as STEMI: {_fraction(injury.no_stemi, injury.records)}"
        f"; flagged as ischemic ST depression: {_fraction(injury.depression, injury.records)}",
    ]


def dataset_table(evaluation: StEvaluation) -> str:
    headers = ["dataset", "records", "positives", "Se %", "normals", "Sp %", "old MI", "subendo."]
    rows = []
    for name, scored in evaluation.by_dataset().items():
        g = scored.groups
        rows.append(
            [
                name,
                str(scored.records),
                str(g[Group.STEMI].records),
                pct(scored.se),
                str(g[Group.NORMAL].records),
                pct(scored.sp),
                f"{g[Group.OLD_MI].stemi}/{g[Group.OLD_MI].records} flagged",
                f"{g[Group.SUBENDOCARDIAL].stemi}/{g[Group.SUBENDOCARDIAL].records} flagged",
            ]
        )
    return table(headers, rows)


def territory_lines(scored: StScore) -> list[str]:
    t = scored.territory
    if not t.with_reference:
        return ["territory agreement: no positive with a reference territory"]
    rows = [
        [name, str(t.named[name]), str(t.found[name]), str(t.extra[name])]
        for name in TERRITORIES
        if t.named[name] or t.extra[name]
    ]
    return [
        f"territory agreement on {t.with_reference} positives with a reference territory: "
        f"flagged {t.flagged}, sharing a territory {t.overlap}, all reference territories "
        f"found {t.all_found}",
        "",
        table(["territory", "in reference", "found", "found, not in reference"], rows),
    ]


def _counts(title: str, counter: Counter[str], empty: str) -> list[str]:
    if not counter:
        return [f"{title}: {empty}"]
    rows = [[text, str(n)] for text, n in counter.most_common()]
    return [f"{title}:", "", table(["text", "records"], rows)]


def jpoint_lines(evaluation: StEvaluation) -> list[str]:
    summary, errors = evaluation.jpoint_summary(), evaluation.jpoint
    if summary is None or errors is None:
        return []

    def cells(name: str, e: ErrorSummary) -> list[str]:
        return [name, str(e.n), num(e.median_abs_ms), num(e.p95_abs_ms), num(e.median_ms)]

    goal = "met" if summary.meets_goal else "NOT met"
    by_lead = evaluation.jpoint_per_lead()
    order = [lead for lead in STANDARD_LEADS.values() if lead in by_lead]
    per_lead = [cells(f"lead {lead}", by_lead[lead]) for lead in order]
    return [
        textwrap.fill(
            f"J point against LUDB's hand-marked QRS offsets, {evaluation.jpoint_records} "
            "records: error = our R peak + j_offset_ms minus the median of the leads' marked "
            f"offsets of that beat; {errors.unmatched} marked beats had no R peak of ours "
            f"within 150 ms. Goal median ≤ {JPOINT_MEDIAN_GOAL_MS:g} ms and 95th percentile "
            f"≤ {JPOINT_P95_GOAL_MS:g} ms: {goal}.",
            100,
        ),
        "",
        table(
            ["reference", "beats", "median |err| ms", "p95 |err| ms", "median err ms"],
            [cells("median of leads", summary), *per_lead],
        ),
    ]


def record_table(outcomes: list[RecordOutcome]) -> str:
    headers = [
        "dataset",
        "record",
        "group",
        "ref. territory",
        "STEMI",
        "territory",
        "ST dep.",
        "note",
    ]
    rows = [
        [
            o.dataset,
            o.name,
            o.reference.group.value,
            ",".join(o.reference.territories) or "-",
            "yes" if o.stemi else "no",
            ",".join(o.territories) or "-",
            "yes" if o.ischemic_depression else "no",
            "" if o.evaluable else f"not evaluable: {o.why_not}",
        ]
        for o in outcomes
    ]
    return table(headers, rows, left=len(headers))


def format_st(evaluation: StEvaluation, verbose: bool = False) -> str:
    scored = evaluation.gross
    s = evaluation.settings
    folders = ", ".join(f"{d} ({path})" for path, d in evaluation.datasets.items())
    excerpt = f"the first {s.seconds:g} s" if s.seconds is not None else "the whole"
    lines = [
        textwrap.fill(
            f"STEMI detection on {scored.records} records of {folders}; {excerpt} of each "
            "record analysed. Positives are acute MI with ST elevation, negatives normal "
            "ECGs; a record the analysis could not evaluate counts as not flagged.",
            100,
        ),
        "",
    ]
    if verbose:
        lines += [record_table(evaluation.outcomes), ""]
    lines += [group_table(scored), "", *headline(scored), ""]
    if len(evaluation.datasets) > 1:
        lines += [dataset_table(evaluation), ""]
    lines += [*territory_lines(scored), ""]
    lines += [*_counts("reasons given (numbers and leads left out)", scored.reasons, "none"), ""]
    lines += [*_counts("confounders reported", scored.confounders, "none"), ""]
    lines += [*_counts("not evaluable", scored.why_not, "every record was evaluable"), ""]
    lines += [*jpoint_lines(evaluation), ""]
    lines += ["bars (DESIGN §5, issue 4):", *bars(scored)]
    return "\n".join(lines).rstrip()


def bars(scored: StScore) -> list[str]:
    """DESIGN §5 and issue 4 STEMI bars, each marked met / not met (or not measured)."""

    def mark(value: float | None, bar: float) -> str:
        return "not measured" if value is None else ("met" if value >= bar else "NOT met")

    injury = scored.not_flagged(Group.SUBENDOCARDIAL)
    return [
        f"- Sp ≥ {100 * MIN_SP:g} % on normal records: {mark(scored.sp, MIN_SP)}",
        f"- Se ≥ {100 * GOAL_SE:g} % at Sp ≥ {100 * GOAL_SP:g} %: "
        + (
            "not measured"
            if scored.se is None or scored.sp is None
            else ("met" if scored.se >= GOAL_SE and scored.sp >= GOAL_SP else "NOT met")
        )
        + " (the goal is for a larger private set)",
        f"- subendocardial injury not flagged as STEMI: {mark(injury, 1.0)}",
    ]
