"""The hub side of the uplink without a network: NO SIGNAL timing on a virtual clock (STYLE §4),
and what the hub reports about a stream after a backfill."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import cast

import pytest

from ambulink.hub.ingest import Ingest
from ambulink.hub.store import CaseStore
from ambulink.hub.store_types import FrameRecord
from ambulink.hub.tokens import Grant
from ambulink.hub.uplink import HeartbeatWatch, NoSignal, UplinkSession


def silence(watch: HeartbeatWatch, now: float) -> float:
    """The silence ``watch`` reports at ``now``; fails when it reports none."""
    result = watch.check(now)
    assert result is not None, f"no NO SIGNAL at {now}"
    return result.silent_s


def test_no_signal_after_three_missed_heartbeats_not_before() -> None:
    watch = HeartbeatWatch(last_seen_s=100.0)
    assert watch.check(now=100.0) is None
    assert watch.check(now=102.999) is None
    assert watch.check(now=103.0) is None  # three intervals exactly: still allowed
    assert silence(watch, now=103.001) == pytest.approx(3.001)
    assert watch.check(now=107.5) == NoSignal(silent_s=7.5)


def test_a_heartbeat_restarts_the_count() -> None:
    watch = HeartbeatWatch(last_seen_s=0.0)
    for now in (0.9, 1.8, 2.7, 3.6, 4.5):  # heartbeats a little faster than 1 Hz
        assert watch.check(now) is None
        watch.seen(now)
    assert watch.check(now=7.5) is None
    assert silence(watch, now=7.6) == pytest.approx(3.1)


def test_interval_and_misses_are_configurable() -> None:
    watch = HeartbeatWatch(last_seen_s=10.0, interval_s=0.5, allowed_misses=5)
    assert watch.check(now=12.5) is None
    assert silence(watch, now=12.6) == pytest.approx(2.6)


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Ticker:
    """An injected sleep: each heartbeat interval passes when the test says so."""

    def __init__(self) -> None:
        self.released: asyncio.Queue[None] = asyncio.Queue()
        self.waiting = asyncio.Event()

    async def sleep(self, _seconds: float) -> None:
        self.waiting.set()
        await self.released.get()
        self.waiting.clear()

    async def ticks(self, n: int) -> None:
        """Let ``n`` heartbeat rounds run to their next sleep."""
        for _ in range(n):
            async with asyncio.timeout(5):
                await self.waiting.wait()
            self.waiting.clear()
            self.released.put_nowait(None)
        async with asyncio.timeout(5):
            await self.waiting.wait()


class EventSink:
    """Stands in for ``Ingest`` in ``UplinkSession``: records the events it publishes."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, object]]] = []
        self.published = asyncio.Event()

    async def publish_event(self, case_id: str, data: dict[str, object]) -> None:
        self.events.append((case_id, data))
        self.published.set()


async def _session_no_signal() -> list[tuple[str, dict[str, object]]]:
    clock = FakeClock(1000.0)
    sink = EventSink()
    ticker = Ticker()
    session = UplinkSession(
        Grant("tablet-amb-1", "crew", unit="amb-1"),
        cast(Ingest, sink),
        heartbeat_interval_s=0.01,  # rounds run when the ticker says; silence on the fake clock
        heartbeat_misses=3,
        clock=clock,
        sleep=ticker.sleep,
    )
    session.case_id = "case-1"
    beats = asyncio.create_task(session._heartbeats())

    ticks = ticker.ticks

    try:
        clock.now = 1000.0 + 0.03  # 3 intervals of 10 ms: not yet
        await ticks(3)
        assert sink.events == []
        clock.now = 1000.0 + 0.031
        await ticks(1)
        assert sink.published.is_set()
        await ticks(3)  # still silent: announced once, not on every tick
        assert len(sink.events) == 1
        session._watch.seen(clock.now)  # a heartbeat: "signal restored", and the alarm re-arms
        await ticks(2)
        sink.published.clear()
        clock.now += 1.0
        await ticks(1)
        assert sink.published.is_set()
        return sink.events
    finally:
        beats.cancel()
        await asyncio.gather(beats, return_exceptions=True)
        await session.close()


def test_session_publishes_no_signal_once_per_silence() -> None:
    events = asyncio.run(_session_no_signal())
    assert [case_id for case_id, _ in events] == ["case-1"] * 3
    assert [data["kind"] for _, data in events] == ["no_signal", "signal_restored", "no_signal"]
    first = events[0][1]
    assert first["kind"] == "no_signal" and first["unit_id"] == "amb-1"
    assert first["silent_s"] == pytest.approx(0.031)


async def _stream_after_backfill(folder: Path) -> tuple[int, int, list[tuple[int, int]]]:
    store = await CaseStore.open(folder / "cases.sqlite3")
    try:
        case_id = await store.create_case("amb-1")
        await store.open_stream(case_id, 1, 360, ["MLII"], 200.0, 0.0)

        def frame(seq: int) -> FrameRecord:
            return FrameRecord(1, seq, 10 * seq, 10, 0, bytes(20))

        # Live frames ahead of an outage's gap, then the backfill, then live again.
        for seqs in ([0], [3, 4], [1, 2], [5]):
            await store.put_frames(case_id, [frame(s) for s in seqs])
        (info,) = await store.list_streams(case_id)
        return info.contiguous_seq, info.highest_seq, await store.missing(case_id, 1, 7)
    finally:
        await store.close()


def test_stream_listing_after_a_backfill(tmp_path: Path) -> None:
    """After a hole fills, ``highest_seq`` and ``missing`` must not remember the early frames
    (a regression seen while writing the outage test: SeqTracker kept them)."""
    contiguous, highest, missing = asyncio.run(_stream_after_backfill(tmp_path))
    assert contiguous == 5
    assert highest == 5
    assert missing == [(6, 7)]
