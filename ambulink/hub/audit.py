"""Append-only, hash-chained audit log (DESIGN §3.8): who joined, viewed, acknowledged, was denied.

Each record holds its predecessor's hash, so removing or editing a record breaks ``verify``.
Records carry opaque ids only (member, case, alarm), never patient data. SQLite (WAL,
synchronous=FULL) from one worker thread, like the case store.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ambulink.errors import AmbulinkError

T = TypeVar("T")
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
        self._path = path
        self._clock = clock
        self._disk = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit")
        self._conn: sqlite3.Connection | None = None
        self._last = GENESIS

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._disk, fn, *args)

    async def open(self) -> AuditLog:
        await self._run(self._open)
        return self

    def _open(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self._path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY, at REAL NOT NULL, "
            "actor TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL, "
            "outcome TEXT NOT NULL, prev TEXT NOT NULL, digest TEXT NOT NULL)"
        )
        row = conn.execute("SELECT digest FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        self._last = row[0] if row else GENESIS
        self._conn = conn

    async def close(self) -> None:
        if self._conn is not None:
            await self._run(self._conn.close)
            self._conn = None
        self._disk.shutdown(wait=True)

    async def append(self, actor: str, action: str, target: str, outcome: str = "ok") -> None:
        await self._run(self._append, self._clock(), actor, action, target, outcome)

    def _append(self, at: float, actor: str, action: str, target: str, outcome: str) -> None:
        assert self._conn is not None
        digest = record_digest(self._last, at, actor, action, target, outcome)
        self._conn.execute(
            "INSERT INTO audit (at, actor, action, target, outcome, prev, digest) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (at, actor, action, target, outcome, self._last, digest),
        )
        self._last = digest

    async def records(self) -> list[AuditRecord]:
        return await self._run(self._records)

    def _records(self) -> list[AuditRecord]:
        assert self._conn is not None
        rows = self._conn.execute(
            "SELECT seq, at, actor, action, target, outcome, prev, digest FROM audit ORDER BY seq"
        ).fetchall()
        return [AuditRecord(*row) for row in rows]

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
