"""A real VF episode, streamed by the real client, becomes one alarm at all 8 room members."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import websockets

from ambulink.ambulance_client.source import RecordReplay
from ambulink.ambulance_client.uplink import AmbulanceClient, ClientSettings
from ambulink.data import record_path
from tests.conftest import SHARED_ECG, Record, bundled, shared
from tests.e2e.conftest import HubFactory, RunningHub, poll_until, within

UNIT = "amb-4"
MEMBERS = 8
LEAD_IN_S = 20.0  # stream this much normal rhythm before the annotated flutter
SPEED = 2.0


class Member:
    """One member's WebSocket: every alarm message it was sent, by alarm id."""

    def __init__(self, name: str, role: str = "specialist", path: str | None = None) -> None:
        self.name = name
        self.role = role
        self.path = path
        self.alarms: dict[str, list[dict[str, Any]]] = {}
        self.errors: list[dict[str, Any]] = []
        self.socket: Any = None

    async def run(self, hub: RunningHub, case_id: str, ready: asyncio.Event) -> None:
        url = hub.url.replace("http://", "ws://") + (self.path or f"/ws/cases/{case_id}")
        token = hub.issuer.mint(self.name, self.role)
        async with websockets.connect(url) as socket:
            self.socket = socket
            await socket.send(json.dumps({"type": "auth", "token": token}))
            async for raw in socket:
                message = json.loads(raw)
                if message["type"] == "ready":
                    ready.set()
                elif message["type"] == "error":
                    self.errors.append(message)
                elif message["type"] == "alarm":
                    alarm = message["alarm"]
                    self.alarms.setdefault(alarm["alarm_id"], []).append(alarm)
                    await socket.send(
                        json.dumps({"type": "receipt", "alarm_id": alarm["alarm_id"]})
                    )

    def latest(self, kind: str | tuple[str, ...]) -> dict[str, Any] | None:
        kinds = (kind,) if isinstance(kind, str) else kind
        states = [s[-1] for s in self.alarms.values() if s[-1]["kind"] in kinds]
        return states[0] if states else None


def lead_in(name: str, label: str) -> tuple[Record, int, float]:
    """A bundled or shared record and its first annotated ``label`` onset; the replay starts
    LEAD_IN_S before it."""
    record = bundled(name) if name in ("vfdb/418", "vfdb/422") else shared(name)
    onset = min(e.start for e in record.reference().episodes if e.label == label)
    return record, onset, onset / record.fs - LEAD_IN_S


def replay_client(hub: RunningHub, buffer_dir: Path, name: str, start_s: float) -> AmbulanceClient:
    path = record_path(name) if name in ("vfdb/418", "vfdb/422") else str(SHARED_ECG / name)
    return AmbulanceClient(
        ClientSettings(hub_url=hub.url, unit_id=UNIT, buffer_dir=buffer_dir),
        RecordReplay(path, block_ms=40.0, speed=SPEED, start_s=start_s),
        hub.crew_token(UNIT),
    )


# (record, annotated label, alarm kinds that answer it): flutter, sustained VT, asystole.
EPISODES = [
    ("vfdb/418", "VF", ("vf",)),
    ("vfdb/611", "VT", ("vt",)),
    ("vfdb/424", "ASYSTOLE", ("asystole",)),
    pytest.param(
        "vfdb/422",
        "VT",
        ("vt", "vf"),
        marks=pytest.mark.xfail(
            strict=True,
            reason="422's VT has the QRS shape of the rhythm before it in lead 0, so beats are "
            "not called V; the waveform VF detector raises the ventricular alarm 12 s after the "
            "annotated onset, over the 10 s bar",
        ),
    ),
]


