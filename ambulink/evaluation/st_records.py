"""Finding and reading the 12-lead records that ``ambulink eval st`` scores.

Three folder layouts are recognised: PTB-XL (``ptbxl_database.csv`` with ``records500/``), PTB
Diagnostic (``patient*/`` folders, or headers whose comments give a reason for admission) and
LUDB (``data/`` with headers holding ``#<diagnoses>:`` lines and per-lead delineation files).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
import wfdb
from numpy.typing import NDArray

from ambulink.errors import AmbulinkError, ConfigError, RecordNotFound
from ambulink.evaluation.records import hold_invalid_and_warn
from ambulink.evaluation.st_jpoint import QrsMark, qrs_marks
from ambulink.evaluation.st_reference import (
    StReference,
    ludb_reference,
    mi_codes,
    ptb_reference,
    ptbxl_reference,
)


class Dataset(StrEnum):
    PTBXL = "PTB-XL"
    PTB = "PTB Diagnostic"
    LUDB = "LUDB"


# Lead names as ambulink.signal.st expects them; others (PTB's Frank vx, vy, vz) are left out.
STANDARD_LEADS: dict[str, str] = {
    name.lower(): name
    for name in (
        "I", "II", "III", "aVR", "aVL", "aVF",
        *(f"V{i}" for i in range(1, 10)),
        "V3R", "V4R", "V5R", "V6R",
    )
}  # fmt: skip


@dataclass(frozen=True)
class StCase:
    """One record to score: where its WFDB files are and what the database says about it."""

    dataset: Dataset
    name: str
    path: Path  # WFDB record path without extension
    reference: StReference

    @property
    def label(self) -> str:
        return f"{self.dataset} {self.name}"


@dataclass(frozen=True)
class StSignals:
    """The standard leads of a record (mV, shape (n_samples, n_leads)) and their names."""

    signals_mv: NDArray[np.float64]
    fs: float
    leads: list[str]


def detect_dataset(data_dir: Path) -> Dataset:
    """Which database ``data_dir`` holds, from its layout; ``ConfigError`` when none fits."""
    if not data_dir.is_dir():
        raise RecordNotFound(f"data folder {data_dir} does not exist")
    if (data_dir / "ptbxl_database.csv").is_file():
        return Dataset.PTBXL
    if (data_dir / "data").is_dir() and any((data_dir / "data").glob("*.hea")):
        return Dataset.LUDB
    if any(data_dir.glob("patient*/*.hea")):
        return Dataset.PTB
    for header in sorted(data_dir.glob("*.hea"))[:1]:
        comments = _comments(header.with_suffix(""))
        if any(c.strip().startswith("<diagnoses>") for c in comments):
            return Dataset.LUDB
        if any("reason for admission" in c.lower() for c in comments):
            return Dataset.PTB
    raise ConfigError(
        f"{data_dir} is not a PTB-XL folder (ptbxl_database.csv), a PTB Diagnostic folder "
        "(patient*/ with .hea) or a LUDB folder (data/ with .hea)"
    )


def _comments(path: Path) -> list[str]:
    try:
        return [str(c) for c in wfdb.rdheader(str(path)).comments]
    except (OSError, ValueError) as exc:
        raise AmbulinkError(f"could not read WFDB header {path}.hea: {exc}") from exc


def _read_csv(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="") as file:
            return list(csv.DictReader(file))
    except OSError as exc:
        raise RecordNotFound(f"cannot read {path}: {exc}") from exc


def _ptbxl_cases(data_dir: Path) -> list[StCase]:
    statements = data_dir / "scp_statements.csv"
    if not statements.is_file():
        raise RecordNotFound(f"{statements} is missing: it maps PTB-XL codes to classes")
    mi = mi_codes(_read_csv(statements))
    cases = []
    for row in _read_csv(data_dir / "ptbxl_database.csv"):
        # The 500 Hz record; the 100 Hz one where a download left records500 out.
        paths = (data_dir / row[key] for key in ("filename_hr", "filename_lr") if row.get(key))
        path = next((p for p in paths if p.with_suffix(".hea").is_file()), None)
        if path is not None:
            name = str(int(float(row["ecg_id"])))
            cases.append(StCase(Dataset.PTBXL, name, path, ptbxl_reference(row, mi)))
    return cases


def _ptb_cases(data_dir: Path) -> list[StCase]:
    headers = sorted(data_dir.glob("patient*/*.hea")) + sorted(data_dir.glob("*.hea"))
    cases = []
    for header in headers:
        path = header.with_suffix("")
        name = str(path.relative_to(data_dir))
        cases.append(StCase(Dataset.PTB, name, path, ptb_reference(_comments(path))))
    return cases


def _ludb_cases(data_dir: Path) -> list[StCase]:
    folder = data_dir / "data" if (data_dir / "data").is_dir() else data_dir
    paths = sorted(
        (h.with_suffix("") for h in folder.glob("*.hea")),
        key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0, p.name),
    )
    return [StCase(Dataset.LUDB, p.name, p, ludb_reference(_comments(p))) for p in paths]


def list_cases(data_dir: Path) -> list[StCase]:
    """Every record of the database in ``data_dir``, in the database's order."""
    dataset = detect_dataset(data_dir)
    readers = {Dataset.PTBXL: _ptbxl_cases, Dataset.PTB: _ptb_cases, Dataset.LUDB: _ludb_cases}
    cases = readers[dataset](data_dir)
    if not cases:
        raise RecordNotFound(f"no {dataset} records in {data_dir}")
    return cases


