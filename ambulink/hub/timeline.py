"""The durable case timeline: entries saved in SQLite, then pushed to the case's room members.

Every entry is written (WAL, synchronous=FULL, on the case store's ``SqliteWorker``) before it
is published on the room's bus topic (``room:{case_id}``, field ``json``), so a member that
joins later reads it from the store and one that is in the room gets it at once, in whichever
hub process it is connected. Entries that must exist once per case or per event (case opened,
ECG started, an alarm raised) carry a ``key``: appending an existing key does nothing.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

from ambulink.hub.bus import Bus
from ambulink.hub.store_worker import SqliteWorker
from ambulink.rooms.timeline import Entry, check_kind

ROOM_KEEP = 1000  # bus entries kept per room topic (presence and timeline changes)
SNAPSHOT_ENTRIES = 500  # newest entries a joining member gets

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS timeline (seq INTEGER PRIMARY KEY, entry_id TEXT NOT NULL UNIQUE, "
    "case_id TEXT NOT NULL, at REAL NOT NULL, kind TEXT NOT NULL, by TEXT NOT NULL, "
    "text TEXT NOT NULL, data TEXT NOT NULL, key TEXT, UNIQUE (case_id, key));"
    "CREATE INDEX IF NOT EXISTS timeline_case ON timeline (case_id, at, seq);"
)


def room_topic(case_id: str) -> str:
    """The bus topic of a case's room: timeline entries, presence, removals."""
    return f"room:{case_id}"


class Timeline:
    """Async facade over the timeline store; ``clock`` gives Unix seconds."""

    def __init__(self, path: Path, bus: Bus, clock: Callable[[], float] = time.time) -> None:
        self._bus = bus
        self._clock = clock
        self._db = SqliteWorker(path, name="timeline store")

    async def open(self) -> Timeline:
        await self._db.open("FULL", _create_tables)
        return self

    async def close(self) -> None:
        await self._db.close()

    async def append(
        self,
        case_id: str,
        kind: str,
        *,
        by: str = "hub",
        text: str = "",
        data: Mapping[str, object] | None = None,
        at: float | None = None,
        key: str | None = None,
    ) -> Entry | None:
        """Save an entry and push it to the room; None when an entry with ``key`` exists."""
        entry = Entry(
            uuid.uuid4().hex,
            case_id,
            self._clock() if at is None else at,
            check_kind(kind),
            by,
            text,
            dict(data or {}),
        )
        return await self.add(entry, key=key)

    async def add(self, entry: Entry, *, key: str | None = None) -> Entry | None:
        """Save a ready entry (e.g. from ``rooms.timeline.action_entry``) and push it."""

        def insert(conn: sqlite3.Connection) -> Callable[[], bool]:
            added = _insert(conn, entry, key)
            return lambda: added

        if not await self._db.write(insert):
            return None
        message = {"type": "timeline_entry", "entry": entry.to_json()}
        await self._bus.append(
            room_topic(entry.case_id), {"json": json.dumps(message)}, maxlen=ROOM_KEEP
        )
        return entry

    async def entries(self, case_id: str, limit: int = SNAPSHOT_ENTRIES) -> list[Entry]:
        """The case's newest ``limit`` entries, oldest first."""
        return await self._db.read(lambda conn: _entries(conn, case_id, limit))


def _create_tables(conn: sqlite3.Connection) -> None:
    conn.executescript(_SCHEMA)


def _insert(conn: sqlite3.Connection, entry: Entry, key: str | None) -> bool:
    cursor = conn.execute(
        "INSERT OR IGNORE INTO timeline (entry_id, case_id, at, kind, by, text, data, key) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            entry.entry_id,
            entry.case_id,
            entry.at,
            entry.kind,
            entry.by,
            entry.text,
            json.dumps(entry.data),
            key,
        ),
    )
    return cursor.rowcount == 1


def _entries(conn: sqlite3.Connection, case_id: str, limit: int) -> list[Entry]:
    rows = conn.execute(
        "SELECT entry_id, case_id, at, kind, by, text, data FROM timeline WHERE case_id=? "
        "ORDER BY at DESC, seq DESC LIMIT ?",
        (case_id, limit),
    ).fetchall()
    return [
        Entry(entry_id, case, at, check_kind(kind), by, text, json.loads(data))
        for entry_id, case, at, kind, by, text, data in reversed(rows)
    ]
