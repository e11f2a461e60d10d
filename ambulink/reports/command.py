"""``ambulink ecg-report``: render a WFDB record's 10 s 12-lead page to PNG.

The only I/O of ``ambulink.reports``: reads the record with wfdb, writes the file.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ambulink.errors import ConfigError, RecordNotFound, SignalError
from ambulink.reports.ecg_image import render_12lead

Subparsers = argparse._SubParsersAction  # what add_subparsers() returns

_MICROVOLT_UNITS = {"uv", "µv", "μv"}

EPILOG = """\
Leads are matched by name, case-insensitively (I, II, III, aVR/AVR, aVL, aVF, V1-V6; MLII
counts as II); other signals, such as the Frank leads vx, vy, vz of PTB records, are ignored,
and missing leads are drawn as "(absent)". Each trace has its median over the 10 s window
removed; nothing is filtered.

example: ambulink ecg-report ambulink/data/ptbdb/s0010_re --start 5 --out s0010_re.png
"""


def read_record(record: str) -> tuple[NDArray[np.float64], float, list[str]]:
    """(samples in mV as (n, n_leads), fs in Hz, signal names) of WFDB record ``record``."""
    import wfdb

    path = Path(record).with_suffix("") if record.endswith((".hea", ".dat")) else Path(record)
    header = path.parent / f"{path.name}.hea"
    if not header.is_file():
        raise RecordNotFound(f"no WFDB record {str(path)!r}: {header} does not exist")
    try:
        rec = wfdb.rdrecord(str(path))
    except (OSError, ValueError) as exc:
        raise RecordNotFound(f"cannot read WFDB record {str(path)!r}: {exc}") from exc
    if rec.p_signal is None:
        raise SignalError(f"record {path.name} holds no physical signal")
    signals = np.array(rec.p_signal, dtype=np.float64)
    for channel, unit in enumerate(rec.units or []):
        if str(unit).strip().lower() in _MICROVOLT_UNITS:
            signals[:, channel] /= 1000.0
    return signals, float(rec.fs), [str(name) for name in rec.sig_name]


def ecg_report_command(
    record: str, out: Path | None, start_s: float, px_per_mm: float, title: str | None
) -> int:
    signals, fs_hz, names = read_record(record)
    length_s = len(signals) / fs_hz
    if not 0 <= start_s < length_s:
        raise ConfigError(f"--start must be in 0-{length_s:.2f} s for this record, got {start_s:g}")
    name = Path(record).with_suffix("").name if record.endswith(".hea") else Path(record).name
    target = out if out is not None else Path(f"{name}.png")
    if not target.parent.is_dir():
        raise ConfigError(f"--out {target}: folder {target.parent} does not exist")
    image = render_12lead(
        signals,
        fs_hz,
        names,
        start=int(round(start_s * fs_hz)),
        px_per_mm=px_per_mm,
        title=title or name,
    )
    try:
        target.write_bytes(image.png)
    except OSError as exc:
        raise ConfigError(f"cannot write --out {target}: {exc}") from exc
    absent = f"; absent: {', '.join(image.absent)}" if image.absent else ""
    print(f"wrote {target} ({image.width_px}x{image.height_px} px{absent})", file=sys.stderr)
    return 0


def _run_ecg_report(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out is not None else None
    return ecg_report_command(args.record, out, args.start, args.px_per_mm, args.title)


def register_report(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    """Add ``ambulink ecg-report``."""
    parser = subparsers.add_parser(
        "ecg-report",
        help="render a record's 12-lead ECG page (3x4 + lead II rhythm strip) as PNG",
        description=textwrap.fill(
            "Render 10 s of a WFDB record as a standard 12-lead ECG page: 3 rows x 4 columns "
            "of 2.5 s (I II III | aVR aVL aVF | V1 V2 V3 | V4 V5 V6, consecutive in time) and "
            "a 10 s lead II rhythm strip, at 25 mm/s and 10 mm/mV on a red 1 mm / 5 mm grid "
            "with a 1 mV calibration pulse per row.",
            92,
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "record",
        metavar="RECORD",
        help="WFDB record path without extension, e.g. ambulink/data/ptbdb/s0010_re",
    )
    parser.add_argument(
        "--start",
        type=float,
        default=0.0,
        metavar="S",
        help="first second of the 10 s window (default: 0)",
    )
    parser.add_argument(
        "--out",
        metavar="FILE.png",
        help="PNG to write (default: RECORD's name + .png in the current folder)",
    )
    parser.add_argument(
        "--px-per-mm",
        type=float,
        default=5.0,
        metavar="N",
        help="resolution in pixels per mm of ECG paper, 2-20 (default: 5, a 1350x1025 page)",
    )
    parser.add_argument("--title", help="heading printed on the page (default: the record name)")
    parser.set_defaults(run=_run_ecg_report)
