"""The durable timeline: saved before it is pushed, once per key, kept across a restart."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from ambulink.hub.bus_memory import InMemoryBus
from ambulink.hub.timeline import Timeline, room_topic


async def timeline_scenario(path: Path) -> None:
    bus = InMemoryBus()
    timeline = await Timeline(path, bus, clock=lambda: 1_800_000_100.0).open()
    opened = await timeline.append("case-1", "case_opened", at=1_800_000_000.0, key="case_opened")
    assert opened is not None
    assert await timeline.append("case-1", "case_opened", key="case_opened") is None
    note = await timeline.append("case-1", "note", by="crew:t", text="12-lead sent")
    assert note is not None and note.at == 1_800_000_100.0
    await timeline.append("case-2", "ecg_started", data={"stream_id": 1})
    pushed = [json.loads(f["json"]) for _, f in await bus.read(room_topic("case-1"))]
    assert [m["entry"]["kind"] for m in pushed] == ["case_opened", "note"]
    assert pushed[1] == {"type": "timeline_entry", "entry": note.to_json()}
    await timeline.close()

    again = await Timeline(path, InMemoryBus()).open()
    entries = await again.entries("case-1")
    assert entries == [opened, note]
    assert [e.kind for e in await again.entries("case-2")] == ["ecg_started"]
    assert await again.append("case-1", "case_opened", key="case_opened") is None
    for i in range(5):
        await again.append("case-3", "note", text=f"n{i}", at=float(i))
    assert [e.text for e in await again.entries("case-3", limit=2)] == ["n3", "n4"]
    await again.close()


def test_the_timeline_is_durable_and_pushed(tmp_path: Path) -> None:
    asyncio.run(timeline_scenario(tmp_path / "timeline.sqlite3"))