async def alarm_scenario(
    hub_factory: HubFactory,
    buffer_dir: Path,
    name: str = "vfdb/418",
    label: str = "VF",
    kind: str = "vf",
) -> tuple[float, list[Any]]:
    record, _onset, start_s = lead_in(name, label)
    async with hub_factory() as hub:
        client = replay_client(hub, buffer_dir, name, start_s)
        stop = asyncio.Event()
        running = asyncio.create_task(client.run(until=stop))
        members = [Member(f"doctor-{i}") for i in range(MEMBERS)]
        dispatcher = Member("dispatcher-1", "dispatch", "/ws/dispatch")
        try:
            await poll_until(lambda: client.case_id is not None, 10, "a case")
            assert client.case_id is not None
            everyone = [*members, dispatcher]
            readies = [asyncio.Event() for _ in everyone]
            tasks = [
                asyncio.create_task(m.run(hub, client.case_id, r))
                for m, r in zip(everyone, readies, strict=True)
            ]
            await within(10, "members connected", asyncio.gather(*(r.wait() for r in readies)))
            # The flutter starts LEAD_IN_S of stream time in; wait for every member's VF alarm.
            await poll_until(
                lambda: all(m.latest(kind) is not None for m in everyone),
                (LEAD_IN_S + 15.0) / SPEED + 15.0,
                f"a {kind} alarm at every member",
            )
            first = [m.latest(kind) for m in everyone]
            assert len({a["alarm_id"] for a in first if a}) == 1
            vf = first[0]
            assert vf is not None and vf["priority"] == "high"
            # Stream time from the annotated onset to the analysis deciding VF (the alarm).
            delay_s = vf["evidence"]["decided_at"] / record.fs - LEAD_IN_S
            # One member acknowledges; every member then holds the acknowledged state.
            await members[3].socket.send(
                json.dumps({"type": "alarm_ack", "alarm_id": vf["alarm_id"]})
            )
            await poll_until(
                lambda: all((a := m.latest(kind)) is not None and a["acks"] for m in everyone),
                10,
                "the acknowledgement at every member",
            )
            acked = [m.latest(kind) for m in everyone]
            # A second ack and an ack of an unknown alarm: a clear error, the state unchanged.
            members[5].errors.clear()
            await members[5].socket.send(
                json.dumps({"type": "alarm_ack", "alarm_id": vf["alarm_id"]})
            )
            await members[5].socket.send(json.dumps({"type": "alarm_ack", "alarm_id": "f" * 32}))
            await poll_until(lambda: len(members[5].errors) >= 2, 10, "two errors")
            codes = sorted(e["code"] for e in members[5].errors)
            assert codes == ["alarm_rejected", "unknown_alarm"], members[5].errors
            assert "already acknowledged by specialist:doctor-3" in str(members[5].errors)
            assert hub.hub.alarms.ledger.get(vf["alarm_id"]).counter == acked[0]["counter"]
            audit = [(r.actor, r.action, r.outcome) for r in await hub.hub.audit.records()]
            assert ("specialist:doctor-3", "ack", "ok") in audit
            assert ("specialist:doctor-5", "ack", "alarm_rejected") in audit
            assert ("specialist:doctor-5", "ack", "unknown_alarm") in audit
            assert await hub.hub.audit.verify() == len(audit)
            for t in tasks:
                t.cancel()
            return delay_s, acked
        finally:
            stop.set()
            await asyncio.wait_for(running, 15)


@pytest.mark.parametrize(("name", "label", "kind"), EPISODES)
def test_a_real_episode_alarms_all_members_and_one_ack_reaches_all(
    hub_factory: HubFactory, tmp_path: Path, name: str, label: str, kind: tuple[str, ...]
) -> None:
    delay_s, acked = asyncio.run(
        alarm_scenario(hub_factory, tmp_path / "tablet", name, label, kind)
    )
    # Decided at most 10 s after the annotated onset (418's lead-in is a fast wide-complex
    # rhythm that VF detection may already catch a few seconds early).
    assert -LEAD_IN_S < delay_s <= 10.0, f"{kind} alarm {delay_s:.1f} s after the annotated onset"
    assert len({(a["alarm_id"], a["counter"]) for a in acked}) == 1  # same state everywhere
    (ack,) = acked[0]["acks"]  # [member_id, role, at]
    assert ack[:2] == ["specialist:doctor-3", "specialist"]


async def delayed_alarm_scenario(
    hub_factory: HubFactory, buffer_dir: Path
) -> tuple[dict[str, Any], float, float]:
    """The link drops 5 s before a real flutter episode and stays down for 30 s of stream."""
    record, onset, start_s = lead_in("vfdb/418", "VF")
    async with hub_factory() as hub:
        client = replay_client(hub, buffer_dir, "vfdb/418", start_s)
        stop = asyncio.Event()
        running = asyncio.create_task(client.run(until=stop))
        try:
            blocks_per_s = record.fs / (client.source.block_ms * record.fs / 1000)
            down_at = int((LEAD_IN_S - 5.0) * blocks_per_s)
            await poll_until(lambda: client.status.acked_seq >= down_at, 30, "the lead-in stored")
            hub.network.blackout(True)
            up_at = down_at + int(30.0 * blocks_per_s)
            await poll_until(
                lambda: client.status.frames_made >= up_at, 30.0 / SPEED + 10, "30 s made"
            )
            hub.network.blackout(False)
            assert client.case_id is not None
            case_id = client.case_id
            await poll_until(
                lambda: any(a.kind.value == "vf" for a in hub.hub.alarms.ledger.active(case_id)),
                30,
                "the VF alarm after backfill",
            )
            (vf,) = [a for a in hub.hub.alarms.ledger.active(case_id) if a.kind.value == "vf"]
            true_onset_at = client.started_at + onset / record.fs - start_s
            return (
                {"delayed": vf.delayed, "onset_at": vf.onset_at},
                true_onset_at,
                client.started_at,
            )
        finally:
            stop.set()
            await asyncio.wait_for(running, 15)


def test_an_alarm_inside_an_outage_is_raised_after_backfill_as_delayed(
    hub_factory: HubFactory, tmp_path: Path
) -> None:
    alarm, true_onset_at, _ = asyncio.run(delayed_alarm_scenario(hub_factory, tmp_path / "tablet"))
    assert alarm["delayed"] is True
    # Its onset is the episode's true onset (within the detector's onset estimate), not the
    # time the backfill arrived.
    assert abs(alarm["onset_at"] - true_onset_at) <= 10.0
