"""The hub's message bus (DESIGN §3.7): Redis Streams semantics, in memory or on Redis.

Per-case telemetry and events go through named streams of entries (``{field: bytes}``) with
ids ``"<ms>-<seq>"`` that only grow. Readers follow a stream from an id; consumer groups share a
stream's entries between workers, keep what each has not acknowledged in a pending list, and let
a live worker take over (``autoclaim``) what a dead one left pending. ``InMemoryBus`` is the
embedded default; ``RedisBus`` connects hub processes. The same contract tests run on both.

Stream names must be opaque ids (case and unit ids), never patient data.

Errors (each sets ``code``; they belong in ``ambulink.errors`` once the lead moves them there)::

    AmbulinkError
    └── BusError            a request the bus refused (malformed id, no such consumer group)
        └── BusUnavailable  the bus cannot be reached or is closed
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

from ambulink.errors import AmbulinkError

Entry = tuple[str, dict[str, bytes]]  # (entry id "ms-seq", fields)


class BusError(AmbulinkError):
    code = "bus_error"


class BusUnavailable(BusError):
    code = "bus_unavailable"


class Bus(Protocol):
    """Redis Streams semantics. Field values go in as ``bytes`` or ``str`` and come back as
    ``bytes``. ``block_ms=None`` never blocks; ``block_ms=0`` blocks until an entry comes (as
    Redis does), so bound such calls with ``asyncio.timeout``."""

    async def append(
        self, stream: str, fields: dict[str, bytes | str], maxlen: int | None = None
    ) -> str:
        """Append an entry and return its id; with ``maxlen`` keep only that many newest."""
        ...

    async def read(
        self, stream: str, after: str = "0", count: int = 100, block_ms: int | None = None
    ) -> list[Entry]:
        """Up to ``count`` entries with ids greater than ``after`` (``"$"``: only entries
        appended from now on), waiting up to ``block_ms`` for the first one."""
        ...

    async def create_group(self, stream: str, group: str, start: str = "0") -> None:
        """Create a consumer group (and the stream) delivering entries after ``start``
        (``"0"``: all, ``"$"``: only new ones). Idempotent: an existing group is kept as is."""
        ...

    async def read_group(
        self,
        stream: str,
        group: str,
        consumer: str,
        count: int = 100,
        block_ms: int | None = None,
    ) -> list[Entry]:
        """Entries never delivered to the group (``">"``), now pending for ``consumer``."""
        ...

    async def ack(self, stream: str, group: str, *ids: str) -> int:
        """Remove ``ids`` from the group's pending list; returns how many were pending."""
        ...

    async def autoclaim(
        self, stream: str, group: str, consumer: str, min_idle_ms: int, count: int = 100
    ) -> list[Entry]:
        """Take over (for ``consumer``) up to ``count`` pending entries idle for at least
        ``min_idle_ms``, oldest id first; their idle time restarts. Pending entries that were
        trimmed from the stream are dropped from the pending list and not returned."""
        ...

    async def close(self) -> None: ...


def parse_entry_id(entry_id: str) -> tuple[int, int]:
    """``"ms-seq"`` (or ``"ms"``, meaning ``"ms-0"``) as a pair; ``BusError`` otherwise."""
    ms, sep, seq = entry_id.partition("-")
    if not _digits(ms) or (sep and not _digits(seq)):
        raise BusError(f"bus entry id must look like '<ms>-<seq>' (digits), got {entry_id!r}")
    return int(ms), int(seq) if sep else 0


def format_entry_id(entry_id: tuple[int, int]) -> str:
    return f"{entry_id[0]}-{entry_id[1]}"


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 20


def redact_url(url: str) -> str:
    """``url`` without user name and password, fit for messages and logs."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = host if parts.port is None else f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    except ValueError:
        return "<unparsable URL>"


def open_bus(redis_url: str | None) -> AbstractAsyncContextManager[Bus]:
    """The in-memory bus when ``redis_url`` is None, else a Redis bus (checked with PING)."""
    return _open_bus(redis_url)


@asynccontextmanager
async def _open_bus(redis_url: str | None) -> AsyncIterator[Bus]:
    bus: Bus
    if redis_url is None:
        from ambulink.hub.bus_memory import InMemoryBus

        bus = InMemoryBus()
    else:
        from ambulink.hub.bus_redis import RedisBus  # imports redis only when configured

        bus = await RedisBus.connect(redis_url)
    try:
        yield bus
    finally:
        await bus.close()