def case_names(case: StCase) -> set[str]:
    """Names ``--records`` may use for ``case``: "468" or "00468_hr" (PTB-XL), "s0010_re" or
    "patient001/s0010_re" (PTB), "21" (LUDB)."""
    return {case.name, case.path.name}


def select_cases(cases: Sequence[StCase], selection: Sequence[str]) -> list[StCase]:
    wanted = set(selection)
    return [c for c in cases if case_names(c) & wanted]


LUDB_UNITS_PER_MV = 1000.0


def read_signals(case: StCase, seconds: float | None = None) -> StSignals:
    """The record's standard leads in mV; only the first ``seconds`` when given."""
    path = str(case.path)
    try:
        header = wfdb.rdheader(path)
        sampto = None if seconds is None else min(int(seconds * header.fs), header.sig_len)
        names = [str(n) for n in header.sig_name]
        keep = [i for i, n in enumerate(names) if n.lower() in STANDARD_LEADS]
        # LUDB's headers give each lead its own gain, equal to that lead's peak-to-peak range,
        # so p_signal puts every lead at exactly 1 mV; the stored integers are µV (I + III = II
        # holds in them exactly), so LUDB is read as integers / 1000.
        physical = case.dataset is not Dataset.LUDB
        record = wfdb.rdrecord(path, sampto=sampto, channels=keep, physical=physical)
    except FileNotFoundError as exc:
        raise RecordNotFound(f"WFDB record {path} is incomplete: {exc}") from exc
    except (OSError, ValueError) as exc:
        raise AmbulinkError(f"could not read WFDB record {path}: {exc}") from exc
    if physical:
        signals = np.asarray(record.p_signal, dtype=np.float64)
    else:
        signals = np.asarray(record.d_signal, dtype=np.float64) / LUDB_UNITS_PER_MV
    if signals.ndim != 2 or signals.shape[0] == 0 or not keep:
        raise AmbulinkError(f"WFDB record {path} holds no standard ECG leads")
    signals = hold_invalid_and_warn(signals, case.name, [names[i] for i in keep])
    leads = [STANDARD_LEADS[names[i].lower()] for i in keep]
    return StSignals(np.ascontiguousarray(signals), float(record.fs), leads)


def read_delineation(case: StCase, leads: Sequence[str]) -> dict[str, list[QrsMark]]:
    """LUDB's hand-marked QRS (peak, offset) per lead, from the ``<record>.<lead>`` files."""
    marks: dict[str, list[QrsMark]] = {}
    for lead in leads:
        extension = lead.lower()
        if not case.path.with_suffix(f".{extension}").is_file():
            continue
        try:
            annotation = wfdb.rdann(str(case.path), extension)
        except (OSError, ValueError) as exc:
            raise AmbulinkError(f"could not read {case.path}.{extension}: {exc}") from exc
        marks[lead] = qrs_marks(
            [int(s) for s in annotation.sample], [str(s) for s in annotation.symbol]
        )
    return marks
