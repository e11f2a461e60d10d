"""One contract for the bus, run against the in-memory bus and a real redis-server.

Every scenario runs under ``asyncio.timeout``: a read that should wake and does not fails fast.
Nothing sleeps to let things settle; a test that needs a reader to be blocked first waits until
the bus (or redis-server's ``INFO clients``) says one is.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import pytest
import redis.asyncio

from ambulink.hub.bus import Bus, BusError, BusUnavailable, open_bus, parse_entry_id
from ambulink.hub.bus_memory import InMemoryBus
from ambulink.hub.bus_redis import RedisBus
from tests.servers import free_port, start_redis


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Harness:
    """How a contract scenario gets a fresh bus, and how it sees blocked readers."""

    kind: str
    open: Callable[[], AbstractAsyncContextManager[Bus]]
    blocked_readers: Callable[[Bus], Awaitable[int]]
    until_blocked: Callable[[Bus, int], Awaitable[None]]
    clock: FakeClock | None = None  # only the in-memory bus lets a test move time

    def run(self, scenario: Callable[[Bus], Awaitable[None]], timeout_s: float = 10.0) -> None:
        async def main() -> None:
            async with asyncio.timeout(timeout_s), self.open() as bus:
                await scenario(bus)

        asyncio.run(main())


def memory_harness() -> Harness:
    clock = FakeClock()

    @asynccontextmanager
    async def open_memory() -> AsyncIterator[Bus]:
        bus = InMemoryBus(clock=clock)
        try:
            yield bus
        finally:
            await bus.close()

    async def blocked(bus: Bus) -> int:
        assert isinstance(bus, InMemoryBus)
        return bus.waiting_readers

    async def until(bus: Bus, more_than: int) -> None:
        assert isinstance(bus, InMemoryBus)
        await bus.wait_for_readers(more_than)

    return Harness("memory", open_memory, blocked, until, clock)


def redis_harness(url: str) -> Harness:
    prefix = f"test:{uuid.uuid4().hex}:"  # each test its own keys on the shared server

    @asynccontextmanager
    async def open_redis() -> AsyncIterator[Bus]:
        bus = await RedisBus.connect(url, key_prefix=prefix)
        try:
            yield bus
        finally:
            await bus.close()

    async def blocked(bus: Bus) -> int:
        client = redis.asyncio.Redis.from_url(url)
        try:
            return int((await client.info("clients"))["blocked_clients"])
        finally:
            await client.aclose()

    async def until(bus: Bus, more_than: int) -> None:
        # Redis tells no one when a client blocks: ask it (each question is a round trip).
        while await blocked(bus) <= more_than:
            pass

    return Harness("redis", open_redis, blocked, until)


@pytest.fixture(params=["memory", "redis"])
def harness(request: pytest.FixtureRequest) -> Harness:
    if request.param == "memory":
        return memory_harness()
    return redis_harness(request.getfixturevalue("redis_url"))


def ids_of(entries: list[tuple[str, dict[str, bytes]]]) -> list[str]:
    return [entry_id for entry_id, _ in entries]


# ---- reading ---------------------------------------------------------------------------------


def test_entries_come_back_in_order_with_growing_ids(harness: Harness) -> None:
    async def scenario(bus: Bus) -> None:
        appended = [
            await bus.append("case-1", {"n": str(n), "raw": bytes([n, 0, 255])}) for n in range(5)
        ]
        entries = await bus.read("case-1")
        assert ids_of(entries) == appended
        assert [fields for _, fields in entries] == [
            {"n": str(n).encode(), "raw": bytes([n, 0, 255])} for n in range(5)
        ]
        parsed = [parse_entry_id(i) for i in appended]
        assert parsed == sorted(parsed) and len(set(parsed)) == 5
        assert ids_of(await bus.read("case-1", count=2)) == appended[:2]

    harness.run(scenario)


def test_read_after_an_id(harness: Harness) -> None:
    async def scenario(bus: Bus) -> None:
        appended = [await bus.append("case-1", {"n": str(n)}) for n in range(5)]
        assert ids_of(await bus.read("case-1", after=appended[2])) == appended[3:]
        assert await bus.read("case-1", after=appended[-1]) == []
        assert await bus.read("no-such-stream") == []

    harness.run(scenario)


def test_blocking_read_wakes_on_append(harness: Harness) -> None:
    async def scenario(bus: Bus) -> None:
        first = await bus.append("case-1", {"n": "0"})
        before = await harness.blocked_readers(bus)
        reader = asyncio.create_task(bus.read("case-1", after=first, block_ms=60_000))
        await harness.until_blocked(bus, before)
        assert not reader.done()
        second = await bus.append("case-1", {"n": "1"})
        async with asyncio.timeout(5):  # far below block_ms: the append woke it
            assert await reader == [(second, {"n": b"1"})]

    harness.run(scenario)


def test_blocking_read_from_dollar_sees_only_new_entries(harness: Harness) -> None:
    async def scenario(bus: Bus) -> None:
        await bus.append("case-1", {"n": "old"})
        before = await harness.blocked_readers(bus)
        reader = asyncio.create_task(bus.read("case-1", after="$", block_ms=60_000))
        await harness.until_blocked(bus, before)
        new = await bus.append("case-1", {"n": "new"})
        assert await reader == [(new, {"n": b"new"})]

    harness.run(scenario)


def test_blocking_read_times_out_empty(harness: Harness) -> None:
    async def scenario(bus: Bus) -> None:
        last = await bus.append("case-1", {"n": "0"})
        started = time.monotonic()
        assert await bus.read("case-1", after=last, block_ms=100) == []
        assert time.monotonic() - started >= 0.09
        assert await bus.read("case-1", after=last) == []  # block_ms=None: at once

    harness.run(scenario)


def test_malformed_id_is_a_bus_error(harness: Harness) -> None:
    async def scenario(bus: Bus) -> None:
        await bus.append("case-1", {"n": "0"})
        with pytest.raises(BusError, match="entry id") as caught:
            await bus.read("case-1", after="yesterday")
        assert not isinstance(caught.value, BusUnavailable)

    harness.run(scenario)


# ---- consumer groups -------------------------------------------------------------------------


def test_group_delivers_each_entry_to_one_consumer(harness: Harness) -> None:
    async def scenario(bus: Bus) -> None:
        await bus.create_group("case-1", "analysis")
        appended = [await bus.append("case-1", {"n": str(n)}) for n in range(10)]
        got: dict[str, list[str]] = {"a": [], "b": []}
        for _ in range(10):  # bounded: a bus that redelivers must fail, not spin
            batch = await bus.read_group("case-1", "analysis", "a", count=3)
            if not batch:
                break
            got["a"] += ids_of(batch)
            got["b"] += ids_of(await bus.read_group("case-1", "analysis", "b", count=2))
        assert sorted(got["a"] + got["b"], key=parse_entry_id) == appended
        assert not set(got["a"]) & set(got["b"])
        assert got["a"] and got["b"]
        assert await bus.read_group("case-1", "analysis", "b") == []  # nothing redelivered

    harness.run(scenario)


def test_read_group_blocks_until_append(harness: Harness) -> None:
    async def scenario(bus: Bus) -> None:
        await bus.create_group("case-1", "analysis", start="$")
        before = await harness.blocked_readers(bus)
        reader = asyncio.create_task(bus.read_group("case-1", "analysis", "a", block_ms=60_000))
        await harness.until_blocked(bus, before)
        entry_id = await bus.append("case-1", {"n": "1"})
        assert await reader == [(entry_id, {"n": b"1"})]
        assert await bus.read_group("case-1", "analysis", "a", block_ms=50) == []

    harness.run(scenario)


def test_create_group_is_idempotent_and_starts_where_asked(harness: Harness) -> None:
    async def scenario(bus: Bus) -> None:
        old = [await bus.append("case-1", {"n": str(n)}) for n in range(4)]
        await bus.create_group("case-1", "all", start="0")
        await bus.create_group("case-1", "new", start="$")
        assert ids_of(await bus.read_group("case-1", "all", "a", count=2)) == old[:2]
        await bus.create_group("case-1", "all", start="0")  # kept as is, not rewound
        assert ids_of(await bus.read_group("case-1", "all", "a")) == old[2:]
        new = await bus.append("case-1", {"n": "4"})
        assert ids_of(await bus.read_group("case-1", "new", "a")) == [new]
        await bus.create_group("fresh-stream", "g")  # creates the stream
        assert await bus.read_group("fresh-stream", "g", "a") == []

    harness.run(scenario)


def test_reading_a_missing_group_is_a_bus_error(harness: Harness) -> None:
    async def scenario(bus: Bus) -> None:
        await bus.append("case-1", {"n": "0"})
        with pytest.raises(BusError) as caught:
            await bus.read_group("case-1", "nobody", "a")
        assert not isinstance(caught.value, BusUnavailable)
        with pytest.raises(BusError):
            await bus.autoclaim("case-1", "nobody", "a", min_idle_ms=0)

    harness.run(scenario)


def test_ack_removes_from_pending(harness: Harness) -> None:
    async def scenario(bus: Bus) -> None:
        await bus.create_group("case-1", "g")
        ids = [await bus.append("case-1", {"n": str(n)}) for n in range(3)]
        await bus.read_group("case-1", "g", "a")
        assert await bus.ack("case-1", "g", ids[0], ids[1]) == 2
        assert await bus.ack("case-1", "g", ids[0]) == 0  # no longer pending
        assert await bus.ack("case-1", "g", "99999999999999-0") == 0  # never delivered
        claimed = await bus.autoclaim("case-1", "g", "b", min_idle_ms=0)
        assert ids_of(claimed) == [ids[2]]

    harness.run(scenario)


def test_unacked_entries_are_autoclaimed(harness: Harness) -> None:
    async def scenario(bus: Bus) -> None:
        await bus.create_group("case-1", "g")
        ids = [await bus.append("case-1", {"n": str(n)}) for n in range(4)]
        assert ids_of(await bus.read_group("case-1", "g", "dead", count=3)) == ids[:3]
        assert await bus.ack("case-1", "g", ids[1]) == 1
        # Just delivered: not idle for a minute, so nobody may take it yet.
        assert await bus.autoclaim("case-1", "g", "alive", min_idle_ms=60_000) == []
        claimed = await bus.autoclaim("case-1", "g", "alive", min_idle_ms=0, count=1)
        assert claimed == [(ids[0], {"n": b"0"})]
        claimed += await bus.autoclaim("case-1", "g", "alive", min_idle_ms=0)
        assert ids_of(claimed) == [ids[0], ids[0], ids[2]]  # still pending until acked
        assert await bus.ack("case-1", "g", ids[0], ids[2]) == 2
        assert await bus.autoclaim("case-1", "g", "alive", min_idle_ms=0) == []
        assert ids_of(await bus.read_group("case-1", "g", "alive")) == [ids[3]]

    harness.run(scenario)


def test_maxlen_trims_oldest(harness: Harness) -> None:
    async def scenario(bus: Bus) -> None:
        await bus.create_group("case-1", "g")
        first = await bus.append("case-1", {"n": "0"})
        assert ids_of(await bus.read_group("case-1", "g", "a")) == [first]
        ids = [await bus.append("case-1", {"n": str(n)}, maxlen=3) for n in range(1, 10)]
        entries = await bus.read("case-1")
        assert ids_of(entries) == ids[-3:]
        assert [f["n"] for _, f in entries] == [b"7", b"8", b"9"]
        later = await bus.append("case-1", {"n": "10"}, maxlen=3)
        assert parse_entry_id(later) > parse_entry_id(ids[-1])
        # The trimmed entry stays unclaimable: it is gone from the stream.
        assert await bus.autoclaim("case-1", "g", "b", min_idle_ms=0) == []

    harness.run(scenario)


# ---- implementation specifics ----------------------------------------------------------------


def test_memory_autoclaim_waits_for_min_idle_on_the_clock() -> None:
    harness = memory_harness()
    clock = harness.clock
    assert clock is not None

    async def scenario(bus: Bus) -> None:
        await bus.create_group("case-1", "g")
        entry_id = await bus.append("case-1", {"n": "0"})
        await bus.read_group("case-1", "g", "dead")
        clock.now += 0.999
        assert await bus.autoclaim("case-1", "g", "alive", min_idle_ms=1000) == []
        clock.now += 0.001
        assert ids_of(await bus.autoclaim("case-1", "g", "alive", min_idle_ms=1000)) == [entry_id]
        # Claiming restarts the idle time: another taker must wait the full second again.
        clock.now += 0.5
        assert await bus.autoclaim("case-1", "g", "third", min_idle_ms=1000) == []
        clock.now += 0.5
        assert ids_of(await bus.autoclaim("case-1", "g", "third", min_idle_ms=1000)) == [entry_id]

    harness.run(scenario)


def test_memory_bus_refuses_work_once_closed() -> None:
    async def scenario() -> None:
        bus = InMemoryBus()
        reader = asyncio.create_task(bus.read("case-1", after="$", block_ms=0))
        await bus.wait_for_readers(0)
        await bus.close()
        with pytest.raises(BusUnavailable):
            await reader
        with pytest.raises(BusUnavailable, match="closed"):
            await bus.append("case-1", {"n": "0"})

    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_unreachable_redis_is_bus_unavailable_without_password() -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"  # nobody listens there

    async def scenario() -> None:
        with pytest.raises(BusUnavailable, match="could not connect") as caught:
            await RedisBus.connect(url)
        assert f"127.0.0.1:{url.rsplit(':', 1)[1]}" in str(caught.value)
        assert "hunter2" not in str(caught.value)

    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_redis_going_away_is_bus_unavailable() -> None:
    server, url = start_redis()  # our own server, to stop halfway

    async def scenario() -> None:
        async with open_bus(url) as bus:
            await bus.append("case-1", {"n": "0"})
            server.stop()
            with pytest.raises(BusUnavailable, match="could not append to stream case-1") as caught:
                await bus.append("case-1", {"n": "1"})
            assert url.removeprefix("redis://") in str(caught.value)

    try:
        asyncio.run(asyncio.wait_for(scenario(), 20))
    finally:
        server.stop()


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_open_bus_picks_the_implementation(kind: str, request: pytest.FixtureRequest) -> None:
    url = None if kind == "memory" else request.getfixturevalue("redis_url")

    async def scenario() -> None:
        async with open_bus(url) as bus:
            assert isinstance(bus, InMemoryBus if url is None else RedisBus)
            stream = f"open-bus-{uuid.uuid4().hex}"
            entry_id = await bus.append(stream, {"n": "0"})
            assert await bus.read(stream) == [(entry_id, {"n": b"0"})]

    asyncio.run(asyncio.wait_for(scenario(), 10))
