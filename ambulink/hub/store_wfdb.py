"""Write a stored ECG stream as a WFDB record (DESIGN §3.9), off the event loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import wfdb

from ambulink.hub.store_types import StoredStream

WFDB_INVALID_16 = -32768  # format 16's "no sample here" value; wfdb reads it back as NaN


def write_wfdb(stored: StoredStream, directory: Path, record_name: str) -> Path:
    """Write ``stored`` as record ``record_name`` in ``directory``; return the record's path
    without extension. Record sample ``i`` is stream sample ``i``: the part before the first
    stored frame and every gap hold ``WFDB_INVALID_16``."""
    n_leads = len(stored.leads)
    signal = np.full(
        (stored.first_sample + len(stored.samples), n_leads), WFDB_INVALID_16, dtype=np.int64
    )
    signal[stored.first_sample :] = stored.samples
    for start, stop in stored.gaps:
        signal[start:stop] = WFDB_INVALID_16
    directory.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(
        record_name,
        fs=stored.fs,
        units=["mV"] * n_leads,
        sig_name=list(stored.leads),
        d_signal=signal,
        fmt=["16"] * n_leads,
        adc_gain=[stored.gain] * n_leads,
        baseline=[0] * n_leads,
        write_dir=str(directory),
    )
    return directory / record_name
