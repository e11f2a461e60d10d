"""Finding and reading annotated WFDB records."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import wfdb

from ambulink.data import DATA_DIR
from ambulink.errors import ConfigError, RecordNotFound
from ambulink.evaluation.records import list_records, read_record


def test_bundled_mitdb_records_are_listed_in_name_order() -> None:
    assert list_records(DATA_DIR / "mitdb") == ["100", "119", "201", "207"]


def test_records_file_gives_the_order_and_records_without_atr_are_left_out(
    tmp_path: Path,
) -> None:
    for name in ("100", "119"):
        for suffix in (".hea", ".dat", ".atr"):
            shutil.copy(DATA_DIR / "mitdb" / f"{name}{suffix}", tmp_path)
    shutil.copy(DATA_DIR / "ptbxl" / "00003_hr.hea", tmp_path)  # a header without .atr
    (tmp_path / "RECORDS").write_text("119\n100\n00003_hr\n")
    assert list_records(tmp_path) == ["119", "100"]
    with pytest.raises(RecordNotFound, match=r"has no \.atr"):
        list_records(tmp_path, ["00003_hr"])


def test_selection_keeps_its_order_and_refuses_unknown_records() -> None:
    assert list_records(DATA_DIR / "mitdb", ["207", "100", "207"]) == ["207", "100"]
    with pytest.raises(RecordNotFound, match=r"no record '999'.*100, 119, 201, 207"):
        list_records(DATA_DIR / "mitdb", ["999"])


def test_missing_or_empty_folders_are_reported(tmp_path: Path) -> None:
    with pytest.raises(RecordNotFound, match="does not exist"):
        list_records(tmp_path / "nowhere")
    with pytest.raises(RecordNotFound, match="no annotated WFDB records"):
        list_records(tmp_path)


def test_read_record_in_millivolts_with_annotations() -> None:
    record = read_record(DATA_DIR / "mitdb", "100")
    assert record.fs == 360.0
    assert record.signals_mv.shape == (650_000, 2)
    assert record.lead_names == ("MLII", "V5")
    assert 0.5 < record.lead(0).max() < 5.0  # R waves of about 1-2 mV, not ADC units
    assert record.annotations.aux_note[0] == "(N\x00"


def test_read_record_excerpt_keeps_its_annotations_only() -> None:
    record = read_record(DATA_DIR / "mitdb", "100", seconds=60)
    assert record.n_samples == 21_600
    assert record.annotations.sample.max() < 21_600
    assert 60 < len(record.reference().beat_sample) < 90  # about 75 beats a minute


def test_a_lead_the_record_does_not_have_is_a_config_error() -> None:
    record = read_record(DATA_DIR / "vfdb", "418", seconds=10)
    with pytest.raises(ConfigError, match=r"leads 0-1 .*--lead 2"):
        record.lead(2)


def test_a_record_with_missing_samples_is_read_with_them_held(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """WFDB's missing-sample value reads as NaN, which every detector refuses: the reader holds
    the lead's last valid value (a flat, lost lead) and says so."""
    source = read_record(DATA_DIR / "mitdb", "100", seconds=20)
    signals = source.signals_mv.copy()
    signals[3600:5400, 0] = np.nan  # 5 s of MLII lost
    wfdb.wrsamp(
        "lost",
        fs=360,
        units=["mV", "mV"],
        sig_name=list(source.lead_names),
        p_signal=signals,
        fmt=["16", "16"],
        write_dir=str(tmp_path),
    )
    shutil.copy(DATA_DIR / "mitdb" / "100.atr", tmp_path / "lost.atr")
    with caplog.at_level("WARNING"):
        record = read_record(tmp_path, "lost", seconds=20)
    assert np.isfinite(record.signals_mv).all()
    assert np.all(record.signals_mv[3600:5400, 0] == record.signals_mv[3599, 0])
    assert np.allclose(record.signals_mv[:, 1], source.signals_mv[:, 1], atol=0.01)
    assert "lead MLII: 1800 invalid samples" in caplog.text
