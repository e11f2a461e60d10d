"""``ambulink eval`` and ``ambulink bench``: argparse wiring and the functions that print.

The real detectors are imported only when a command runs, so ``--help`` works without them.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shlex
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ambulink.errors import AmbulinkError, ConfigError
from ambulink.evaluation.bench import BenchSettings, bench_qrs, default_methods
from ambulink.evaluation.bench_report import (
    append_section,
    bars,
    markdown_section,
    provenance,
    result_table,
    scope,
)
from ambulink.evaluation.evaluate import (
    BeatClassifier,
    EpisodeDetector,
    EvalSettings,
    QrsDetector,
    evaluate_beats,
    evaluate_qrs,
    evaluate_rhythm,
)
from ambulink.evaluation.matching import EC57_SKIP_S, EC57_TOLERANCE_MS
from ambulink.evaluation.records import EcgRecord, list_records, unannotated_records
from ambulink.evaluation.report import format_beats, format_qrs, format_rhythm
from ambulink.signal.events import Beat, Episode

Subparsers = argparse._SubParsersAction  # what add_subparsers() returns

EVAL_EPILOG = """\
Records are those in DIR with a .hea header and .atr annotations, in the order of DIR/RECORDS
when present. Scoring follows ANSI/AAMI EC57: a detection matches a reference beat within
±150 ms; the first 300 s of each record are the detector's learning period and are not scored
(the detector still sees them); beats and detections in ventricular flutter/fibrillation ([ ]
and (VFL/(VF/(VFIB) are not scored. Rhythm scoring uses whole records. The exit code is 0 once
the report is printed, whatever the scores.

example: ambulink eval qrs --data ambulink/data/mitdb --records 100,119 --json qrs.json
"""


def _progress(index: int, total: int, name: str) -> None:
    print(f"[{index}/{total}] {name} ...", file=sys.stderr, flush=True)


def _names(values: Sequence[str] | None) -> tuple[str, ...] | None:
    """``--records 100,101 103`` → ("100", "101", "103")."""
    if values is None:
        return None
    names = tuple(n.strip() for v in values for n in v.split(",") if n.strip())
    if not names:
        raise ConfigError("--records needs at least one record name, e.g. --records 100,101")
    return names


def _json_path(value: str | None) -> Path | None:
    if value is None:
        return None
    path = Path(value)
    if not path.parent.is_dir():
        raise ConfigError(f"--json {value}: folder {path.parent} does not exist")
    return path


def _write_json(path: Path | None, data: dict[str, object]) -> None:
    if path is None:
        return
    try:
        path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")
    except OSError as exc:
        raise ConfigError(f"cannot write --json {path}: {exc}") from exc
    print(f"wrote {path}", file=sys.stderr)


def _detector(module: str, name: str) -> Callable[..., Any]:
    """``module.name`` from ambulink.signal, imported now, or a clear error."""
    try:
        found: Callable[..., Any] = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise AmbulinkError(f"the detector {module}.{name} is not available: {exc}") from exc
    if not callable(found):
        raise AmbulinkError(f"{module}.{name} is not a function")
    return found


# Commands that print: also called by tests with reference-derived detectors.


def eval_qrs_command(settings: EvalSettings, detect: QrsDetector, json_path: Path | None) -> int:
    evaluation = evaluate_qrs(settings, detect, _progress)
    print(format_qrs(evaluation))
    _write_json(json_path, evaluation.as_dict())
    return 0


def eval_beats_command(
    settings: EvalSettings, classify: BeatClassifier, json_path: Path | None
) -> int:
    evaluation = evaluate_beats(settings, classify, _progress)
    print(format_beats(evaluation))
    _write_json(json_path, evaluation.as_dict())
    return 0


def eval_rhythm_command(
    settings: EvalSettings, detect: EpisodeDetector, json_path: Path | None
) -> int:
    evaluation = evaluate_rhythm(settings, detect, _progress)
    print(format_rhythm(evaluation))
    _write_json(json_path, evaluation.as_dict())
    return 0


# argparse entry points (``args.run``): load the real detector, then run the command.


def _settings(args: argparse.Namespace) -> EvalSettings:
    """Options checked, and the records found, before a detector is imported."""
    settings = EvalSettings(
        data_dir=Path(args.data),
        records=_names(args.records),
        lead=args.lead,
        skip_s=args.skip_s,
        tolerance_ms=args.tolerance_ms,
    )
    list_records(settings.data_dir, settings.records)
    skipped = unannotated_records(settings.data_dir) if settings.records is None else []
    if skipped:
        shown = ", ".join(skipped[:10]) + (" ..." if len(skipped) > 10 else "")
        print(
            f"note: {len(skipped)} record(s) in {settings.data_dir} have no .atr annotations "
            f"and are not scored: {shown}",
            file=sys.stderr,
        )
    return settings


def _run_eval_qrs(args: argparse.Namespace) -> int:
    settings, json_path = _settings(args), _json_path(args.json)
    detect = _detector("ambulink.signal.qrs", "detect")

    def peaks(record: EcgRecord, lead: int | None) -> ArrayLike:
        found: ArrayLike = detect(record.lead(lead), record.fs)
        return np.asarray(found, dtype=np.int64)

    return eval_qrs_command(settings, peaks, json_path)


def _run_eval_beats(args: argparse.Namespace) -> int:
    settings, json_path = _settings(args), _json_path(args.json)
    classify = _detector("ambulink.signal.beats", "classify")

    def beats(record: EcgRecord, lead: int | None) -> list[Beat]:
        return list(classify(record.lead(lead), record.fs))

    return eval_beats_command(settings, beats, json_path)


def _run_eval_rhythm(args: argparse.Namespace) -> int:
    settings, json_path = _settings(args), _json_path(args.json)
    detect = _detector("ambulink.signal.rhythm", "detect_episodes")

    def episodes(record: EcgRecord, lead: int | None) -> list[Episode]:
        return list(detect(record.lead(lead), record.fs))

    return eval_rhythm_command(settings, episodes, json_path)


def _lead(text: str) -> int | None:
    """``--lead``: a signal index, or "all" for every lead as columns."""
    if text.strip().lower() == "all":
        return None
    try:
        return int(text)
    except ValueError:
        message = f"expected a signal index or 'all', got {text!r}"
        raise argparse.ArgumentTypeError(message) from None


def _add_record_options(
    parser: argparse.ArgumentParser, *, data_required: bool, all_leads: bool = False
) -> None:
    parser.add_argument(
        "--data",
        metavar="DIR",
        required=data_required,
        help="folder of WFDB records (.hea, .dat, .atr), e.g. ambulink/data/mitdb"
        + ("" if data_required else " (default: the bundled ambulink/data/mitdb)"),
    )
    parser.add_argument(
        "--records",
        metavar="NAMES",
        nargs="+",
        help="only these records, comma- or space-separated, e.g. 100,101 119 (default: all)",
    )
    parser.add_argument(
        "--lead",
        type=_lead if all_leads else int,
        default=0,
        metavar="N" + ("|all" if all_leads else ""),
        help="signal index to analyse (default: 0, MLII in MIT-BIH)"
        + (
            "; all: every lead as columns, the first analysed and the second confirming, "
            "as the streaming Analyzer does"
            if all_leads
            else ""
        ),
    )
    parser.add_argument(
        "--skip-s",
        type=float,
        default=EC57_SKIP_S,
        metavar="S",
        help="learning period in seconds at the start of each record, not scored "
        f"(default: {EC57_SKIP_S:g}, the EC57 5 minutes; rhythm scoring ignores it)",
    )
    parser.add_argument(
        "--tolerance-ms",
        type=float,
        default=EC57_TOLERANCE_MS,
        metavar="MS",
        help=f"beat match window ± MS (default: {EC57_TOLERANCE_MS:g}, EC57)",
    )


def register_eval(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    """Add ``ambulink eval qrs|beats|rhythm``."""
    parser = subparsers.add_parser(
        "eval",
        help="score the ECG detectors against annotated records (ANSI/AAMI EC57)",
        description="Run an ambulink.signal detector over annotated WFDB records and score "
        "it against the reference annotations by ANSI/AAMI EC57 rules; prints a table per "
        "record plus gross figures.",
    )
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    jobs = [
        (
            "qrs",
            _run_eval_qrs,
            "QRS detection: Se, +P, F1 per record and gross",
            "Score ambulink.signal.qrs.detect beat by beat: TP, FN, FP, Se, +P and F1 per "
            "record, gross (sums) and the average of the per-record Se and +P.",
        ),
        (
            "beats",
            _run_eval_beats,
            "AAMI beat classes: confusion matrix, V and S Se/+P",
            "Score ambulink.signal.beats.classify: beats are matched as for qrs, then tallied "
            "in the AAMI confusion matrix (reference N,S,V,F,Q x detected N,S,V,Q); V and S "
            "Se and +P per record and gross. Reference F beats detected as V do not count "
            "against V +P (EC57). Records whose beats are mostly paced (>50 % / or f) are left "
            "out of the class statistics and listed.",
        ),
        (
            "rhythm",
            _run_eval_rhythm,
            "rhythm episodes: AF, VT, VF, asystole, bradycardia",
            "Score ambulink.signal.rhythm.detect_episodes against rhythm annotations ((AFIB, "
            "(AFL -> AF; (VT; (VFL, (VF, (VFIB -> VF; (ASYS; (SBR -> BRADY): duration Se/+P, "
            "episode Se for long (AF >= 30 s, VT/VF >= 6 s) and short episodes, episode +P, "
            "false episodes per hour, VT/VF onset delay, and VT+VF as one ventricular class. "
            "Works on records without beat labels (vfdb).",
        ),
    ]
    for kind, run, summary, description in jobs:
        sub = kinds.add_parser(
            kind,
            help=summary,
            description=textwrap.fill(description, 92),
            epilog=EVAL_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _add_record_options(sub, data_required=True, all_leads=True)
        sub.add_argument("--json", metavar="OUT", help="also write every number to OUT as JSON")
        sub.set_defaults(run=run)
    from ambulink.evaluation.st_commands import add_eval_st  # it imports this module

    add_eval_st(kinds)


def bench_command_line(settings: BenchSettings, write: Path | None) -> str:
    """The command that reproduces a run, with every option spelled out."""
    parts = ["ambulink", "bench", "signal", "--data", str(settings.data_dir)]
    if settings.records is not None:
        parts += ["--records", ",".join(settings.records)]
    parts += ["--lead", str(settings.lead), "--repeat", str(settings.repeat)]
    if settings.seconds is not None:
        parts += ["--seconds", f"{settings.seconds:g}"]
    if settings.skip_s != EC57_SKIP_S:
        parts += ["--skip-s", f"{settings.skip_s:g}"]
    if settings.tolerance_ms != EC57_TOLERANCE_MS:
        parts += ["--tolerance-ms", f"{settings.tolerance_ms:g}"]
    if write is not None:
        parts += ["--write", str(write)]
    return shlex.join(parts)


def bench_signal_command(settings: BenchSettings, write: Path | None) -> int:
    methods = default_methods()
    for method in methods:
        if method.detect is None:
            print(f"{method.name}: {method.status}; skipped", file=sys.stderr)
    result = bench_qrs(settings, methods, _progress)
    print(f"QRS detection throughput and accuracy: {scope(result)}.")
    print()
    print(result_table(result))
    print()
    print("DESIGN §5 bars:")
    print("\n".join(bars(result)))
    if write is not None:
        append_section(
            write, markdown_section(result, bench_command_line(settings, write), provenance())
        )
        print(f"appended to {write}", file=sys.stderr)
    return 0


def _run_bench_signal(args: argparse.Namespace) -> int:
    from ambulink.data import DATA_DIR

    settings = BenchSettings(
        data_dir=Path(args.data) if args.data is not None else DATA_DIR / "mitdb",
        records=_names(args.records),
        lead=args.lead,
        repeat=args.repeat,
        seconds=args.seconds,
        skip_s=args.skip_s,
        tolerance_ms=args.tolerance_ms,
    )
    return bench_signal_command(settings, Path(args.write) if args.write else None)


def register_bench(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    """Add ``ambulink bench signal``."""
    parser = subparsers.add_parser(
        "bench",
        help="measure detector throughput against peers in the same run",
        description="Benchmarks that compare ambulink with peers measured in the same run.",
    )
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    sub = kinds.add_parser(
        "signal",
        help="QRS detection: samples per CPU-second and EC57 Se/+P/F1 vs XQRS and NeuroKit2",
        description=textwrap.fill(
            "Time ambulink.signal.qrs.detect on one lead (time.process_time, best of --repeat "
            "runs per record) against wfdb's XQRS and NeuroKit2's ecg_peaks on the same "
            "samples, and score all three with the EC57 matcher of `ambulink eval qrs` (same "
            "test period and exclusions). A peer that is not installed is reported and "
            "skipped (pip install '.[bench]'). Throughput figures describe this machine; the "
            "ratios between methods are what carry over.",
            92,
        ),
        epilog="example: ambulink bench signal --data ambulink/data/mitdb --write "
        "docs/benchmarks.md\nquick run: ambulink bench signal --seconds 60 --repeat 1",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_record_options(sub, data_required=False)
    sub.add_argument(
        "--repeat",
        type=int,
        default=3,
        metavar="N",
        help="runs per record and method; the fastest counts (default: 3)",
    )
    sub.add_argument(
        "--seconds",
        type=float,
        metavar="S",
        help="bench on the first S seconds of each record only (quick runs); when S is not "
        "longer than --skip-s, the whole excerpt is scored",
    )
    sub.add_argument(
        "--write",
        metavar="FILE",
        help="append a dated section (command, commit, machine, table) to FILE, "
        "e.g. docs/benchmarks.md; FILE is created with a header if absent",
    )
    sub.set_defaults(run=_run_bench_signal)
    from ambulink.evaluation.st_commands import add_bench_st  # it imports this module

    add_bench_st(kinds)
