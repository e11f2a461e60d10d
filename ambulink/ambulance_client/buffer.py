"""The tablet's store-and-forward disk buffer (DESIGN §3.3): no frame is lost to an outage.

Every encoded frame is written here before it is sent and deleted only when the hub's ``ack``
says it is durably stored. The buffer is SQLite in WAL mode with ``synchronous=FULL``: each
``put`` is its own transaction, committed (and the WAL fsynced) before it returns, so a frame
that ``put`` accepted survives the process being killed and, as far as the disk keeps its
promises, a power cut.

The API is synchronous on purpose: the client calls it from a worker thread
(``asyncio.to_thread``), so the event loop never waits on an fsync. One connection serves every
thread, serialised by a lock.

Tables: ``frames(stream_id, seq, data)`` holds the unacked frames; ``streams(stream_id,
next_seq, acked_seq)`` is each stream's high-water marks, kept after a full ack so that
``next_seq`` never restarts at 0 and a late duplicate ``put`` of an acked seq is not stored again.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from ambulink.errors import AmbulinkError, ProtocolError

_SCHEMA_VERSION = 1
_MAX_SEQ = 2**63 - 1  # SQLite INTEGER is a signed 64-bit value; the wire's u64 fits in practice
_MAX_STREAM_ID = 2**32 - 1
_GET_CHUNK = 500  # seqs per ``IN (...)`` query, well under SQLite's bound-variable limit

# 60 min of 12-lead 500 Hz int16: 3600 s * 500 Hz * 12 leads * 2 B = 43.2 MB of samples. With
# 20 ms frames (the smallest typical, DESIGN §3.2) there are 50 frames/s * 3600 s = 180,000
# frames of 40 B header + CRC = 7.2 MB, so an hour is 50.4 MB of frame bytes. 256 MiB
# (268.4 MB) holds 5.3 h at 20 ms frames, leaving room for SQLite's page and row overhead
# (which ``capacity_bytes`` does not count) and for a second stream.
DEFAULT_CAPACITY_BYTES = 256 * 2**20


class BufferFull(AmbulinkError):
    """A ``put`` would exceed the buffer's capacity; nothing was stored and nothing dropped."""

    code = "buffer_full"


class BufferConflict(AmbulinkError):
    """A ``put`` of a (stream, seq) already buffered with different bytes."""

    code = "buffer_conflict"


@dataclass(frozen=True, slots=True)
class StreamStats:
    """One stream's share of the buffer."""

    frames: int
    bytes: int
    oldest_unacked_seq: int | None  # None when every frame put so far is acked
    next_seq: int
    acked_seq: int  # highest seq the hub acked, -1 before the first ack


@dataclass(frozen=True, slots=True)
class BufferStats:
    """Frames and frame bytes held (unacked), in total and per stream."""

    frames: int
    bytes: int
    capacity_bytes: int
    streams: dict[int, StreamStats]


def _check_ids(stream_id: int, seq: int) -> None:
    # Caller bugs, not runtime conditions: a plain ValueError, as for any bad argument.
    if not 0 <= stream_id <= _MAX_STREAM_ID:
        raise ValueError(f"stream_id must be 0..{_MAX_STREAM_ID}, got {stream_id}")
    if not 0 <= seq <= _MAX_SEQ:
        raise ValueError(f"seq must be 0..{_MAX_SEQ}, got {seq}")


def _chunks(values: Iterable[int], size: int) -> Iterator[list[int]]:
    it = iter(values)
    while chunk := list(islice(it, size)):
        yield chunk


