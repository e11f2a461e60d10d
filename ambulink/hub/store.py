"""The durable case store: every ECG frame and vitals message of every case, in SQLite (WAL).

The hub acks a frame to the ambulance only once ``put_frames`` has returned, and the tablet then
deletes its copy (DESIGN §3.3), so a returned ``put_frames`` means "committed to disk". Each
``(case, stream, seq)`` is stored exactly once: the primary key plus ``INSERT OR IGNORE`` make
resent and backfilled frames harmless; the first copy stored wins.

One sqlite3 connection lives on one worker thread (``store_worker.SqliteWorker``), so the event
loop never waits on the disk; writes are group-committed: the frames of many ambulances that
arrive during one commit share the next transaction and its fsync.

Durability (``synchronous``):

- ``"FULL"`` (default): SQLite fsyncs the write-ahead log on every commit, so an acknowledged
  frame survives a process crash *and* a power loss or kernel panic. Cost: one fsync per group
  commit, from ~0.05 ms (NVMe with a write cache) to ~10 ms (spinning disk, cloud volume); group
  commit keeps that cost per batch, not per frame.
- ``"NORMAL"``: WAL pages reach the OS before the commit returns but are fsynced only at
  checkpoints. A crash of the hub process loses nothing (the OS still writes the pages); a power
  loss can roll back the last commits, i.e. frames already acked and deleted on the tablet.
  Use it only on storage with power-loss protection.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal

import numpy as np

from ambulink.hub.store_schema import SCHEMA, SCHEMA_VERSION, load_seqs
from ambulink.hub.store_seq import SeqTracker
from ambulink.hub.store_types import (
    CaseConflict,
    CaseInfo,
    FrameRecord,
    StorageUnavailable,
    StoredStream,
    StoreRejected,
    StreamConflict,
    StreamInfo,
    UnknownCase,
    UnknownStream,
)
from ambulink.hub.store_worker import SqliteWorker

__all__ = [
    "CaseConflict",
    "CaseInfo",
    "CaseStore",
    "FrameRecord",
    "StorageUnavailable",
    "StoreRejected",
    "StoredStream",
    "StreamConflict",
    "StreamInfo",
    "UnknownCase",
    "UnknownStream",
    "open_case_store",
]

# Ids end up in file names, Redis keys and URLs: opaque tokens only, never patient data.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_MAX_U32 = 2**32 - 1
_MAX_I64 = 2**63 - 1


@dataclass
class _Stream:
    fs: int
    leads: list[str]
    gain: float
    started_at: float
    seqs: SeqTracker | None = field(default=None)  # loaded on first use


def _check_id(kind: str, value: str) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise StoreRejected(
            f"{kind} must be 1-64 letters, digits, '_' or '-' (an opaque id), got {value!r}"
        )
    return value


def _check_int(name: str, value: int, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise StoreRejected(f"{name} must be an integer in [{low}, {high}], got {value!r}")
    return value


class CaseStore:
    """Async facade over the SQLite case store; see the module docstring for durability.

    Use ``async with open_case_store(path) as store`` (or ``await CaseStore.open(path)`` and
    ``close()``). Methods must be called from the event loop that opened the store.
    """

    def __init__(self, path: Path, clock: Callable[[], float]) -> None:
        self.path = path
        self._db = SqliteWorker(path)
        self._clock = clock
        self._streams: dict[tuple[str, int], _Stream] = {}  # touched on the worker thread only

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        clock: Callable[[], float] = time.time,
    ) -> CaseStore:
        """Open (creating folders, file and tables) the store at ``path``."""
        if synchronous not in ("FULL", "NORMAL"):
            raise StoreRejected(f"synchronous must be 'FULL' or 'NORMAL', got {synchronous!r}")
        store = cls(Path(path), clock)
        await store._db.open(synchronous, store._setup)
        return store

    def _setup(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            raise StorageUnavailable(
                f"case store {self.path} has schema version {version}; "
                f"this ambulink reads version {SCHEMA_VERSION}"
            )
        conn.executescript(f"BEGIN; {SCHEMA} PRAGMA user_version={SCHEMA_VERSION}; COMMIT;")
        for case_id, stream_id, fs, leads, gain, started_at in conn.execute(
            "SELECT case_id, stream_id, fs, leads, gain, started_at FROM streams"
        ):
            self._streams[(case_id, stream_id)] = _Stream(fs, json.loads(leads), gain, started_at)

    async def close(self) -> None:
        """Finish pending writes, then close the database. Idempotent."""
        await self._db.close()

    async def __aenter__(self) -> CaseStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ---- helpers, run on the worker thread --------------------------------------------------

    def _stream(self, conn: sqlite3.Connection, case_id: str, stream_id: int) -> _Stream:
        """The stream's parameters; also sees streams opened earlier in the open transaction."""
        stream = self._streams.get((case_id, stream_id))
        if stream is not None:
            return stream
        row = conn.execute(
            "SELECT fs, leads, gain, started_at FROM streams WHERE case_id=? AND stream_id=?",
            (case_id, stream_id),
        ).fetchone()
        if row is None:
            if not self._case_exists(conn, case_id):
                raise UnknownCase(f"no case {case_id!r} in the case store")
            raise UnknownStream(f"case {case_id} has no stream {stream_id}; open it first")
        return _Stream(row[0], json.loads(row[1]), row[2], row[3])

    def _seqs(self, conn: sqlite3.Connection, case_id: str, stream_id: int) -> SeqTracker:
        stream = self._streams.get((case_id, stream_id))
        if stream is None:
            stream = self._stream(conn, case_id, stream_id)
            self._streams[(case_id, stream_id)] = stream
        if stream.seqs is None:
            stream.seqs = load_seqs(conn, case_id, stream_id)
        return stream.seqs

    @staticmethod
    def _case_exists(conn: sqlite3.Connection, case_id: str) -> bool:
        found = conn.execute("SELECT 1 FROM cases WHERE case_id=?", (case_id,)).fetchone()
        return found is not None

    # ---- cases and streams -----------------------------------------------------------------

    async def create_case(self, unit_id: str, case_id: str | None = None) -> str:
        """Create a case for ``unit_id`` and return its id (a uuid4 hex when not given).

        Creating an existing case for the same unit returns it; for another unit it raises
        ``CaseConflict``.
        """
        _check_id("unit_id", unit_id)
        case_id = uuid.uuid4().hex if case_id is None else _check_id("case_id", case_id)
        created_at = self._clock()

        def apply(conn: sqlite3.Connection) -> Callable[[], str]:
            row = conn.execute("SELECT unit_id FROM cases WHERE case_id=?", (case_id,)).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO cases (case_id, unit_id, created_at) VALUES (?, ?, ?)",
                    (case_id, unit_id, created_at),
                )
            elif row[0] != unit_id:
                raise CaseConflict(f"case {case_id} belongs to unit {row[0]}, not {unit_id}")
            return lambda: case_id

        return await self._db.write(apply)

    async def open_stream(
        self,
        case_id: str,
        stream_id: int,
        fs: int,
        leads: list[str],
        gain: float,
        started_at: float,
    ) -> None:
        """Declare an ECG stream of a case. Idempotent with the same parameters; different ones
        raise ``StreamConflict`` (a stream's samples cannot change meaning)."""
        _check_id("case_id", case_id)
        _check_int("stream_id", stream_id, 0, _MAX_U32)
        _check_int("fs", fs, 1, 65535)
        if not (0 < len(leads) <= 255 and all(isinstance(lead, str) and lead for lead in leads)):
            raise StoreRejected(f"leads must be 1-255 non-empty names, got {leads!r}")
        if not (isinstance(gain, int | float) and math.isfinite(gain) and gain > 0):
            raise StoreRejected(f"gain must be a positive number of ADC units per mV, got {gain!r}")
        if not (isinstance(started_at, int | float) and math.isfinite(started_at)):
            raise StoreRejected(f"started_at must be a finite time in seconds, got {started_at!r}")
        wanted = _Stream(fs, list(leads), float(gain), float(started_at))

        def apply(conn: sqlite3.Connection) -> Callable[[], None]:
            try:
                have = self._stream(conn, case_id, stream_id)
            except UnknownStream:
                conn.execute(
                    "INSERT INTO streams (case_id, stream_id, fs, leads, gain, started_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        case_id,
                        stream_id,
                        fs,
                        json.dumps(wanted.leads),
                        wanted.gain,
                        wanted.started_at,
                    ),
                )

                def remember() -> None:
                    self._streams.setdefault((case_id, stream_id), wanted)

                return remember
            params = (have.fs, have.leads, have.gain, have.started_at)
            if params != (wanted.fs, wanted.leads, wanted.gain, wanted.started_at):
                raise StreamConflict(
                    f"case {case_id} stream {stream_id} is open with fs={have.fs} Hz, "
                    f"{len(have.leads)} leads {have.leads}, gain={have.gain}, "
                    f"started_at={have.started_at}; refusing fs={fs} Hz, {len(leads)} leads "
                    f"{leads}, gain={gain}, started_at={started_at}"
                )
            return lambda: None

        await self._db.write(apply)

    # ---- frames ----------------------------------------------------------------------------

    async def put_frames(self, case_id: str, frames: Sequence[FrameRecord]) -> dict[int, int]:
        """Store ``frames`` (each ``(case, stream, seq)`` once; the first copy wins) in one
        transaction, committed before returning.

        Returns ``{stream_id: highest contiguous durable seq}`` (-1 while seq 0 is missing) for
        every stream in ``frames``: the value to ack. The whole call is refused (nothing stored)
        when a frame is malformed or names a stream that was never opened.
        """
        _check_id("case_id", case_id)
        frames = list(frames)
        for frame in frames:
            _check_int("stream_id", frame.stream_id, 0, _MAX_U32)
            _check_int("seq", frame.seq, 0, _MAX_I64)
            _check_int("first_sample", frame.first_sample, 0, _MAX_I64)
            _check_int("n_samples", frame.n_samples, 1, 65535)
            _check_int("lead_off", frame.lead_off, 0, 65535)
            if not isinstance(frame.payload, bytes):
                raise StoreRejected(f"frame payload must be bytes, got {type(frame.payload)}")

        def apply(conn: sqlite3.Connection) -> Callable[[], dict[int, int]]:
            rows = []
            for frame in frames:
                n_leads = len(self._stream(conn, case_id, frame.stream_id).leads)
                expected = 2 * n_leads * frame.n_samples
                if len(frame.payload) != expected:
                    raise StoreRejected(
                        f"case {case_id} stream {frame.stream_id} seq {frame.seq}: "
                        f"{frame.n_samples} samples x {n_leads} leads need {expected} bytes, "
                        f"got {len(frame.payload)}"
                    )
                rows.append(
                    (
                        case_id,
                        frame.stream_id,
                        frame.seq,
                        frame.first_sample,
                        frame.n_samples,
                        frame.lead_off,
                        frame.payload,
                    )
                )
            conn.executemany(
                "INSERT OR IGNORE INTO frames (case_id, stream_id, seq, first_sample, n_samples,"
                " lead_off, payload) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

            def finish() -> dict[int, int]:
                for frame in frames:
                    self._seqs(conn, case_id, frame.stream_id).add(frame.seq)
                return {
                    stream_id: self._seqs(conn, case_id, stream_id).contiguous
                    for stream_id in dict.fromkeys(frame.stream_id for frame in frames)
                }

            return finish

        return await self._db.write(apply)

    async def contiguous_seq(self, case_id: str, stream_id: int) -> int:
        """Highest seq such that every seq from 0 to it is stored; -1 while seq 0 is missing."""
        return await self._db.read(lambda conn: self._seqs(conn, case_id, stream_id).contiguous)

    async def missing(self, case_id: str, stream_id: int, up_to_seq: int) -> list[tuple[int, int]]:
        """Inclusive ranges of seqs in ``[0, up_to_seq]`` that are not stored, in order."""
        return await self._db.read(
            lambda conn: self._seqs(conn, case_id, stream_id).missing(up_to_seq)
        )

    async def read_samples(self, case_id: str, stream_id: int) -> StoredStream:
        """Every stored sample of a stream, with the holes between stored frames as ``gaps``."""

        def work(conn: sqlite3.Connection) -> StoredStream:
            stream = self._stream(conn, case_id, stream_id)
            rows = conn.execute(
                "SELECT first_sample, n_samples, payload FROM frames "
                "WHERE case_id=? AND stream_id=? ORDER BY seq",
                (case_id, stream_id),
            ).fetchall()
            return _assemble(stream, sorted(rows, key=lambda row: int(row[0])))

        return await self._db.read(work)

    # ---- vitals and listings ---------------------------------------------------------------

    async def put_vitals(self, case_id: str, at: float, payload: str) -> None:
        """Store one vitals message (JSON text as received) at wall time ``at`` (s)."""
        _check_id("case_id", case_id)
        if not (isinstance(at, int | float) and math.isfinite(at)):
            raise StoreRejected(f"vitals time must be finite seconds, got {at!r}")
        if not isinstance(payload, str):
            raise StoreRejected(f"vitals payload must be JSON text, got {type(payload)}")

        def apply(conn: sqlite3.Connection) -> Callable[[], None]:
            if not self._case_exists(conn, case_id):
                raise UnknownCase(f"no case {case_id!r} in the case store")
            conn.execute(
                "INSERT INTO vitals (case_id, at, payload) VALUES (?, ?, ?)",
                (case_id, float(at), payload),
            )
            return lambda: None

        await self._db.write(apply)

    async def get_case(self, case_id: str) -> CaseInfo:
        """One case; ``UnknownCase`` when the store has none by that id."""

        def work(conn: sqlite3.Connection) -> CaseInfo:
            row = conn.execute(
                "SELECT case_id, unit_id, created_at FROM cases WHERE case_id=?", (case_id,)
            ).fetchone()
            if row is None:
                raise UnknownCase(f"no case {case_id!r} in the case store")
            return CaseInfo(*row)

        return await self._db.read(work)

    async def list_cases(self) -> list[CaseInfo]:
        def work(conn: sqlite3.Connection) -> list[CaseInfo]:
            rows = conn.execute(
                "SELECT case_id, unit_id, created_at FROM cases ORDER BY created_at, case_id"
            )
            return [CaseInfo(*row) for row in rows]

        return await self._db.read(work)

    async def list_streams(self, case_id: str) -> list[StreamInfo]:
        def work(conn: sqlite3.Connection) -> list[StreamInfo]:
            if not self._case_exists(conn, case_id):
                raise UnknownCase(f"no case {case_id!r} in the case store")
            ids = [
                row[0]
                for row in conn.execute(
                    "SELECT stream_id FROM streams WHERE case_id=? ORDER BY stream_id", (case_id,)
                )
            ]
            infos = []
            for stream_id in ids:
                seqs = self._seqs(conn, case_id, stream_id)
                s = self._streams[(case_id, stream_id)]
                infos.append(
                    StreamInfo(
                        case_id,
                        stream_id,
                        s.fs,
                        list(s.leads),
                        s.gain,
                        s.started_at,
                        seqs.contiguous,
                        seqs.highest,
                    )
                )
            return infos

        return await self._db.read(work)

    async def list_vitals(
        self, case_id: str, since: float | None = None
    ) -> list[tuple[float, str]]:
        """Vitals of a case as ``(at, payload)`` in time order, those with ``at >= since``."""

        def work(conn: sqlite3.Connection) -> list[tuple[float, str]]:
            if not self._case_exists(conn, case_id):
                raise UnknownCase(f"no case {case_id!r} in the case store")
            rows = conn.execute(
                "SELECT at, payload FROM vitals WHERE case_id=? AND at>=? ORDER BY at, id",
                (case_id, -math.inf if since is None else since),
            )
            return [(float(at), str(payload)) for at, payload in rows]

        return await self._db.read(work)

    # ---- export ----------------------------------------------------------------------------

    async def export_wfdb(self, case_id: str, stream_id: int, directory: Path) -> Path:
        """Write a stored stream as the WFDB record ``<case_id>_s<stream_id>`` (format 16, ADC
        gain = the stream's gain, baseline 0, mV) and return its path without extension, as
        ``wfdb.rdrecord`` takes it. Sample ``i`` of the record is stream sample ``i``; samples
        not stored are WFDB's invalid value (-32768, read back as NaN). No dates are written.
        """
        from ambulink.hub.store_wfdb import write_wfdb  # wfdb is only needed to export

        stored = await self.read_samples(case_id, stream_id)
        name = f"{case_id}_s{stream_id}"
        return await asyncio.to_thread(write_wfdb, stored, Path(directory), name)


def _assemble(stream: _Stream, rows: list[tuple[int, int, bytes]]) -> StoredStream:
    n_leads = len(stream.leads)
    if not rows:
        empty = np.zeros((0, n_leads), dtype=np.int16)
        return StoredStream(stream.fs, stream.gain, list(stream.leads), empty, 0, [])
    start = rows[0][0]
    stop = max(first + n for first, n, _ in rows)
    samples = np.zeros((stop - start, n_leads), dtype=np.int16)
    gaps: list[tuple[int, int]] = []
    covered = start
    for first, n, payload in rows:
        if first > covered:
            gaps.append((covered, first))
        block = np.frombuffer(payload, dtype="<i2").reshape(n, n_leads)
        samples[first - start : first - start + n] = block
        covered = max(covered, first + n)
    return StoredStream(stream.fs, stream.gain, list(stream.leads), samples, start, gaps)


@asynccontextmanager
async def open_case_store(
    path: Path,
    *,
    synchronous: Literal["FULL", "NORMAL"] = "FULL",
    clock: Callable[[], float] = time.time,
) -> AsyncIterator[CaseStore]:
    """``async with open_case_store(path) as store:`` opens the store and closes it after."""
    store = await CaseStore.open(path, synchronous=synchronous, clock=clock)
    try:
        yield store
    finally:
        await store.close()
