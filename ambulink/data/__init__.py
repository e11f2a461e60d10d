"""Bundled PhysioNet records (see README.md here for sources, citations and licences)."""

from __future__ import annotations

from pathlib import Path

from ambulink.errors import RecordNotFound

DATA_DIR = Path(__file__).resolve().parent

BUNDLED_RECORDS = (
    "mitdb/100",
    "mitdb/119",
    "mitdb/201",
    "mitdb/207",
    "vfdb/418",
    "vfdb/422",
    "ptbxl/00003_hr",
    "ptbxl/00468_hr",
    "ptbdb/s0010_re",
)


def record_path(name: str) -> str:
    """WFDB record path (no extension) of a bundled record such as ``"mitdb/100"``."""
    if name not in BUNDLED_RECORDS:
        raise RecordNotFound(f"no bundled record {name!r}; bundled: {', '.join(BUNDLED_RECORDS)}")
    return str(DATA_DIR / name)
