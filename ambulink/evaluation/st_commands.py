"""``ambulink eval st`` and ``ambulink bench st``: argparse wiring and the functions that print.

``ambulink.signal.st`` is imported only when a command runs, so ``--help`` works without it.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import textwrap
from pathlib import Path

from ambulink.evaluation.bench_report import Provenance, append_section, provenance
from ambulink.evaluation.commands import (
    Subparsers,
    _detector,
    _json_path,
    _names,
    _progress,
    _write_json,
)
from ambulink.evaluation.report import num
from ambulink.evaluation.st_bench import (
    BAR_MS,
    EXCERPT_S,
    Peer,
    StBenchResult,
    StBenchSettings,
    bench_st,
    neurokit_peer,
)
from ambulink.evaluation.st_bench import (
    Analyze as BenchAnalyze,
)
from ambulink.evaluation.st_evaluate import Analyze, StEvalSettings, evaluate_st
from ambulink.evaluation.st_report import format_st

EVAL_ST_EPILOG = """\
DIR is a PTB-XL folder (ptbxl_database.csv, scp_statements.csv, records500/; records100/ is read
where records500/ lacks a record), a PTB Diagnostic folder (patient*/ with .hea) or a LUDB
folder (data/ with .hea and per-lead annotations); give --data several times to score several
together. Positives: PTB-XL MI codes (likelihood >= 50, not the INJ* subendocardial codes) at
infarction stadium I or II; PTB Diagnostic MI admissions with an acute localization and the ECG
<= 7 days after onset; LUDB "STEMI:" readings. Negatives: PTB-XL NORM >= 50 without MI codes,
PTB healthy controls, LUDB sinus rhythm with a normal axis and nothing else. LUDB records also
get the J-point check against their hand-marked QRS offsets.
The exit code is 0 once the report is printed, whatever the scores.

