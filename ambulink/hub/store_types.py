"""Values and errors of the case store (``ambulink.hub.store``), kept apart so callers and tests
can import them without the store's SQLite machinery.

Errors (each sets ``code``; they belong in ``ambulink.errors`` once the lead moves them there)::

    AmbulinkError
    ├── StorageUnavailable   the database cannot be opened, read or written, or the store is closed
    ├── StoreRejected        input that breaks the store's contract (bad id, frame size, params)
    ├── UnknownCase          no case with that id
    ├── UnknownStream        no stream with that id in the case
    ├── CaseConflict         a case id reused for another unit
    └── StreamConflict       a stream reopened with different parameters
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ambulink.errors import AmbulinkError


class StorageUnavailable(AmbulinkError):
    code = "storage_unavailable"


class StoreRejected(AmbulinkError, ValueError):
    code = "store_rejected"


class UnknownCase(AmbulinkError, LookupError):
    code = "unknown_case"


class UnknownStream(AmbulinkError, LookupError):
    code = "unknown_stream"


class CaseConflict(AmbulinkError):
    code = "case_conflict"


class StreamConflict(AmbulinkError):
    code = "stream_conflict"


@dataclass(frozen=True)
class FrameRecord:
    """One ECG frame as the store keeps it (the hub converts from the protocol's frame).

    ``payload`` is the frame's raw samples: int16, little-endian, sample-major (all leads of
    sample 0, then of sample 1, ...), ``n_samples * n_leads * 2`` bytes.
    """

    stream_id: int
    seq: int
    first_sample: int
    n_samples: int
    lead_off: int
    payload: bytes


@dataclass(frozen=True)
class StoredStream:
    """A stored ECG stream read back.

    ``samples[i]`` is stream sample ``first_sample + i`` (ADC units, ``gain`` units per mV), for
    every lead in ``leads``. ``gaps`` are half-open ``(start, stop)`` ranges of stream sample
    indices inside the array that no stored frame covers; those samples are 0. Seqs missing before
    the first stored frame are reported by ``CaseStore.missing``, not here.
    """

    fs: int
    gain: float
    leads: list[str]
    samples: NDArray[np.int16]  # (n_samples, n_leads)
    first_sample: int
    gaps: list[tuple[int, int]]


@dataclass(frozen=True)
class CaseInfo:
    case_id: str
    unit_id: str
    created_at: float  # wall-clock seconds since the epoch


@dataclass(frozen=True)
class StreamInfo:
    case_id: str
    stream_id: int
    fs: int
    leads: list[str]
    gain: float
    started_at: float
    contiguous_seq: int  # highest seq with every seq up to it stored; -1 when seq 0 is missing
    highest_seq: int  # highest seq stored; -1 when none
