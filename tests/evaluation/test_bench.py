"""Benchmark plumbing: what is measured, how ratios and bars are computed. No timing asserts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from ambulink.data import DATA_DIR
from ambulink.errors import ConfigError
from ambulink.evaluation.bench import (
    BENCH_EXTRA,
    OURS,
    BenchResult,
    BenchSettings,
    Method,
    MethodResult,
    bench_qrs,
    best_cpu_seconds,
    speed_ratio,
)
from ambulink.evaluation.bench_report import bars, git_commit, markdown_table
from ambulink.evaluation.matching import DetectionCounts

MITDB = DATA_DIR / "mitdb"


def every_second(signal: NDArray[np.float64], fs: float) -> NDArray[np.int64]:
    """A 'detector' with one peak per second: slow to be wrong, quick to run."""
    return np.arange(0, len(signal), int(fs), dtype=np.int64)


def test_missing_peer_is_reported_and_others_still_run() -> None:
    settings = BenchSettings(MITDB, ("100", "119"), repeat=2, seconds=30)
    methods = [Method(OURS, every_second), Method("NeuroKit2", None, BENCH_EXTRA)]
    result = bench_qrs(settings, methods)
    ours, peer = result.methods
    assert ours.ran and ours.samples == 2 * 30 * 360
    assert ours.counts.tp + ours.counts.fp == 2 * 30  # each of its peaks is scored
    assert not peer.ran and peer.status == "not installed (pip install '.[bench]')"
    assert peer.samples_per_cpu_s is None and speed_ratio(ours, peer) is None
    assert "| NeuroKit2 |   | not installed" in markdown_table(result)
    assert result.records == ["100", "119"]


def test_excerpt_shorter_than_the_learning_period_is_scored_whole() -> None:
    assert BenchSettings(MITDB, seconds=60).scored_from_s == 0.0
    assert BenchSettings(MITDB, seconds=600).scored_from_s == 300.0
    assert BenchSettings(MITDB).scored_from_s == 300.0


def test_records_without_beat_labels_are_skipped() -> None:
    result = bench_qrs(
        BenchSettings(DATA_DIR / "vfdb", ("418",), repeat=1, seconds=5),
        [Method(OURS, every_second)],
    )
    assert result.skipped == ["418"] and result.records == []
    assert result.methods[0].samples == 0


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="--repeat"):
        BenchSettings(MITDB, repeat=0)
    with pytest.raises(ConfigError, match="--seconds"):
        BenchSettings(MITDB, seconds=-1.0)
    with pytest.raises(ConfigError, match="--lead"):
        BenchSettings(MITDB, lead=-1)


def test_best_cpu_seconds_returns_the_result_of_the_work() -> None:
    calls: list[int] = []

    def work() -> list[int]:
        calls.append(1)
        return calls

    seconds, result = best_cpu_seconds(3, work)
    assert seconds >= 0.0 and result == [1, 1, 1]


def result(name: str, samples_per_s: float, f1_tp: int, status: str = "ok") -> MethodResult:
    return MethodResult(
        name,
        status,
        samples=int(samples_per_s),
        cpu_s=1.0,
        counts=DetectionCounts(tp=f1_tp, fn=1000 - f1_tp, fp=0),
    )


def test_speed_ratio_is_ours_over_theirs() -> None:
    assert speed_ratio(result(OURS, 2e6, 999), result("XQRS (wfdb)", 2.5e5, 999)) == 8.0


def test_bars_follow_design_section_5() -> None:
    good = BenchResult(
        BenchSettings(MITDB),
        [
            result(OURS, 2e6, 999),
            result("XQRS (wfdb)", 2e5, 990),
            result("NeuroKit2", 9e6, 995),
        ],
        ["100"],
        [],
    )
    assert bars(good) == [
        "- throughput ≥ 1 M samples/CPU-s: met",
        "- ≥ 5x XQRS: met",
        "- gross Se and +P ≥ 99.7 %: met (the bar is for all of MIT-BIH)",
        "- F1 ≥ best peer's: met",
    ]
    slow = BenchResult(
        BenchSettings(MITDB),
        [
            result(OURS, 5e5, 990),
            result("XQRS (wfdb)", 2e5, 995),
        ],
        ["100"],
        [],
    )
    assert [
        line.endswith("NOT met (the bar is for all of MIT-BIH)") or line.endswith("NOT met")
        for line in bars(slow)
    ] == [True, True, True, True]


def test_git_commit_outside_a_repository_is_unknown(tmp_path: Path) -> None:
    assert git_commit(tmp_path) == "unknown"