example: ambulink eval st --data PTBXL_DIR --data LUDB_DIR --json st.json
"""


def eval_st_command(
    settings: StEvalSettings, analyze: Analyze, json_path: Path | None, verbose: bool = False
) -> int:
    evaluation = evaluate_st(settings, analyze, _progress)
    print(format_st(evaluation, verbose))
    _write_json(json_path, evaluation.as_dict())
    return 0


def _run_eval_st(args: argparse.Namespace) -> int:
    settings = StEvalSettings(
        data_dirs=tuple(Path(d) for d in args.data),
        records=_names(args.records),
        limit=args.limit,
        seconds=args.seconds if args.seconds > 0 else None,
        jpoint=args.jpoint,
    )
    json_path = _json_path(args.json)
    analyze: Analyze = _detector("ambulink.signal.st", "analyze")
    return eval_st_command(settings, analyze, json_path, args.verbose)


def add_eval_st(kinds: Subparsers[argparse.ArgumentParser]) -> None:
    """Add ``ambulink eval st`` to the ``eval`` subcommands."""
    sub = kinds.add_parser(
        "st",
        help="STEMI detection: Se, Sp, old MI and subendocardial injury, J point vs LUDB",
        description=textwrap.fill(
            "Run ambulink.signal.st.analyze on 12-lead records and score it against the "
            "databases' diagnoses: Se on acute ST-elevation MI, Sp on normal ECGs, how many "
            "old-MI and subendocardial-injury (ST depression) records are flagged as STEMI or "
            "as ischemic ST depression, territory agreement, how often each reason fired and "
            "why records were not evaluable; on LUDB, the J-point error against the "
            "hand-marked QRS offsets.",
            92,
        ),
        epilog=EVAL_ST_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub.add_argument(
        "--data",
        metavar="DIR",
        action="append",
        required=True,
        help="PTB-XL, PTB Diagnostic or LUDB folder; repeat for several",
    )
    sub.add_argument(
        "--records",
        metavar="NAMES",
        nargs="+",
        help="only these records, e.g. 468 (PTB-XL ecg_id), s0010_re, 21 (LUDB)",
    )
    sub.add_argument("--limit", type=int, metavar="N", help="only the first N records per folder")
    sub.add_argument(
        "--seconds",
        type=float,
        default=EXCERPT_S,
        metavar="S",
        help=f"analyse the first S seconds of each record (default: {EXCERPT_S:g}, a standard "
        "12-lead; 0 for the whole record)",
    )
    sub.add_argument(
        "--jpoint",
        action="store_true",
        help="require the J-point check (needs a LUDB folder; LUDB folders always get it)",
    )
    sub.add_argument("--verbose", action="store_true", help="also print one row per record")
    sub.add_argument("--json", metavar="OUT", help="also write every number to OUT as JSON")
    sub.set_defaults(run=_run_eval_st)


# bench st


def bench_st_command_line(settings: StBenchSettings, write: Path | None) -> str:
    parts = ["ambulink", "bench", "st", "--data", str(settings.data_dir)]
    parts += ["--repeat", str(settings.repeat)]
    if settings.limit is not None:
        parts += ["--limit", str(settings.limit)]
    if write is not None:
        parts += ["--write", str(write)]
    return shlex.join(parts)


def bench_st_lines(result: StBenchResult) -> list[str]:
    median, worst, ratio = result.median_ms, result.max_ms, result.ratio
    peer = result.peer
    peer_text = (
        f"{peer.name} (version {peer.version}): median {num(result.peer_median_ms, 2)} ms; "
        f"ambulink is {num(ratio, 2)}x its speed (its median time ÷ ours)"
        if peer.delineate is not None
        else f"{peer.name}: {peer.status}; no ratio"
    )

    def mark(value: float | None) -> str:
        return "not measured" if value is None else ("met" if value <= BAR_MS else "NOT met")

    return [
        f"- ambulink.signal.st.analyze {result.ours_version}: median {num(median, 2)} ms, "
        f"max {num(worst, 2)} ms per 10 s 12-lead analysis",
        f"- peer: {peer_text}",
        f"- bar ≤ {BAR_MS:g} ms on one core: median {mark(median)}, every record {mark(worst)}",
    ]


def bench_st_scope(result: StBenchResult) -> str:
    s = result.settings
    return (
        f"first {EXCERPT_S:g} s of {len(result.rows)} records of {s.data_dir}, all 12 leads, "
        f"best of {s.repeat} runs (time.process_time) per record"
    )


def bench_st_section(result: StBenchResult, command: str, where: Provenance) -> str:
    return "\n".join(
        [
            f"## {where.date} — 12-lead ST analysis time",
            "",
            f"- command: `{command}`",
            f"- commit: {where.commit}",
            f"- machine: {where.machine}",
            f"- versions: {where.versions}",
            f"- scope: {bench_st_scope(result)}",
            *bench_st_lines(result),
            "",
        ]
    )


def bench_st_command(
    settings: StBenchSettings, analyze: BenchAnalyze, peer: Peer, write: Path | None
) -> int:
    if peer.delineate is None:
        print(f"{peer.name}: {peer.status}; skipped", file=sys.stderr)
    result = bench_st(settings, analyze, peer, _progress)
    print(f"12-lead ST analysis time: {bench_st_scope(result)}.")
    print("\n".join(bench_st_lines(result)))
    if write is not None:
        command = bench_st_command_line(settings, write)
        append_section(write, bench_st_section(result, command, provenance()))
        print(f"appended to {write}", file=sys.stderr)
    return 0


def _run_bench_st(args: argparse.Namespace) -> int:
    from ambulink.data import DATA_DIR

    settings = StBenchSettings(
        data_dir=Path(args.data) if args.data is not None else DATA_DIR / "ptbxl",
        repeat=args.repeat,
        limit=args.limit,
    )
    analyze: BenchAnalyze = _detector("ambulink.signal.st", "analyze")
    return bench_st_command(
        settings, analyze, neurokit_peer(), Path(args.write) if args.write else None
    )


def add_bench_st(kinds: Subparsers[argparse.ArgumentParser]) -> None:
    """Add ``ambulink bench st`` to the ``bench`` subcommands."""
    sub = kinds.add_parser(
        "st",
        help="12-lead ST analysis: CPU ms per 10 s record vs NeuroKit2 ecg_delineate",
        description=textwrap.fill(
            "Time ambulink.signal.st.analyze on the first 10 s of 12-lead 500 Hz PTB-XL "
            "records (time.process_time, best of --repeat runs per record) and NeuroKit2's "
            "ecg_clean + ecg_delineate (dwt) on lead II of the same samples, when installed "
            "(pip install '.[bench]'). Times describe this machine; the ratio carries over.",
            92,
        ),
        epilog="example: ambulink bench st --data PTBXL_DIR --write docs/benchmarks.md",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub.add_argument(
        "--data",
        metavar="DIR",
        help="PTB-XL folder or any folder of *_hr records "
        "(default: the bundled ambulink/data/ptbxl)",
    )
    sub.add_argument(
        "--repeat", type=int, default=5, metavar="N", help="runs per record; the fastest counts"
    )
    sub.add_argument("--limit", type=int, metavar="N", help="only the first N records")
    sub.add_argument(
        "--write",
        metavar="FILE",
        help="append a dated section (command, commit, machine, figures) to FILE",
    )
    sub.set_defaults(run=_run_bench_st)
