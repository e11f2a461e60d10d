"""Ingest drops the analysis state of long-idle streams, and takes them up again if frames come."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from ambulink.ambulance_client.source import RecordReplay
from ambulink.data import record_path
from ambulink.hub.analysis import ThreadAnalysis
from ambulink.hub.bus_memory import InMemoryBus
from ambulink.hub.ingest import STREAM_IDLE_S, Ingest, events_topic
from ambulink.hub.store import CaseStore
from ambulink.protocol.messages import StreamOpen


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def idle_scenario(folder: Path) -> dict[str, object]:
    source = RecordReplay(record_path("mitdb/119"), block_ms=40.0)
    clock = Clock()
    store = await CaseStore.open(folder / "cases.sqlite3")
    bus = InMemoryBus()
    analysis = ThreadAnalysis()
    seen: dict[str, object] = {}
    try:
        async with Ingest(store, bus, analysis, clock=clock).running() as ingest:
            case_id = await store.create_case("amb-1")
            opened = StreamOpen(
                case_id=case_id,
                unit_id="amb-1",
                stream_id=1,
                fs=source.fs,
                leads=list(source.leads),
                gain=source.gain,
                started_at=time.time(),
            )
            await ingest.open_stream(opened)
            for k in range(0, 750):  # 30 s
                await ingest.store_frames(case_id, [source.frame_at(k, 1)])
            clock.now += 60
            seen["kept_while_recent"] = await ingest.retire_idle()
            clock.now += STREAM_IDLE_S
            seen["retired"] = await ingest.retire_idle()
            seen["streams_after"], seen["analyzers_after"] = ingest.streams, analysis.streams
            # The crew's late backfill arrives: a fresh analysis takes it up.
            for k in range(750, 1500):
                await ingest.store_frames(case_id, [source.frame_at(k, 1)])
            seen["streams_revived"] = ingest.streams

            revived_from = source.frame_at(760, 1).first_sample

            async def hr_after_revival() -> None:
                """Wait for a heart-rate event on samples only the revived analysis saw."""
                after = "0"
                while True:
                    for entry_id, fields in await bus.read(
                        events_topic(case_id), after=after, count=1000, block_ms=200
                    ):
                        after = entry_id
                        event = json.loads(fields["json"])
                        if event["kind"] == "hr" and event["sample"] > revived_from:
                            return

            await asyncio.wait_for(hr_after_revival(), 20)
            seen["analyzers_revived"] = analysis.streams
    finally:
        analysis.close()
        await store.close()
    return seen


def test_an_idle_stream_drops_its_analysis_and_a_late_frame_restarts_it(tmp_path: Path) -> None:
    seen = asyncio.run(idle_scenario(tmp_path))
    assert seen["kept_while_recent"] == []
    assert len(seen["retired"]) == 1  # type: ignore[arg-type]
    assert (seen["streams_after"], seen["analyzers_after"]) == (0, 0)
    assert (seen["streams_revived"], seen["analyzers_revived"]) == (1, 1)
