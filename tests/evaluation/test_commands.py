"""``ambulink eval`` and ``ambulink bench`` end to end on bundled records.

The eval commands are driven with detections derived from the reference annotations, so they
are tested whatever state the real detectors are in; the real QRS detector runs through the CLI
once, when it exists.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from ambulink.cli import build_parser, main
from ambulink.data import DATA_DIR
from ambulink.errors import ConfigError, SignalError
from ambulink.evaluation.commands import (
    eval_beats_command,
    eval_qrs_command,
    eval_rhythm_command,
)
from ambulink.evaluation.evaluate import EvalSettings
from ambulink.evaluation.records import EcgRecord
from ambulink.signal.events import Beat, BeatLabel, Episode

MITDB = DATA_DIR / "mitdb"
VFDB = DATA_DIR / "vfdb"
AAMI_TO_DETECTED: dict[str, BeatLabel] = {"N": "N", "S": "S", "V": "V", "F": "V", "Q": "Q"}


def reference_peaks(record: EcgRecord, lead: int) -> NDArray[np.int64]:
    return record.reference().beat_sample


def reference_beats(record: EcgRecord, lead: int) -> list[Beat]:
    ref = record.reference()
    return [
        Beat(int(s), AAMI_TO_DETECTED[c])
        for s, c in zip(ref.beat_sample, ref.beat_class, strict=True)
    ]


def reference_episodes(record: EcgRecord, lead: int) -> list[Episode]:
    return list(record.reference().episodes)


def test_eval_qrs_prints_a_table_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "qrs.json"
    assert eval_qrs_command(EvalSettings(MITDB), reference_peaks, out) == 0
    printed = capsys.readouterr()
    lines = printed.out.splitlines()
    assert any(line.split()[:1] == ["100"] and "100.00" in line for line in lines)
    gross = next(line for line in lines if line.startswith("gross"))
    assert gross.split()[-3:] == ["100.00", "100.00", "100.00"]
    assert "learning period" in printed.out
    assert "[4/4] 207 ..." in printed.err
    data = json.loads(out.read_text())
    assert list(data["records"]) == ["100", "119", "201", "207"]
    assert data["records"]["100"] == {
        "tp": 1902,
        "fn": 0,
        "fp": 0,
        "se": 1.0,
        "ppv": 1.0,
        "f1": 1.0,
    }
    assert data["gross"]["tp"] == sum(r["tp"] for r in data["records"].values())
    assert data["settings"]["skip_s"] == 300.0


def test_eval_qrs_skips_records_without_beat_labels(capsys: pytest.CaptureFixture[str]) -> None:
    eval_qrs_command(EvalSettings(VFDB), reference_peaks, None)
    assert "skipped 418: no beat annotations" in capsys.readouterr().out


def test_eval_beats_reports_gross_v_and_the_confusion_matrix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "beats.json"
    assert eval_beats_command(EvalSettings(MITDB, ("119", "201")), reference_beats, out) == 0
    text = capsys.readouterr().out
    assert "Gross V: Se 100.00 %, +P 100.00 %" in text
    assert "extra (no reference)" in text
    assert "excluded from class statistics (>50 % paced beats): none" in text
    data = json.loads(out.read_text())
    assert data["gross"]["classes"]["fv"] == 2  # 201's fusion beats, called V
    assert data["paced_records_excluded"] == []


def test_eval_beats_leaves_paced_records_out_of_class_statistics(
    shared_ecg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not (shared_ecg / "mitdb" / "102.hea").exists():
        pytest.skip("mitdb/102 is not in the shared records")
    out = tmp_path / "beats.json"

    def all_normal(record: EcgRecord, lead: int) -> list[Beat]:
        return [Beat(int(s), "N") for s in record.reference().beat_sample]

    eval_beats_command(EvalSettings(shared_ecg / "mitdb", ("100", "102")), all_normal, out)
    data = json.loads(out.read_text())
    assert data["paced_records_excluded"] == ["102"]
    counted = np.array(data["gross"]["classes"]["counts"]).sum()
    assert counted == data["records"]["100"]["qrs"]["tp"]  # 102's beats are not in the matrix
    assert "excluded from class statistics (>50 % paced beats): 102" in capsys.readouterr().out


def test_eval_rhythm_scores_vfdb_and_mitdb_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "rhythm.json"
    for folder in (MITDB, VFDB):
        assert eval_rhythm_command(EvalSettings(folder), reference_episodes, out) == 0
    text = capsys.readouterr().out
    assert "whole records (no learning period" in text
    gross_rows = [line.split() for line in text.splitlines() if line.startswith("gross")]
    assert {row[1] for row in gross_rows} >= {"AF", "VF", "VT", "ASYSTOLE", "ventricular"}
    data = json.loads(out.read_text())  # the vfdb run wrote last
    assert set(data["records"]) == {"418", "422"}
    assert data["gross"]["VF"]["duration_se"] == 1.0
    assert data["gross"]["ventricular"]["false_per_hour"] == 0.0
    assert data["gross"]["AF"]["duration_se"] is None  # no AF in 418 and 422


def test_a_lead_the_records_lack_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="--lead 3"):
        eval_qrs_command(EvalSettings(MITDB, ("100",), lead=3), reference_peaks, None)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["eval", "qrs", "--data", "/no/such/folder"], "data folder /no/such/folder does not"),
        (["eval", "rhythm", "--data", str(MITDB), "--records", "999"], "no record '999'"),
        (["eval", "beats", "--data", str(MITDB), "--skip-s", "-1"], "--skip-s must be"),
        (["eval", "qrs", "--data", str(MITDB), "--records", ","], "--records needs"),
        (["eval", "qrs", "--data", str(MITDB), "--json", "/no/such/dir/x.json"], "--json"),
        (["bench", "signal", "--repeat", "0"], "--repeat must be 1-100"),
    ],
)
def test_cli_errors_exit_2_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv", [["eval", "qrs"], ["eval", "beats"], ["eval", "rhythm"], ["bench", "signal"]]
)
def test_help_explains_the_options(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([*argv, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "--records" in text and "--lead" in text
    assert "EC57" in text


def test_cli_eval_qrs_with_the_real_detector(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("ambulink.signal.qrs")
    out = tmp_path / "qrs.json"
    argv = ["eval", "qrs", "--data", str(MITDB), "--records", "100", "--json", str(out)]
    assert main(argv) == 0
    assert "gross" in capsys.readouterr().out
    gross = json.loads(out.read_text())["gross"]
    assert gross["tp"] + gross["fn"] == 1902
    assert gross["se"] > 0.95 and gross["ppv"] > 0.95  # a working detector, not a bar


def test_cli_eval_rhythm_on_all_leads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--lead all hands the detector every lead as columns; the reports say so."""
    out = tmp_path / "rhythm.json"
    argv = ["eval", "rhythm", "--data", str(VFDB), "--records", "418", "--lead", "all"]
    assert main([*argv, "--json", str(out)]) == 0
    assert "Rhythm episodes, all leads" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["settings"]["lead"] == "all"
    assert data["gross"]["VF"]["duration_se"] > 0.8  # a working detector, not a bar
    for bad in (["eval", "qrs", "--lead", "both"], ["bench", "signal", "--lead", "all"]):
        with pytest.raises(SystemExit) as exit_info:  # argparse's usage error
            main([*bad, "--data", str(MITDB)])
        assert exit_info.value.code == 2
    assert "expected a signal index or 'all', got 'both'" in capsys.readouterr().err


