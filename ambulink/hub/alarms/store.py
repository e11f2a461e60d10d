"""Durable alarm state in SQLite (WAL, ``synchronous=FULL``), so alarms survive a hub restart.

A synchronous API for the hub's alarm worker thread: a sqlite3 connection belongs to the thread
that opened it, so open, save, load and close on that one thread (e.g. a one-thread executor).
The hub saves the alarm of every ledger effect; each ``save`` is one committed transaction
(fsynced), so an acknowledged alarm is on disk before the ack is fanned out.

After a restart: ``ledger.restore(store.load_unfinished(), now=...)`` returns one ``Publish`` per
alarm that is still active, or cleared but unacknowledged HIGH; the hub delivers each once to
every member and dispatch.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Literal

from ambulink.hub.alarms.model import Alarm, AlarmRejected, alarm_from_json, alarm_to_json
from ambulink.hub.store_types import StorageUnavailable

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS alarms (
    alarm_id TEXT PRIMARY KEY,
    case_id TEXT,
    kind TEXT NOT NULL,
    counter INTEGER NOT NULL,
    unfinished INTEGER NOT NULL,
    body TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS alarms_unfinished ON alarms (unfinished) WHERE unfinished = 1;
"""
# Upsert keeping the highest counter: a late save of an older state never overwrites a newer
# one; the same counter is rewritten (receipts change without a counter bump).
_UPSERT = """
INSERT INTO alarms (alarm_id, case_id, kind, counter, unfinished, body)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (alarm_id) DO UPDATE SET
    counter = excluded.counter, unfinished = excluded.unfinished, body = excluded.body
WHERE excluded.counter >= alarms.counter
"""


class AlarmStore:
    """Alarm states by id in one SQLite file; see the module docstring."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = conn

    @classmethod
    def open(
        cls, path: Path | str, *, synchronous: Literal["FULL", "NORMAL"] = "FULL"
    ) -> AlarmStore:
        """Open (creating folders, file and table) the alarm store at ``path``."""
        path = Path(path)
        if synchronous not in ("FULL", "NORMAL"):
            raise AlarmRejected(f"synchronous must be 'FULL' or 'NORMAL', got {synchronous!r}")
        failed = f"could not open the alarm store {path}"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None)  # we issue BEGIN/COMMIT
        except (OSError, sqlite3.Error) as exc:
            raise StorageUnavailable(f"{failed}: {exc}") from exc
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StorageUnavailable(f"{failed}: it needs WAL journaling, SQLite kept {mode!r}")
            conn.execute(f"PRAGMA synchronous={synchronous}")
            conn.execute("PRAGMA busy_timeout=5000")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise StorageUnavailable(
                    f"alarm store {path} has schema version {version}; "
                    f"this ambulink reads version {SCHEMA_VERSION}"
                )
            conn.executescript(f"BEGIN; {_SCHEMA} PRAGMA user_version={SCHEMA_VERSION}; COMMIT;")
        except sqlite3.Error as exc:
            conn.close()
            raise StorageUnavailable(f"{failed}: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        return cls(path, conn)

    def save(self, alarm: Alarm) -> None:
        """Upsert ``alarm`` by id unless a higher counter is stored; committed on return."""
        self.save_all((alarm,))

    def save_all(self, alarms: Iterable[Alarm]) -> None:
        """``save`` each of ``alarms`` in one transaction (one fsync)."""
        rows = [_row(alarm) for alarm in alarms]
        conn = self._live()
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(_UPSERT, rows)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StorageUnavailable(f"could not write the alarm store {self.path}: {exc}") from exc

    def load(self, alarm_id: str) -> Alarm | None:
        """The stored state of ``alarm_id``, or None."""
        row = self._read("SELECT body FROM alarms WHERE alarm_id = ?", (alarm_id,))
        return alarm_from_json(json.loads(row[0][0])) if row else None

    def load_unfinished(self) -> list[Alarm]:
        """Alarms still active, or cleared but unacknowledged HIGH, oldest first."""
        rows = self._read("SELECT body FROM alarms WHERE unfinished = 1", ())
        alarms = [alarm_from_json(json.loads(body)) for (body,) in rows]
        return sorted(alarms, key=lambda a: (a.raised_at, a.alarm_id))

    def close(self) -> None:
        """Close the database. Idempotent."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> AlarmStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _read(self, sql: str, params: tuple[str, ...]) -> list[tuple[str]]:
        try:
            return list(self._live().execute(sql, params))
        except sqlite3.Error as exc:
            raise StorageUnavailable(f"could not read the alarm store {self.path}: {exc}") from exc

    def _live(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StorageUnavailable(f"alarm store {self.path} is closed")
        return self._conn


def _row(alarm: Alarm) -> tuple[str, str | None, str, int, int, str]:
    try:
        body = json.dumps(alarm_to_json(alarm), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise AlarmRejected(
            f"alarm {alarm.alarm_id} ({alarm.kind.value}) cannot be stored: evidence must be "
            f"JSON data ({exc})"
        ) from exc
    unfinished = int(not alarm.finished)
    return (alarm.alarm_id, alarm.case_id, alarm.kind.value, alarm.counter, unfinished, body)
