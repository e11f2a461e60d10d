"""Benchmark provenance (commit, machine, versions) and the tables that go to the terminal and
to ``docs/benchmarks.md``."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import scipy

from ambulink.errors import ConfigError
from ambulink.evaluation.bench import OURS, BenchResult, MethodResult, speed_ratio
from ambulink.evaluation.report import pct, table

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MIN_SAMPLES_PER_CPU_S = 1_000_000.0  # DESIGN §5 bars for QRS detection
MIN_RATIO_VS_XQRS = 5.0
MIN_GROSS_SE_PPV = 0.997

HEADER = """# Benchmarks

Dated results of `ambulink bench` runs, oldest first; each run appends a section with its exact
command, date, commit, machine and library versions. The figures that carry over to another
machine are the ratios against peers measured in the same run (e.g. ambulink's samples per
CPU-second divided by XQRS's); absolute throughput only describes the machine it ran on. None of
this is a timed assertion in a unit test (STYLE §11). The bars are in DESIGN §5.
"""


@dataclass(frozen=True)
class Provenance:
    """Where and when a benchmark ran."""

    date: str
    commit: str
    machine: str
    versions: str


def git_commit(root: Path = PROJECT_ROOT) -> str:
    """Short commit of the working tree (marked when it has uncommitted changes), or unknown."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if head.returncode != 0 or not head.stdout.strip():
            return "unknown"
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    dirty = " (with uncommitted changes)" if status.stdout.strip() else ""
    return head.stdout.strip() + dirty


def cpu_model() -> str:
    """CPU model from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "Hardware") and value.strip():
            return value.strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def provenance() -> Provenance:
    return Provenance(
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        commit=git_commit(),
        machine=f"{platform.platform()}; {cpu_model()}; {os.cpu_count() or '?'} cores",
        versions=(
            f"Python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}"
        ),
    )


def _row(method: MethodResult, ours: MethodResult | None) -> list[str]:
    rate = method.samples_per_cpu_s
    ratio = speed_ratio(ours, method) if ours is not None else None
    if not method.ran:
        return [method.name, method.version, method.status, "", "", "", ""]
    return [
        method.name,
        method.version,
        "-" if rate is None else f"{rate:,.0f}",
        "-" if ratio is None else f"{ratio:.2f}",
        pct(method.counts.se),
        pct(method.counts.ppv),
        pct(method.counts.f1),
    ]


HEADERS = ["method", "version", "samples/CPU-s", "ambulink ÷ method", "Se %", "+P %", "F1 %"]


def result_table(result: BenchResult) -> str:
    return table(HEADERS, [_row(m, result.ours) for m in result.methods])


def markdown_table(result: BenchResult) -> str:
    rows = [_row(m, result.ours) for m in result.methods]
    lines = ["| " + " | ".join(HEADERS) + " |", "|---|---|" + "---:|" * (len(HEADERS) - 2)]
    lines += ["| " + " | ".join(cell or " " for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def bars(result: BenchResult) -> list[str]:
    """DESIGN §5 QRS bars, each marked met / not met, for the methods that ran."""
    ours = result.ours
    if ours is None or not ours.ran:
        return ["bars: not checked, ambulink's detector did not run"]
    peers = [m for m in result.methods if m.ran and m.name != OURS]
    xqrs = next((m for m in peers if m.name.startswith("XQRS")), None)
    rate = ours.samples_per_cpu_s or 0.0
    se, ppv, f1 = ours.counts.se or 0.0, ours.counts.ppv or 0.0, ours.counts.f1 or 0.0
    best_f1 = max((m.counts.f1 or 0.0 for m in peers), default=None)

    def mark(ok: bool) -> str:
        return "met" if ok else "NOT met"

    lines = [f"- throughput ≥ 1 M samples/CPU-s: {mark(rate >= MIN_SAMPLES_PER_CPU_S)}"]
    if xqrs is not None:
        ratio = speed_ratio(ours, xqrs) or 0.0
        lines.append(f"- ≥ {MIN_RATIO_VS_XQRS:g}x XQRS: {mark(ratio >= MIN_RATIO_VS_XQRS)}")
    lines.append(
        f"- gross Se and +P ≥ 99.7 %: {mark(min(se, ppv) >= MIN_GROSS_SE_PPV)} "
        "(the bar is for all of MIT-BIH)"
    )
    if best_f1 is not None:
        lines.append(f"- F1 ≥ best peer's: {mark(f1 >= best_f1)}")
    return lines


def scope(result: BenchResult) -> str:
    s = result.settings
    excerpt = f"first {s.seconds:g} s of " if s.seconds is not None else ""
    period = (
        f"scored from {s.scored_from_s:g} s (EC57 learning period)"
        if s.scored_from_s
        else "scored over the whole excerpt (shorter than the EC57 learning period)"
    )
    skipped = f"; skipped (no beat labels): {', '.join(result.skipped)}" if result.skipped else ""
    return (
        f"{excerpt}{len(result.records)} records ({', '.join(result.records)}) of "
        f"{s.data_dir}, lead {s.lead}, best of {s.repeat} runs per record; {period}, "
        f"±{s.tolerance_ms:g} ms, ventricular flutter/fibrillation excluded{skipped}"
    )


def markdown_section(result: BenchResult, command: str, where: Provenance) -> str:
    return "\n".join(
        [
            f"## {where.date} — QRS detection",
            "",
            f"- command: `{command}`",
            f"- commit: {where.commit}",
            f"- machine: {where.machine}",
            f"- versions: {where.versions}",
            f"- scope: {scope(result)}",
            "",
            markdown_table(result),
            "",
            "DESIGN §5 bars:",
            "",
            *bars(result),
            "",
        ]
    )


def append_section(path: Path, section: str) -> None:
    """Append ``section`` to the benchmark log at ``path``, creating it with its header."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        existing = path.read_text() if path.exists() else ""
        with path.open("a") as out:
            if not existing.strip():
                out.write(HEADER)
            out.write("\n" + section)
    except OSError as exc:
        raise ConfigError(f"cannot write the benchmark log {path}: {exc}") from exc
