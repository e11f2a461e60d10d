"""Reference groups for STEMI scoring, from real PTB-XL, PTB Diagnostic and LUDB metadata."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest
import wfdb

from ambulink.data import DATA_DIR, record_path
from ambulink.errors import ConfigError
from ambulink.evaluation.st_records import Dataset, detect_dataset, list_cases, read_signals
from ambulink.evaluation.st_reference import (
    Group,
    StReference,
    ludb_diagnoses,
    ludb_reference,
    mi_codes,
    parse_ptb_date,
    parse_scp_codes,
    ptb_reference,
    ptb_territories,
    ptbxl_reference,
)

MI = frozenset({"IMI", "ASMI", "ILMI", "AMI", "ALMI", "INJAS", "LMI", "INJAL", "INJIN", "PMI"})


def ptbxl_row(codes: str, stadium: str = "", sex: str = "0", age: str = "60.0") -> dict[str, str]:
    return {"scp_codes": codes, "infarction_stadium1": stadium, "sex": sex, "age": age}


def test_scp_codes_are_parsed_and_bad_ones_rejected() -> None:
    assert parse_scp_codes("{'NORM': 100.0, 'SR': 0.0}") == {"NORM": 100.0, "SR": 0.0}
    with pytest.raises(ConfigError, match="dict literal"):
        parse_scp_codes("NORM=100")
    with pytest.raises(ConfigError, match="dict literal"):
        parse_scp_codes("['NORM']")


def test_ptbxl_acute_mi_is_positive_only_at_stadium_i_or_ii() -> None:
    acute = ptbxl_reference(ptbxl_row("{'IMI': 100.0, 'LMI': 50.0}", "Stadium I", sex="1"), MI)
    assert acute == StReference(
        Group.STEMI, ("inferior", "lateral"), "F", 60.0, "IMI 100, LMI 50; Stadium I"
    )
    assert ptbxl_reference(ptbxl_row("{'ASMI': 80.0}", "Stadium I-II"), MI).group is Group.STEMI
    assert ptbxl_reference(ptbxl_row("{'ASMI': 80.0}", "Stadium II"), MI).territories == (
        "anterior",
    )
    for stadium in ("Stadium III", "Stadium II-III", "unknown", ""):
        assert ptbxl_reference(ptbxl_row("{'ASMI': 80.0}", stadium), MI).group is Group.OLD_MI
    # below 50 % likelihood the MI code does not count, and the record is no normal either
    weak = ptbxl_reference(ptbxl_row("{'IMI': 15.0, 'NORM': 80.0}", "Stadium I"), MI)
    assert weak.group is Group.OTHER


def test_ptbxl_injury_codes_are_subendocardial_not_stemi() -> None:
    for code in ("INJAS", "INJAL", "INJIN"):
        found = ptbxl_reference(ptbxl_row(f"{{'{code}': 50.0}}", "Stadium I"), MI)
        assert found.group is Group.SUBENDOCARDIAL
        assert found.territories == ()
    assert ptbxl_reference(ptbxl_row("{'NORM': 100.0, 'SR': 0.0}"), MI).group is Group.NORMAL
    assert ptbxl_reference(ptbxl_row("{'NORM': 40.0}"), MI).group is Group.OTHER


def test_shared_ptbxl_database(shared_ecg: Path) -> None:
    folder = shared_ecg / "ptbxl"
    with (folder / "scp_statements.csv").open(newline="") as file:
        mi = mi_codes(csv.DictReader(file))
    assert {"IMI", "ASMI", "INJAS", "INJIL", "PMI"} <= mi
    assert "NORM" not in mi
    cases = {c.name: c for c in list_cases(folder)}
    assert len(cases) == 147
    assert cases["468"].reference.group is Group.SUBENDOCARDIAL  # INJAL 50, not a positive
    assert cases["468"].reference.sex == "M"
    assert cases["3"].reference == StReference(Group.NORMAL, (), "F", 37.0, "NORM 100")
    assert cases["139"].reference.group is Group.OLD_MI  # IMI 100, stadium unknown
    assert cases["3"].path == folder / "records500" / "00000" / "00003_hr"
    groups = [c.reference.group for c in cases.values()]
    assert groups.count(Group.NORMAL) == 89
    assert Group.STEMI not in groups  # the development subset has no acute PTB-XL MI


def test_ptbxl_folder_with_only_100_hz_records(shared_ecg: Path, tmp_path: Path) -> None:
    """A PTB-XL download without records500 is read at 100 Hz, not found empty."""
    for name in ("ptbxl_database.csv", "scp_statements.csv"):
        (tmp_path / name).write_bytes((shared_ecg / "ptbxl" / name).read_bytes())
    (tmp_path / "records100").symlink_to(shared_ecg / "ptbxl" / "records100")
    cases = {c.name: c for c in list_cases(tmp_path)}
    assert len(cases) == 147
    assert cases["3"].path == tmp_path / "records100" / "00000" / "00003_lr"
    assert read_signals(cases["3"]).fs == 100.0


def test_ptb_dates_and_localizations() -> None:
    assert parse_ptb_date("01/10/1990") == date(1990, 10, 1)
    assert parse_ptb_date("29-Sep-90") == date(1990, 9, 29)
    assert parse_ptb_date("n/a") is None
    assert ptb_territories("infero-latera") == ("inferior", "lateral")
    assert ptb_territories("antero-septo-lateral") == ("anterior", "lateral")
    assert ptb_territories("infero-postero-lateral") == ("inferior", "posterior", "lateral")


def test_bundled_s0010_re_is_an_acute_infero_lateral_mi() -> None:
    reference = ptb_reference(wfdb.rdheader(record_path("ptbdb/s0010_re")).comments)
    assert reference.group is Group.STEMI
    assert reference.territories == ("inferior", "lateral")
    assert (reference.sex, reference.age) == ("F", 81.0)
    assert "2 days after onset" in reference.note
    assert detect_dataset(DATA_DIR / "ptbdb") is Dataset.PTB


def ptb_comments(reason: str, localization: str, onset: str, ecg: str) -> list[str]:
    return [
        "age: 50",
        "sex: male",
        f"ECG date: {ecg}",
        "Diagnose:",
        f"Reason for admission: {reason}",
        f"Acute infarction (localization): {localization}",
        f"Infarction date (acute): {onset}",
    ]


def test_ptb_late_ecgs_and_controls() -> None:
    late = ptb_reference(
        ptb_comments("Myocardial infarction", "anterior", "01-Jan-91", "20/01/1991")
    )
    assert late.group is Group.OLD_MI
    unknown = ptb_reference(ptb_comments("Myocardial infarction", "inferior", "n/a", "20/01/1991"))
    assert unknown.group is Group.OLD_MI
    acute = ptb_reference(
        ptb_comments("Myocardial infarction", "anterior", "01-Jan-91", "08/01/1991")
    )
    assert (acute.group, acute.territories, acute.sex) == (Group.STEMI, ("anterior",), "M")
    assert ptb_reference(ptb_comments("Healthy control", "no", "n/a", "n/a")).group is Group.NORMAL
    assert ptb_reference(ptb_comments("Cardiomyopathy", "no", "n/a", "n/a")).group is Group.OTHER


def test_ludb_21_is_an_anterior_stemi_and_normals_are_normal(shared_ecg: Path) -> None:
    data = shared_ecg / "ludb" / "data"
    stemi = ludb_reference(wfdb.rdheader(str(data / "21")).comments)
    assert stemi.group is Group.STEMI
    assert stemi.territories == (
        "anterior",
        "lateral",
    )  # anterior, lateral, septal; apical unmapped
    assert (stemi.sex, stemi.age) == ("M", 55.0)
    normal = ludb_reference(wfdb.rdheader(str(data / "56")).comments)
    assert normal.group is Group.NORMAL
    assert ludb_diagnoses(wfdb.rdheader(str(data / "56")).comments) == [
        "Rhythm: Sinus rhythm",
        "Electric axis of the heart: vertical",
    ]
    assert ludb_reference(wfdb.rdheader(str(data / "4")).comments).group is Group.OLD_MI


def test_ludb_groups_agree_with_labels_csv(shared_ecg: Path) -> None:
    folder = shared_ecg / "ludb"
    with (folder / "labels.csv").open(newline="") as file:
        labels = {row["record"]: row["label"] for row in csv.DictReader(file)}
    cases = list_cases(folder)
    assert len(cases) == len(labels) == 100
    assert {c.name: c.reference.group.value for c in cases} == labels
