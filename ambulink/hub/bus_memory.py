"""The embedded bus: Redis Streams semantics inside one process (no configuration needed).

Matches ``RedisBus`` entry for entry (the contract tests in ``tests/hub/test_bus.py`` run on
both): ids ``"<ms>-<seq>"`` from the wall clock that only grow, exact ``maxlen`` trimming,
blocking reads, consumer groups with pending lists. Idle times of pending entries use the
injectable monotonic ``clock`` so tests drive ``autoclaim`` without sleeping.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ambulink.hub.bus import (
    BusError,
    BusUnavailable,
    Entry,
    format_entry_id,
    parse_entry_id,
)

EntryId = tuple[int, int]


@dataclass
class _Pending:
    consumer: str
    delivered_at: float  # clock() seconds
    deliveries: int = 1


@dataclass
class _Group:
    last_delivered: EntryId
    # Entries are delivered in id order, so insertion order is id order: oldest first.
    pending: dict[EntryId, _Pending] = field(default_factory=dict)


@dataclass
class _Stream:
    ids: list[EntryId] = field(default_factory=list)
    fields: list[dict[str, bytes]] = field(default_factory=list)
    last_id: EntryId = (0, 0)  # survives trimming: new ids stay above every id ever given
    groups: dict[str, _Group] = field(default_factory=dict)

    def after(self, entry_id: EntryId, count: int) -> list[Entry]:
        start = bisect.bisect_right(self.ids, entry_id)
        stop = min(start + count, len(self.ids))
        return [(format_entry_id(self.ids[i]), dict(self.fields[i])) for i in range(start, stop)]

    def get(self, entry_id: EntryId) -> dict[str, bytes] | None:
        i = bisect.bisect_left(self.ids, entry_id)
        if i < len(self.ids) and self.ids[i] == entry_id:
            return dict(self.fields[i])
        return None


class InMemoryBus:
    """In-process ``Bus``. Use from one event loop."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock  # idle times of pending entries (s)
        self._wall_clock = wall_clock  # entry ids (ms since the epoch, as Redis)
        self._streams: dict[str, _Stream] = {}
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}
        self._reader_blocked = asyncio.Event()  # set whenever a read starts waiting
        self._closed = False

    @property
    def waiting_readers(self) -> int:
        """Reads blocked right now, waiting for an append (for tests and metrics)."""
        return sum(len(waiters) for waiters in self._waiters.values())

    async def wait_for_readers(self, more_than: int) -> None:
        """Return once more than ``more_than`` reads are blocked (the caller bounds the wait)."""
        while self.waiting_readers <= more_than:
            self._reader_blocked.clear()
            await self._reader_blocked.wait()

    async def append(
        self, stream: str, fields: dict[str, bytes | str], maxlen: int | None = None
    ) -> str:
        self._check_open()
        if not fields:
            raise BusError(f"an entry needs at least one field; got none for stream {stream}")
        if maxlen is not None and maxlen < 0:
            raise BusError(f"maxlen must be >= 0, got {maxlen}")
        values = {k: v.encode() if isinstance(v, str) else bytes(v) for k, v in fields.items()}
        s = self._streams.setdefault(stream, _Stream())
        ms = int(self._wall_clock() * 1000)
        entry_id = (ms, 0) if ms > s.last_id[0] else (s.last_id[0], s.last_id[1] + 1)
        s.ids.append(entry_id)
        s.fields.append(values)
        s.last_id = entry_id
        if maxlen is not None and len(s.ids) > maxlen:
            del s.ids[: len(s.ids) - maxlen]
            del s.fields[: len(s.fields) - maxlen]
        for waiter in self._waiters.pop(stream, ()):
            if not waiter.done():
                waiter.set_result(None)
        return format_entry_id(entry_id)

    async def read(
        self, stream: str, after: str = "0", count: int = 100, block_ms: int | None = None
    ) -> list[Entry]:
        self._check_open()
        _check_count(count)
        if after == "$":
            existing = self._streams.get(stream)
            start = existing.last_id if existing else (0, 0)
        else:
            start = parse_entry_id(after)
        deadline = self._deadline(block_ms)
        while True:
            s = self._streams.get(stream)
            entries = s.after(start, count) if s else []
            if entries or block_ms is None or not await self._wait_append(stream, deadline):
                return entries

    async def create_group(self, stream: str, group: str, start: str = "0") -> None:
        self._check_open()
        s = self._streams.setdefault(stream, _Stream())
        if group not in s.groups:
            first = s.last_id if start == "$" else parse_entry_id(start)
            s.groups[group] = _Group(first)

    async def read_group(
        self,
        stream: str,
        group: str,
        consumer: str,
        count: int = 100,
        block_ms: int | None = None,
    ) -> list[Entry]:
        self._check_open()
        _check_count(count)
        deadline = self._deadline(block_ms)
        while True:
            s, g = self._group(stream, group)
            entries = s.after(g.last_delivered, count)
            if entries:
                now = self._clock()
                for entry_id, _ in entries:
                    g.pending[parse_entry_id(entry_id)] = _Pending(consumer, now)
                g.last_delivered = parse_entry_id(entries[-1][0])
                return entries
            if block_ms is None or not await self._wait_append(stream, deadline):
                return []

    async def ack(self, stream: str, group: str, *ids: str) -> int:
        self._check_open()
        parsed = [parse_entry_id(i) for i in ids]
        s = self._streams.get(stream)
        g = s.groups.get(group) if s else None
        if g is None:
            return 0  # as XACK: nothing was pending
        return sum(g.pending.pop(entry_id, None) is not None for entry_id in set(parsed))

    async def autoclaim(
        self, stream: str, group: str, consumer: str, min_idle_ms: int, count: int = 100
    ) -> list[Entry]:
        self._check_open()
        _check_count(count)
        s, g = self._group(stream, group)
        now = self._clock()
        claimed: list[Entry] = []
        for entry_id, pending in list(g.pending.items()):
            if len(claimed) == count:
                break
            if (now - pending.delivered_at) * 1000 < min_idle_ms:
                continue
            fields = s.get(entry_id)
            if fields is None:  # trimmed away: Redis 7 drops it from the pending list too
                del g.pending[entry_id]
                continue
            pending.consumer, pending.delivered_at = consumer, now
            pending.deliveries += 1
            claimed.append((format_entry_id(entry_id), fields))
        return claimed

    async def close(self) -> None:
        self._closed = True
        for waiters in self._waiters.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(BusUnavailable("the in-memory bus was closed"))
        self._waiters.clear()

    # ---- helpers ---------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise BusUnavailable("the in-memory bus is closed")

    def _group(self, stream: str, group: str) -> tuple[_Stream, _Group]:
        s = self._streams.get(stream)
        g = s.groups.get(group) if s else None
        if s is None or g is None:
            raise BusError(f"no consumer group {group!r} on stream {stream!r}; create it first")
        return s, g

    @staticmethod
    def _deadline(block_ms: int | None) -> float | None:
        """Loop time at which a blocking call gives up; None: never (``block_ms`` 0 or None)."""
        if block_ms is None or block_ms == 0:
            return None
        if block_ms < 0:
            raise BusError(f"block_ms must be >= 0 or None, got {block_ms}")
        return asyncio.get_running_loop().time() + block_ms / 1000

    async def _wait_append(self, stream: str, deadline: float | None) -> bool:
        """Wait for an append to ``stream``; False once ``deadline`` passes."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(stream, set())
        waiters.add(waiter)
        self._reader_blocked.set()
        try:
            async with asyncio.timeout_at(deadline):
                await waiter
            return True
        except TimeoutError:
            return False
        finally:
            waiters.discard(waiter)
            if not waiters and self._waiters.get(stream) is waiters:
                del self._waiters[stream]


def _check_count(count: int) -> None:
    if count < 1:
        raise BusError(f"count must be >= 1, got {count}")
