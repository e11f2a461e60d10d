"""Append-only, hash-chained audit log (DESIGN §3.8): who joined, viewed, acknowledged, was denied.

Each record holds its predecessor's hash, so removing or editing a record breaks ``verify``.
Records carry opaque ids only (member, case, alarm), never patient data. SQLite (WAL,
synchronous=FULL) on the case store's ``SqliteWorker`` (one worker thread, group commit).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ambulink.errors import AmbulinkError
from ambulink.hub.store_worker import SqliteWorker

GENESIS = "0" * 64


class AuditBroken(AmbulinkError):
    """The chain does not verify: a record was changed, removed or inserted."""

    code = "audit_broken"


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    at: float
    actor: str
    action: str  # join, leave, view, ack, pause, export, denied
    target: str
    outcome: str  # ok, or why it was refused
    prev: str
    digest: str


def record_digest(prev: str, at: float, actor: str, action: str, target: str, outcome: str) -> str:
    body = json.dumps([prev, repr(at), actor, action, target, outcome], separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


class AuditLog:
    """Async facade; the SQLite connection lives on one worker thread."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._db = SqliteWorker(path, name="audit log")

    async def open(self) -> AuditLog:
        await self._db.open("FULL", _create_table)
        return self

    async def close(self) -> None:
        await self._db.close()

    async def append(self, actor: str, action: str, target: str, outcome: str = "ok") -> None:
        at = self._clock()

        def insert(conn: sqlite3.Connection) -> Callable[[], None]:
            # The chain's last digest is read inside the write's transaction, so records
            # committed together still chain in order.
            row = conn.execute("SELECT digest FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            prev = row[0] if row else GENESIS
            conn.execute(
                "INSERT INTO audit (at, actor, action, target, outcome, prev, digest) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    at,
                    actor,
                    action,
                    target,
                    outcome,
                    prev,
                    record_digest(prev, at, actor, action, target, outcome),
                ),
            )
            return lambda: None

        await self._db.write(insert)

    async def records(self) -> list[AuditRecord]:
        def read(conn: sqlite3.Connection) -> list[AuditRecord]:
            rows = conn.execute(
                "SELECT seq, at, actor, action, target, outcome, prev, digest FROM audit "
                "ORDER BY seq"
            ).fetchall()
            return [AuditRecord(*row) for row in rows]

        return await self._db.read(read)

    async def verify(self) -> int:
        """Check the whole chain; returns the number of records, or raises ``AuditBroken``."""
        records = await self.records()
        prev = GENESIS
        for r in records:
            expected = record_digest(prev, r.at, r.actor, r.action, r.target, r.outcome)
            if r.prev != prev or r.digest != expected:
                raise AuditBroken(f"audit record {r.seq} does not follow from the one before it")
            prev = r.digest
        return len(records)


def _create_table(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY, at REAL NOT NULL, "
        "actor TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL, "
        "outcome TEXT NOT NULL, prev TEXT NOT NULL, digest TEXT NOT NULL)"
    )