def test_cli_bench_signal_prints_peers_and_appends_to_the_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "docs" / "benchmarks.md"
    argv = [
        "bench",
        "signal",
        "--records",
        "100",
        "--seconds",
        "20",
        "--repeat",
        "1",
        "--write",
        str(log),
    ]
    assert main(argv) == 0
    assert main(argv) == 0
    text = capsys.readouterr().out
    for method in ("ambulink", "XQRS (wfdb)", "NeuroKit2"):
        assert method in text
    assert "scored over the whole excerpt" in text
    written = log.read_text()
    assert written.count("# Benchmarks") == 1
    assert written.count("— QRS detection") == 2
    assert f"ambulink bench signal --data {MITDB} --records 100 --lead 0 --repeat 1" in written
    assert "| XQRS (wfdb) |" in written and "- commit: " in written


@pytest.mark.parametrize(
    ("module", "kind", "folder", "record", "key"),
    [
        ("ambulink.signal.beats", "beats", MITDB, "119", "classes"),
        ("ambulink.signal.rhythm", "rhythm", VFDB, "422", "ventricular"),
    ],
)
def test_cli_eval_with_the_real_classifier_and_rhythm_detector(
    module: str, kind: str, folder: Path, record: str, key: str, tmp_path: Path
) -> None:
    pytest.importorskip(module)
    out = tmp_path / f"{kind}.json"
    assert main(["eval", kind, "--data", str(folder), "--records", record, "--json", str(out)]) == 0
    gross = json.loads(out.read_text())["gross"]
    assert key in gross


def test_a_signal_error_names_the_record() -> None:
    def refuses(record: EcgRecord, lead: int) -> NDArray[np.int64]:
        raise SignalError("samples must be finite")

    with pytest.raises(SignalError, match="record 119 lead 0: samples must be finite"):
        eval_qrs_command(EvalSettings(MITDB, ("119",)), refuses, None)


def test_records_without_annotations_are_named_not_silently_dropped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("100.hea", "100.dat", "100.atr", "119.hea", "119.dat"):  # 119 without .atr
        (tmp_path / name).write_bytes((MITDB / name).read_bytes())
    argv = ["eval", "qrs", "--data", str(tmp_path), "--json", str(tmp_path / "out.json")]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "1 record(s)" in captured.err and "not scored: 119" in captured.err
    assert set(json.loads((tmp_path / "out.json").read_text())["records"]) == {"100"}
