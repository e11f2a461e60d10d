"""``ambulink eval st`` and ``ambulink bench st`` end to end on real records.

The commands are driven by a stand-in analysis (R peaks from the real QRS detector, no STEMI
ever) so they are tested whatever state the ST analysis is in; the real ``analyze`` runs through
the CLI once, on a few records, when it exists.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from ambulink.cli import main
from ambulink.data import DATA_DIR
from ambulink.errors import ConfigError, SignalError
from ambulink.evaluation.st_bench import Peer, StBenchSettings
from ambulink.evaluation.st_commands import bench_st_command, eval_st_command
from ambulink.evaluation.st_evaluate import StEvalSettings
from ambulink.signal.qrs import detect


@dataclass(frozen=True)
class NeverStemi:
    """A stand-in result: R peaks of lead II, J point 40 ms after them, no finding."""

    r_peaks: NDArray[np.int64]
    j_offset_ms: float = 40.0
    stemi: bool = False
    territories: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ("no lead group meets ST-elevation criteria",)
    ischemic_depression: bool = False
    confounders: tuple[str, ...] = ()
    evaluable: bool = True
    why_not: str | None = None


SEEN: list[tuple[list[str], str | None, float | None]] = []


def never_stemi(
    signals: NDArray[np.float64],
    fs: float,
    leads: list[str],
    sex: str | None = None,
    age: float | None = None,
) -> NeverStemi:
    SEEN.append((leads, sex, age))
    if not np.ptp(signals[:, leads.index("V6")]) > 0.05:
        raise SignalError("V6 is flat")
    return NeverStemi(detect(np.ascontiguousarray(signals[:, leads.index("II")]), fs))


def test_eval_st_prints_the_tables_and_writes_json(
    shared_ecg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    SEEN.clear()
    settings = StEvalSettings(
        (shared_ecg / "ptbxl", DATA_DIR / "ptbdb", shared_ecg / "ludb"),
        records=("468", "3", "s0010_re", "21", "56"),
    )
    out = tmp_path / "st.json"
    assert eval_st_command(settings, never_stemi, out, verbose=True) == 0
    printed = capsys.readouterr()
    assert "[5/5] LUDB 56 ..." in printed.err
    lines = printed.out.splitlines()
    positives = next(line for line in lines if line.startswith("acute STEMI (positives)"))
    assert positives.split()[-5:] == ["2", "0", "2", "0", "0"]  # s0010_re and LUDB 21
    assert "Se 0.00 % (0/2) of acute STEMI flagged; Sp 100.00 % (2/2)" in printed.out
    assert "J point against LUDB's hand-marked QRS offsets, 2 records" in printed.out
    assert any(line.startswith("lead V6") for line in lines)
    assert "- Sp ≥ 95 % on normal records: met" in printed.out
    assert SEEN[1] == (
        ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"],
        "M",
        62.0,
    )  # PTB-XL 468, standard lead names; PTB's Frank leads are left out
    assert SEEN[2][1:] == ("F", 81.0)
    data = json.loads(out.read_text())
    assert [r["record"] for r in data["records"]] == ["3", "468", "s0010_re", "21", "56"]
    assert data["gross"]["se"] == 0.0
    assert data["gross"]["groups"]["subendocardial"]["records"] == 1
    assert data["by_dataset"]["LUDB"]["groups"]["stemi"]["records"] == 1
    assert data["gross"]["reasons"] == {"no lead group meets ST-elevation criteria": 5}
    jpoint = data["jpoint"]
    assert jpoint["records"] == 2
    assert jpoint["n"] > 15
    assert set(jpoint["per_lead"]) == {"I", "II", "III", "aVR", "aVL", "aVF"} | {
        f"V{i}" for i in range(1, 7)
    }


def test_a_refused_record_is_reported_not_evaluable(capsys: pytest.CaptureFixture[str]) -> None:
    def refuse(
        signals: NDArray[np.float64],
        fs: float,
        leads: list[str],
        sex: str | None = None,
        age: float | None = None,
    ) -> NeverStemi:
        raise SignalError("fs must be 100-2000 Hz")

    eval_st_command(StEvalSettings((DATA_DIR / "ptbdb",)), refuse, None)
    out = capsys.readouterr().out
    refused = [line for line in out.splitlines() if line.startswith("the analysis refused")]
    assert [" ".join(line.split()) for line in refused] == [
        "the analysis refused the record: fs must be 100-2000 Hz 1"
    ]
    assert "Se 0.00 % (0/1)" in out


def test_eval_st_rejects_bad_folders_and_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", "st", "--data", str(DATA_DIR / "mitdb")]) == 2
    assert "is not a PTB-XL folder" in capsys.readouterr().err
    assert main(["eval", "st", "--data", str(tmp_path / "absent")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="--jpoint needs a LUDB folder"):
        eval_st_command(StEvalSettings((DATA_DIR / "ptbdb",), jpoint=True), never_stemi, None)
    with pytest.raises(ConfigError, match="--limit"):
        StEvalSettings((DATA_DIR / "ptbdb",), limit=0)


def test_bench_st_appends_a_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "benchmarks.md"
    peer = Peer("peer", None, "not installed")
    settings = StBenchSettings(DATA_DIR / "ptbxl", repeat=1)
    assert bench_st_command(settings, never_stemi, peer, log) == 0
    printed = capsys.readouterr()
    assert "first 10 s of 2 records" in printed.out
    assert "peer: not installed; skipped" in printed.err
    section = log.read_text()
    assert section.startswith("# Benchmarks")
    assert "— 12-lead ST analysis time" in section
    assert f"`ambulink bench st --data {DATA_DIR / 'ptbxl'} --repeat 1 --write {log}`" in section
    assert "bar ≤ 50 ms on one core" in section


def test_real_analysis_through_the_cli(
    shared_ecg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("ambulink.signal.st")
    out = tmp_path / "st.json"
    argv = ["eval", "st", "--data", str(shared_ecg / "ludb"), "--limit", "3", "--json", str(out)]
    assert main(argv) == 0
    assert "reference group" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert len(data["records"]) == 3
    assert data["jpoint"]["n"] > 0
    log = tmp_path / "benchmarks.md"
    assert main(["bench", "st", "--repeat", "1", "--limit", "1", "--write", str(log)]) == 0
    assert "ms per 10 s 12-lead analysis" in log.read_text()