class FrameBuffer:
    """Every encoded frame is written here (SQLite WAL, synchronous=FULL) before it is sent, and
    trimmed only when the hub's ack says it is durably stored.

    ``capacity_bytes`` bounds the frame bytes held (default 256 MiB: ≥ 60 min of 12-lead
    500 Hz int16 is 43.2 MB of samples plus 7.2 MB of 20 ms frame headers, 50.4 MB; see
    ``DEFAULT_CAPACITY_BYTES``). When a frame would not fit, ``put`` raises ``BufferFull`` and
    stores nothing: the buffer never drops data to make room.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path, capacity_bytes: int) -> None:
        """Use ``FrameBuffer.open``."""
        self._conn: sqlite3.Connection | None = conn
        self._lock = threading.Lock()
        self.path = path
        self.capacity_bytes = capacity_bytes
        row = conn.execute("SELECT COALESCE(SUM(LENGTH(data)), 0) FROM frames").fetchone()
        self._bytes: int = row[0]

    @classmethod
    def open(cls, path: Path, *, capacity_bytes: int = DEFAULT_CAPACITY_BYTES) -> FrameBuffer:
        """Open (creating if needed) the buffer at ``path``; unacked frames of a previous run
        are still there."""
        if capacity_bytes <= 0:
            raise ValueError(f"capacity_bytes must be positive, got {capacity_bytes}")
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so every put commits at once.
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise AmbulinkError(f"frame buffer {path}: SQLite refused WAL mode (got {mode})")
            conn.execute("PRAGMA synchronous=FULL")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, _SCHEMA_VERSION):
                raise AmbulinkError(
                    f"frame buffer {path} has schema version {version}; "
                    f"this client knows {_SCHEMA_VERSION}"
                )
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS frames (stream_id INTEGER NOT NULL, "
                "seq INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (stream_id, seq)) "
                "WITHOUT ROWID"
            )
            conn.execute(
                "CREATE TABLE IF NOT EXISTS streams (stream_id INTEGER PRIMARY KEY, "
                "next_seq INTEGER NOT NULL, acked_seq INTEGER NOT NULL)"
            )
            conn.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.close()
            raise
        return cls(conn, path, capacity_bytes)

    def __enter__(self) -> FrameBuffer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database (idempotent). Every accepted frame is already on disk."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise AmbulinkError(f"frame buffer {self.path} is closed")
        return self._conn

    def put(self, stream_id: int, seq: int, data: bytes) -> None:
        """Store one encoded frame durably; returns once it is committed to disk.

        Idempotent: putting the same bytes again for a (stream, seq) that is buffered or already
        acked does nothing. Different bytes for a buffered (stream, seq) raise
        ``BufferConflict``; a frame that would exceed ``capacity_bytes`` raises ``BufferFull``.
        """
        _check_ids(stream_id, seq)
        data = bytes(data)
        with self._lock:
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute(
                    "SELECT next_seq, acked_seq FROM streams WHERE stream_id = ?", (stream_id,)
                ).fetchone()
                next_seq, acked_seq = row if row is not None else (0, -1)
                if seq <= acked_seq:
                    db.execute("ROLLBACK")
                    return  # the hub already holds it durably
                old = db.execute(
                    "SELECT data FROM frames WHERE stream_id = ? AND seq = ?", (stream_id, seq)
                ).fetchone()
                if old is not None:
                    db.execute("ROLLBACK")
                    if old[0] != data:
                        raise BufferConflict(
                            f"stream {stream_id} seq {seq} is buffered with {len(old[0])} "
                            f"different bytes; refusing to replace it with {len(data)} bytes"
                        )
                    return
                if self._bytes + len(data) > self.capacity_bytes:
                    db.execute("ROLLBACK")
                    raise BufferFull(
                        f"frame buffer holds {self._bytes} of {self.capacity_bytes} bytes "
                        f"unacked; stream {stream_id} seq {seq} ({len(data)} bytes) does not fit"
                    )
                db.execute(
                    "INSERT INTO frames (stream_id, seq, data) VALUES (?, ?, ?)",
                    (stream_id, seq, data),
                )
                db.execute(
                    "INSERT INTO streams (stream_id, next_seq, acked_seq) VALUES (?, ?, ?) "
                    "ON CONFLICT (stream_id) DO UPDATE SET next_seq = excluded.next_seq",
                    (stream_id, max(next_seq, seq + 1), acked_seq),
                )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            self._bytes += len(data)

    def ack(self, stream_id: int, seq: int) -> int:
        """The hub holds ``stream_id`` durably up to ``seq`` (its highest contiguous durable
        seq): delete frames with seq <= ``seq``; returns how many were trimmed.

        An ack beyond the highest seq ever put is a ``ProtocolError`` (a hub confusing streams
        or cases): accepting it would make later puts of those seqs look already acked.
        """
        _check_ids(stream_id, seq)
        with self._lock:
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute(
                    "SELECT next_seq, acked_seq FROM streams WHERE stream_id = ?", (stream_id,)
                ).fetchone()
                next_seq, acked_seq = row if row is not None else (0, -1)
                if seq >= next_seq:
                    raise ProtocolError(
                        f"ack for stream {stream_id} seq {seq}, but the highest seq put on it "
                        f"is {next_seq - 1}"
                    )
                if seq <= acked_seq:
                    db.execute("ROLLBACK")
                    return 0
                trimmed, trimmed_bytes = db.execute(
                    "SELECT COUNT(*), COALESCE(SUM(LENGTH(data)), 0) FROM frames "
                    "WHERE stream_id = ? AND seq <= ?",
                    (stream_id, seq),
                ).fetchone()
                db.execute("DELETE FROM frames WHERE stream_id = ? AND seq <= ?", (stream_id, seq))
                db.execute("UPDATE streams SET acked_seq = ? WHERE stream_id = ?", (seq, stream_id))
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            self._bytes -= trimmed_bytes
            return int(trimmed)

    def pending(
        self, stream_id: int, after_seq: int = -1, limit: int = 500
    ) -> list[tuple[int, bytes]]:
        """Up to ``limit`` unacked frames of ``stream_id`` with seq > ``after_seq``, in seq
        order, as (seq, data)."""
        with self._lock:
            rows = (
                self._db()
                .execute(
                    "SELECT seq, data FROM frames WHERE stream_id = ? AND seq > ? "
                    "ORDER BY seq LIMIT ?",
                    (stream_id, after_seq, limit),
                )
                .fetchall()
            )
        return [(int(s), bytes(d)) for s, d in rows]

    def get(self, stream_id: int, seqs: Iterable[int]) -> list[tuple[int, bytes]]:
        """The buffered frames among ``seqs`` (for the hub's ``missing`` ranges), in seq order;
        seqs not buffered (acked, or never put) are left out."""
        wanted = sorted(set(seqs))
        out: list[tuple[int, bytes]] = []
        with self._lock:
            db = self._db()
            for chunk in _chunks(wanted, _GET_CHUNK):
                marks = ",".join("?" * len(chunk))
                out.extend(
                    (int(s), bytes(d))
                    for s, d in db.execute(
                        f"SELECT seq, data FROM frames WHERE stream_id = ? AND seq IN ({marks}) "
                        "ORDER BY seq",
                        (stream_id, *chunk),
                    )
                )
        return out

    def next_seq(self, stream_id: int) -> int:
        """1 + the highest seq ever put on ``stream_id`` (0 for a new stream); survives
        restarts and full acks."""
        with self._lock:
            row = (
                self._db()
                .execute("SELECT next_seq FROM streams WHERE stream_id = ?", (stream_id,))
                .fetchone()
            )
        return 0 if row is None else int(row[0])

    def streams(self) -> list[int]:
        """Every stream id ever put, ascending."""
        with self._lock:
            rows = self._db().execute("SELECT stream_id FROM streams ORDER BY stream_id")
            return [int(r[0]) for r in rows]

    def stats(self) -> BufferStats:
        """Frames and bytes held, and the oldest unacked seq, per stream and in total."""
        with self._lock:
            db = self._db()
            marks = {
                int(s): (int(n), int(a))
                for s, n, a in db.execute("SELECT stream_id, next_seq, acked_seq FROM streams")
            }
            held = {
                int(s): (int(c), int(b), int(m))
                for s, c, b, m in db.execute(
                    "SELECT stream_id, COUNT(*), SUM(LENGTH(data)), MIN(seq) FROM frames "
                    "GROUP BY stream_id"
                )
            }
        per_stream = {
            sid: StreamStats(
                frames=held.get(sid, (0, 0, 0))[0],
                bytes=held.get(sid, (0, 0, 0))[1],
                oldest_unacked_seq=held[sid][2] if sid in held else None,
                next_seq=next_seq,
                acked_seq=acked_seq,
            )
            for sid, (next_seq, acked_seq) in sorted(marks.items())
        }
        return BufferStats(
            frames=sum(s.frames for s in per_stream.values()),
            bytes=sum(s.bytes for s in per_stream.values()),
            capacity_bytes=self.capacity_bytes,
            streams=per_stream,
        )
