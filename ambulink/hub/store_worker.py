"""One SQLite connection on one worker thread, with group commit (the case store's engine).

The event loop never touches the connection: reads are functions run on the worker; writes are
queued, and every write that arrives while a commit is running goes into the next transaction,
each inside its own savepoint, so one refused request fails alone and a hundred ambulances'
frames cost one fsync, not a hundred.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, cast

from ambulink.errors import AmbulinkError
from ambulink.hub.store_types import StorageUnavailable

_T = TypeVar("_T")
Finish = Callable[[], _T]  # runs on the worker after COMMIT; returns the caller's result
Apply = Callable[[sqlite3.Connection], Finish[_T]]  # runs inside the group's transaction


@dataclass
class _Write:
    apply: Apply[object]
    future: asyncio.Future[object]


class SqliteWorker:
    """Owns the connection and its thread. Call from the event loop that opened it."""

    def __init__(self, path: Path, name: str = "case store") -> None:
        self.path = path
        self.name = name  # in error messages: "could not read the <name> <path>"
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"ambulink-{name.replace(' ', '-')}"
        )
        self._conn: sqlite3.Connection | None = None  # worker thread only
        self._pending: list[_Write] = []  # event loop only
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False

    async def open(self, synchronous: str, setup: Callable[[sqlite3.Connection], None]) -> None:
        """Connect in WAL mode with ``synchronous``, then run ``setup`` on the worker."""
        try:
            await asyncio.get_running_loop().run_in_executor(
                self._executor, self._connect, synchronous, setup
            )
        except BaseException:
            self._closed = True
            self._executor.shutdown(wait=False)
            raise

    def _connect(self, synchronous: str, setup: Callable[[sqlite3.Connection], None]) -> None:
        failed = f"could not open the {self.name} {self.path}"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None)  # we issue BEGIN/COMMIT
        except (OSError, sqlite3.Error) as exc:
            raise StorageUnavailable(f"{failed}: {exc}") from exc
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StorageUnavailable(
                    f"{failed}: it needs WAL journaling and SQLite kept {mode!r} "
                    "(is it on a network file system?)"
                )
            conn.execute(f"PRAGMA synchronous={synchronous}")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=5000")
            setup(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise StorageUnavailable(f"{failed}: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    async def close(self) -> None:
        """Finish queued writes, then close the connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._flusher is not None:
            await asyncio.shield(self._flusher)
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._disconnect)
        finally:
            self._executor.shutdown(wait=False)

    def _disconnect(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def read(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``work`` on the worker (it must not write)."""
        self._check_open()

        def run() -> _T:
            try:
                return work(self._live_conn())
            except sqlite3.Error as exc:
                message = f"could not read the {self.name} {self.path}: {exc}"
                raise StorageUnavailable(message) from exc

        return await asyncio.get_running_loop().run_in_executor(self._executor, run)

    async def write(self, apply: Apply[_T]) -> _T:
        """Run ``apply`` in the next group transaction; once it is committed, return what the
        ``Finish`` that ``apply`` returned gives. Raises what ``apply`` raised (its changes
        rolled back) or ``StorageUnavailable`` when the transaction failed."""
        self._check_open()
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._pending.append(_Write(cast(Apply[object], apply), future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name=f"{self.name}-commit")
        return cast(_T, await future)

    def _check_open(self) -> None:
        if self._closed:
            raise StorageUnavailable(f"{self.name} {self.path} is closed")

    def _live_conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StorageUnavailable(f"{self.name} {self.path} is closed")
        return self._conn

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                outcomes = await loop.run_in_executor(self._executor, self._commit, batch)
            except BaseException as exc:
                for write in batch:
                    if not write.future.done():
                        if isinstance(exc, asyncio.CancelledError):
                            write.future.cancel()
                        else:
                            write.future.set_exception(exc)
                if isinstance(exc, Exception):
                    continue  # a bug in one batch; the next may still succeed
                for write in self._pending:  # cancelled (the loop is shutting down)
                    write.future.cancel()
                self._pending = []
                raise
            for write, (result, error) in zip(batch, outcomes, strict=True):
                if write.future.done():  # the caller was cancelled; the write stands
                    continue
                if error is not None:
                    write.future.set_exception(error)
                else:
                    write.future.set_result(result)

    def _commit(self, batch: list[_Write]) -> list[tuple[object, AmbulinkError | None]]:
        """Worker thread: apply every write of ``batch`` in one transaction, then COMMIT."""
        conn = self._live_conn()
        applied: list[tuple[Finish[object] | None, AmbulinkError | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for write in batch:
                conn.execute("SAVEPOINT one_write")
                try:
                    applied.append((write.apply(conn), None))
                except (AmbulinkError, sqlite3.Error) as exc:
                    conn.execute("ROLLBACK TO one_write")
                    applied.append((None, self._as_error(exc)))
                conn.execute("RELEASE one_write")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return [(None, self._as_error(exc))] * len(batch)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        outcomes: list[tuple[object, AmbulinkError | None]] = []
        for finish, error in applied:
            if finish is None:
                outcomes.append((None, error))
                continue
            try:
                outcomes.append((finish(), None))
            except (AmbulinkError, sqlite3.Error) as exc:
                outcomes.append((None, self._as_error(exc)))
        return outcomes

    def _as_error(self, exc: AmbulinkError | sqlite3.Error) -> AmbulinkError:
        if isinstance(exc, AmbulinkError):
            return exc
        error = StorageUnavailable(f"could not write to the {self.name} {self.path}: {exc}")
        error.__cause__ = exc
        return error
