"""The hub's alarm service over a real in-memory bus and a real SQLite alarm store."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from ambulink.hub.alarm_service import HUB_TOPIC, AlarmService, alarms_topic
from ambulink.hub.alarms import AlarmLedger
from ambulink.hub.bus_memory import InMemoryBus

VF_START = {
    "kind": "episode_start",
    "label": "VF",
    "onset": 1000,
    "decided_at": 2250,
    "onset_at": 1_800_000_000.0,
    "delayed": False,
    "stream_id": 1,
    "evidence": {"start": 0, "end": 2500},
}


async def alarm_messages(bus: InMemoryBus, topic: str) -> list[dict[str, object]]:
    return [json.loads(fields["json"]) for _, fields in await bus.read(topic, after="0")]


def test_events_become_published_alarms_that_survive_a_restart(tmp_path: Path) -> None:
    store = tmp_path / "alarms.sqlite3"

    async def first_run() -> tuple[list[dict[str, object]], str]:
        bus = InMemoryBus()
        async with AlarmService(bus, store).running() as service:
            await service.on_event("case-1", VF_START)
            await service.on_event("case-1", {"kind": "hr", "bpm": 80.0, "at": 1.0})  # ignored
            (alarm,) = service.active("case-1")
            return await alarm_messages(bus, alarms_topic("case-1")), str(alarm["alarm_id"])

    published, alarm_id = asyncio.run(first_run())
    assert [(m["effect"], m["alarm"]["kind"], m["alarm"]["counter"]) for m in published] == [  # type: ignore[index]
        ("publish", "vf", 1)
    ]
    assert published[0]["alarm"]["evidence"]["decided_at"] == 2250  # type: ignore[index]

    async def after_restart() -> list[dict[str, object]]:
        bus = InMemoryBus()
        async with AlarmService(bus, store).running() as service:
            assert [a["alarm_id"] for a in service.active("case-1")] == [alarm_id]
            return await alarm_messages(bus, alarms_topic("case-1"))

    again = asyncio.run(after_restart())
    assert [(m["effect"], m["alarm"]["alarm_id"]) for m in again] == [("publish", alarm_id)]  # type: ignore[index]


class FailingLedger(AlarmLedger):
    def tick(self, *, now: float) -> list:  # type: ignore[override, type-arg]
        raise RuntimeError("the alarm worker broke")


def test_a_failing_alarm_worker_announces_alarm_system_failure(tmp_path: Path) -> None:
    async def scenario() -> list[dict[str, object]]:
        bus = InMemoryBus()
        service = AlarmService(bus, tmp_path / "alarms.sqlite3", ledger=FailingLedger())
        async with service.running():
            async with asyncio.timeout(5):  # the tick runs every 0.5 s
                while not await bus.read(HUB_TOPIC, after="0"):
                    await bus.read(HUB_TOPIC, after="0", block_ms=100)
        return await alarm_messages(bus, HUB_TOPIC)

    messages = asyncio.run(scenario())
    kinds = [m["alarm"]["kind"] for m in messages]  # type: ignore[index]
    assert kinds[0] == "alarm_system_failure"


def test_a_second_ack_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    from ambulink.hub.alarms.model import AlarmRejected, UnknownAlarm

    async def scenario() -> None:
        bus = InMemoryBus()
        async with AlarmService(bus, tmp_path / "alarms.sqlite3").running() as service:
            await service.on_event("case-1", VF_START)
            (alarm,) = service.active("case-1")
            alarm_id = str(alarm["alarm_id"])
            await service.acknowledge(alarm_id, "specialist:a", "specialist")
            counter = service.ledger.get(alarm_id).counter
            with pytest.raises(AlarmRejected, match="already acknowledged by specialist:a"):
                await service.acknowledge(alarm_id, "crew:b", "crew")
            with pytest.raises(UnknownAlarm):
                await service.acknowledge("0" * 32, "crew:b", "crew")
            assert service.ledger.get(alarm_id).counter == counter

    asyncio.run(scenario())


def test_one_lead_back_on_does_not_clear_the_alarm_of_another_still_off(
    tmp_path: Path,
) -> None:
    def lead(name: str, off: bool) -> dict[str, object]:
        return {"kind": "lead_off", "lead": name, "off": off, "at": 1_800_000_000.0}

    async def run() -> list[list[object]]:
        bus = InMemoryBus()
        seen: list[list[object]] = []
        async with AlarmService(bus, tmp_path / "alarms.sqlite3").running() as service:
            for name, off in [("MLII", True), ("V1", True), ("MLII", False), ("V1", False)]:
                await service.on_event("case-1", lead(name, off))
                seen.append(
                    [a["evidence"]["leads"] for a in service.active("case-1")  # type: ignore[index]
                     if a["kind"] == "lead_off" and a["phase"] == "active"]
                )  # fmt: skip
        return seen

    assert asyncio.run(run()) == [[["MLII"]], [["MLII", "V1"]], [["V1"]], []]
