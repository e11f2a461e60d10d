"""Reading annotated WFDB records from a folder: the one evaluation module that uses wfdb."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import wfdb
from numpy.typing import NDArray

from ambulink.errors import AmbulinkError, ConfigError, RecordNotFound
from ambulink.evaluation.reference import Annotations, Reference, build_reference
from ambulink.signal.validation import hold_invalid

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EcgRecord:
    """A record's signals (mV, shape (n_samples, n_leads)) and its reference annotations."""

    name: str
    fs: float
    signals_mv: NDArray[np.float64]
    lead_names: tuple[str, ...]
    annotations: Annotations

    @property
    def n_samples(self) -> int:
        return int(self.signals_mv.shape[0])

    def check_lead(self, index: int | None) -> None:
        """Raise ``ConfigError`` unless the record has a lead ``index`` (None: all leads)."""
        if index is None:
            return
        n_leads = self.signals_mv.shape[1]
        if not 0 <= index < n_leads:
            raise ConfigError(
                f"record {self.name} has leads 0-{n_leads - 1} ({', '.join(self.lead_names)}); "
                f"--lead {index} is not one of them"
            )

    def lead(self, index: int | None) -> NDArray[np.float64]:
        """One lead as a contiguous 1-D array (mV); None: every lead, (n_samples, n_leads)."""
        self.check_lead(index)
        if index is None:
            return np.ascontiguousarray(self.signals_mv)
        return np.ascontiguousarray(self.signals_mv[:, index])

    def reference(self) -> Reference:
        return build_reference(self.annotations, self.fs, self.n_samples)


def list_records(data_dir: Path, selection: Sequence[str] | None = None) -> list[str]:
    """Names of the records in ``data_dir`` with a header and ``.atr`` annotations.

    Order: the folder's ``RECORDS`` file when present, else sorted names; ``selection``
    restricts to those records, in its order, and each must exist.
    """
    if not data_dir.is_dir():
        raise RecordNotFound(f"data folder {data_dir} does not exist")
    index = data_dir / "RECORDS"
    if index.is_file():
        names = [line.strip() for line in index.read_text().splitlines() if line.strip()]
    else:
        names = sorted(p.stem for p in data_dir.glob("*.hea"))
    annotated = [n for n in names if _has(data_dir, n, ".hea") and _has(data_dir, n, ".atr")]
    if selection is None:
        if not annotated:
            raise RecordNotFound(f"no annotated WFDB records (.hea with .atr) in {data_dir}")
        return annotated
    chosen: list[str] = []
    for name in dict.fromkeys(selection):
        if not _has(data_dir, name, ".hea"):
            shown = ", ".join(annotated[:20]) + (" ..." if len(annotated) > 20 else "")
            raise RecordNotFound(f"no record {name!r} in {data_dir}; annotated records: {shown}")
        if not _has(data_dir, name, ".atr"):
            raise RecordNotFound(f"record {name!r} in {data_dir} has no .atr annotations")
        chosen.append(name)
    return chosen


def unannotated_records(data_dir: Path) -> list[str]:
    """Records in ``data_dir`` with a header but no ``.atr`` annotations (they are not scored)."""
    if not data_dir.is_dir():
        return []
    return sorted(p.stem for p in data_dir.glob("*.hea") if not _has(data_dir, p.stem, ".atr"))


def _has(data_dir: Path, name: str, suffix: str) -> bool:
    return (data_dir / f"{name}{suffix}").is_file()


def read_record(data_dir: Path, name: str, seconds: float | None = None) -> EcgRecord:
    """Read record ``name`` (physical units, mV) and its ``.atr`` annotations.

    With ``seconds``, only the first ``seconds`` of signal and their annotations are kept.
    """
    path = str(data_dir / name)
    try:
        header = wfdb.rdheader(path)
        sampto = None if seconds is None else min(int(seconds * header.fs), header.sig_len)
        record = wfdb.rdrecord(path, sampto=sampto)
        annotation = wfdb.rdann(path, "atr", sampto=sampto)
    except FileNotFoundError as exc:
        raise RecordNotFound(f"WFDB record {path} is incomplete: {exc}") from exc
    except (OSError, ValueError) as exc:
        raise AmbulinkError(f"could not read WFDB record {path}: {exc}") from exc
    signals = np.asarray(record.p_signal, dtype=np.float64)
    if signals.ndim != 2 or signals.shape[0] == 0:
        raise AmbulinkError(f"WFDB record {path} holds no signal samples")
    signals = hold_invalid_and_warn(signals, name, [str(n) for n in record.sig_name])
    aux = annotation.aux_note if annotation.aux_note is not None else [""] * len(annotation.sample)
    return EcgRecord(
        name=name,
        fs=float(record.fs),
        signals_mv=signals,
        lead_names=tuple(str(n) for n in record.sig_name),
        annotations=Annotations(
            sample=np.asarray(annotation.sample, dtype=np.int64),
            symbol=tuple(str(s) for s in annotation.symbol),
            aux_note=tuple(str(a) for a in aux),
        ),
    )


def hold_invalid_and_warn(
    signals: NDArray[np.float64], name: str, leads: Sequence[str]
) -> NDArray[np.float64]:
    """``signals`` with the samples WFDB marks missing (NaN) held at the lead's last valid value
    (``hold_invalid``), and a warning per lead that had any."""
    held, invalid = hold_invalid(signals)
    for lead, count in zip(leads, invalid, strict=True):
        if count:
            logger.warning(
                "record %s, lead %s: %d invalid samples (WFDB's missing-sample value) held at "
                "the last valid value, as a monitor shows a lost signal",
                name,
                lead,
                count,
            )
    return held
