"""Plain-text tables of evaluation results, for people (the JSON output is for machines)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from ambulink.evaluation.beat_scoring import DET_COLUMNS, REF_ROWS, ConfusionMatrix
from ambulink.evaluation.evaluate import (
    BeatEvaluation,
    EvalSettings,
    QrsEvaluation,
    RhythmEvaluation,
)
from ambulink.evaluation.matching import DetectionCounts
from ambulink.evaluation.rhythm_scoring import (
    LONG_EPISODE_S,
    ONSET_LABELS,
    ONSET_LIMIT_S,
    SCORED_LABELS,
    LabelScore,
)


def pct(value: float | None) -> str:
    """A share as a percentage with two decimals; ``-`` when undefined."""
    return "-" if value is None else f"{100.0 * value:.2f}"


def num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    """Columns padded to their widest cell; the first ``left`` columns left-aligned."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def describe_test_period(settings: EvalSettings) -> str:
    skip = (
        f"test period from {settings.skip_s:g} s: the detector sees the whole record, but the "
        f"first {settings.skip_s:g} s are its learning period (EC57 skips 5 min of MIT-BIH)"
        if settings.skip_s
        else "test period: the whole record (--skip-s 0)"
    )
    return (
        f"{settings.lead_label}; detections match reference beats within "
        f"±{settings.tolerance_ms:g} ms; {skip}; ventricular flutter/fibrillation "
        "([ ] and (VFL/(VF/(VFIB) excluded"
    )


def _qrs_cells(counts: DetectionCounts) -> list[str]:
    return [
        str(counts.n_reference),
        str(counts.tp),
        str(counts.fn),
        str(counts.fp),
        pct(counts.se),
        pct(counts.ppv),
        pct(counts.f1),
    ]


def _skipped(skipped: dict[str, str]) -> list[str]:
    return [f"skipped {name}: {reason}" for name, reason in skipped.items()]


def format_qrs(evaluation: QrsEvaluation) -> str:
    headers = ["record", "ref beats", "TP", "FN", "FP", "Se %", "+P %", "F1 %"]
    rows = [[name, *_qrs_cells(c)] for name, c in evaluation.records.items()]
    rows.append(["gross", *_qrs_cells(evaluation.gross)])
    average_se, average_ppv = evaluation.average()
    rows.append(["average", "", "", "", "", pct(average_se), pct(average_ppv), ""])
    return "\n".join(
        [
            textwrap.fill(f"EC57 QRS detection, {describe_test_period(evaluation.settings)}.", 100),
            "",
            table(headers, rows),
            *_skipped(evaluation.skipped),
        ]
    )


def format_matrix(matrix: ConfusionMatrix) -> str:
    names = {"-": "missed"}
    headers = ["reference \\ detected", *(names.get(c, c) for c in DET_COLUMNS)]
    rows = [
        [{"-": "extra (no reference)"}.get(r, r), *(str(matrix.cell(r, c)) for c in DET_COLUMNS)]
        for r in REF_ROWS
    ]
    return table(headers, rows)


def format_beats(evaluation: BeatEvaluation) -> str:
    headers = [
        "record",
        "paced",
        "ref beats",
        "QRS Se %",
        "QRS +P %",
        "V Se %",
        "V +P %",
        "S Se %",
        "S +P %",
        "Fv",
    ]
    rows = []
    for name, r in evaluation.records.items():
        m = r.matrix
        rows.append(
            [
                name,
                "yes" if r.paced else "",
                str(r.counts.n_reference),
                pct(r.counts.se),
                pct(r.counts.ppv),
                pct(m.v_se),
                pct(m.v_ppv),
                pct(m.s_se),
                pct(m.s_ppv),
                str(m.fv),
            ]
        )
    gross, counts = evaluation.gross_matrix, evaluation.gross_counts
    rows.append(
        [
            "gross",
            "",
            str(counts.n_reference),
            pct(counts.se),
            pct(counts.ppv),
            pct(gross.v_se),
            pct(gross.v_ppv),
            pct(gross.s_se),
            pct(gross.s_ppv),
            str(gross.fv),
        ]
    )
    paced = ", ".join(evaluation.paced_records) or "none"
    return "\n".join(
        [
            textwrap.fill(
                "EC57 beat classification (AAMI classes), "
                f"{describe_test_period(evaluation.settings)}.",
                100,
            ),
            "",
            table(headers, rows),
            "",
            "Gross confusion matrix (records that are not mostly paced):",
            format_matrix(gross),
            "",
            f"Gross V: Se {pct(gross.v_se)} %, +P {pct(gross.v_ppv)} %  "
            f"(S: Se {pct(gross.s_se)} %, +P {pct(gross.s_ppv)} %)",
            f"Fv = {gross.fv}: reference fusion beats detected as V, "
            "not counted against V +P (EC57).",
            textwrap.fill(
                f"Paced records excluded from class statistics (>50 % paced beats): "
                f"{paced}; the QRS columns and gross row include them.",
                100,
            ),
            *_skipped(evaluation.skipped),
        ]
    )


def _rhythm_cells(score: LabelScore) -> list[str]:
    onset = score.label in ONSET_LABELS
    return [
        score.label,
        num(score.reference_s),
        num(score.detected_s),
        pct(score.duration_se),
        pct(score.duration_ppv),
        f"{score.long_detected}/{score.long_episodes}",
        f"{score.short_detected}/{score.short_episodes}",
        f"{score.true_detected_episodes}/{score.detected_episodes}",
        num(score.false_per_hour, 2),
        f"{num(score.delay_median_s)}/{num(score.delay_max_s)}" if onset else "",
        pct(score.within_onset_limit) if onset else "",
    ]


def format_rhythm(evaluation: RhythmEvaluation) -> str:
    headers = [
        "record",
        "label",
        "ref s",
        "det s",
        "dur Se %",
        "dur +P %",
        "long ep",
        "short ep",
        "true det",
        "false/h",
        "delay med/max s",
        f"≤{ONSET_LIMIT_S:g} s %",
    ]
    rows = [
        [name, *_rhythm_cells(score)]
        for name, result in evaluation.records.items()
        for score in result.labels.values()
        if score.active
    ]
    rows += [["gross", *_rhythm_cells(score)] for score in evaluation.gross.values()]
    minimums = ", ".join(f"{label} {s:g} s" for label, s in LONG_EPISODE_S.items())
    unscored = ", ".join(f"{n} {label}" for label, n in evaluation.unscored_detected.items())
    hours = evaluation.gross[SCORED_LABELS[0]].record_s / 3600
    return "\n".join(
        [
            f"Rhythm episodes, {evaluation.settings.lead_label}, {hours:.2f} h of records; "
            "scored over whole records (no learning period: AF and VF episodes start early).",
            "",
            table(headers, rows, left=2),
            "",
            textwrap.fill(
                f"long ep / short ep: reference episodes detected, split at {minimums} (others: "
                "all long); true det: detected episodes overlapping a reference episode; false/h: "
                "the others per hour; delay: first overlapping detection minus annotated onset, "
                "long episodes; ventricular = VT and VF as one class.",
                100,
            ),
            *(
                [f"detected episodes with no reference annotations, not scored: {unscored}"]
                if unscored
                else []
            ),
        ]
    )
