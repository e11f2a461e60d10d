"""The consult room socket on a real hub with real WebSocket clients: capacity, roles checked on
every message, actions pushed to every member, kick, reconnect grace, clear refusals."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from ambulink.hub.tokens import TokenIssuer
from ambulink.protocol.messages import StreamOpen
from tests.e2e.conftest import RunningHub, running_hub, within
from tests.hub.test_viewers import VF_START

Message = dict[str, Any]
WAIT_S = 10.0


class Party:
    """One member's socket and everything it received."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.seen: list[Message] = []
        self._read = 0

    async def next(self, what: str, where: Callable[[Message], bool] = lambda m: True) -> Message:
        """The next message (after those already looked at) for which ``where`` holds."""

        async def wait() -> Message:
            while True:
                while self._read < len(self.seen):
                    message = self.seen[self._read]
                    self._read += 1
                    if where(message):
                        return message
                try:
                    self.seen.append(json.loads(await self.socket.recv()))
                except websockets.ConnectionClosed:
                    raise AssertionError(f"socket closed before {what}; saw {self.seen}") from None

        result: Message = await within(WAIT_S, what, wait())
        return result

    async def entry(self, kind: str) -> Message:
        """The first pushed timeline entry of ``kind``, whenever it came (room changes and
        alarms travel on different topics, so their order between them is not fixed)."""

        def match(m: Message) -> bool:
            return bool(m["type"] == "timeline_entry" and m["entry"]["kind"] == kind)

        message = next((m for m in self.seen if match(m)), None)
        if message is None:
            message = await self.next(f"a {kind} timeline entry", match)
        entry: Message = message["entry"]
        return entry

    async def send(self, message: Message) -> None:
        await self.socket.send(json.dumps(message))

    async def closed(self) -> int | None:
        await within(WAIT_S, "the hub closing the socket", self.socket.wait_closed())
        return self.socket.close_code


async def join(hub: RunningHub, case_id: str, token: str, **auth: str) -> tuple[Party, Message]:
    url = hub.url.replace("http://", "ws://") + f"/ws/rooms/{case_id}"
    socket = await websockets.connect(url, max_queue=None)  # never stalls the hub here
    await socket.send(json.dumps({"type": "auth", "token": token, **auth}))
    party = Party(socket)
    return party, await party.next("the answer to the join")


def specialist(hub: RunningHub, name: str) -> str:
    return hub.issuer.mint(name, "specialist")


async def full_room(hub: RunningHub, case_id: str) -> dict[str, Party]:
    """Crew, six specialists and a dispatch observer: eight parties."""
    parties: dict[str, Party] = {}
    tokens = {"crew:tablet-amb-1": hub.crew_token("amb-1")()}
    tokens.update({f"specialist:doc-{i}": specialist(hub, f"doc-{i}") for i in range(1, 7)})
    tokens["dispatch:desk"] = hub.issuer.mint("desk", "dispatch")
    for member_id, token in tokens.items():
        party, answer = await join(hub, case_id, token)
        assert answer["type"] == "joined", answer
        assert answer["you"]["member_id"] == member_id
        parties[member_id] = party
    return parties


async def capacity_scenario(data_dir: Path) -> None:
    async with running_hub(data_dir) as hub:
        case_id = await hub.hub.store.create_case("amb-1")
        other_case = await hub.hub.store.create_case("amb-2")
        parties = await full_room(hub, case_id)
        crew, observer = parties["crew:tablet-amb-1"], parties["dispatch:desk"]
        first = await join(hub, case_id, specialist(hub, "late"))
        ninth, refusal = first
        assert refusal["code"] == "room_full"
        assert "full (8 of 8 parties)" in refusal["message"]
        assert await ninth.closed() == 1008

        # Everyone sees all eight, with their roles.
        presence = await crew.next(
            "presence of eight", lambda m: m["type"] == "presence" and len(m["members"]) == 8
        )
        roles = {m["member_id"]: m["role"] for m in presence["members"]}
        assert roles["dispatch:desk"] == "observer" and roles["crew:tablet-amb-1"] == "crew"

        # Another room is unaffected by the full one.
        other, answer = await join(hub, other_case, specialist(hub, "late"))
        assert answer["type"] == "joined" and answer["unit_id"] == "amb-2"

        # The observer cannot decide: refused, audited, the socket stays open.
        await observer.send({"type": "action", "action": "confirm_stemi", "text": "STEMI"})
        error = await observer.next("the refusal", lambda m: m["type"] == "error")
        assert error["code"] == "forbidden"
        records = await hub.hub.audit.records()
        assert any(
            (r.actor, r.action, r.target, r.outcome)
            == ("dispatch:desk", "confirm_stemi", case_id, "forbidden")
            for r in records
        )
        # ... nor switch its camera on.
        await observer.send({"type": "media_state", "video": True, "audio": False})
        error = await observer.next("the media refusal", lambda m: m["type"] == "error")
        assert error["code"] == "forbidden"

        # A specialist's decision reaches every member, the crew included, in this room only.
        await parties["specialist:doc-1"].send(
            {"type": "action", "action": "activate_cath_lab", "text": "cath lab 2 ready"}
        )
        for party in parties.values():
            entry = await party.entry("decision")
            assert entry["data"] == {"decision": "activate_cath_lab"}
            assert entry["by"] == "specialist:doc-1" and entry["text"] == "cath lab 2 ready"
        await other.send({"type": "leave"})
        assert await other.closed() == 1000
        assert not any(
            m["type"] == "timeline_entry" and m["entry"]["kind"] == "decision" for m in other.seen
        )
        # The crew notes its ETA; it becomes an eta entry.
        await crew.send({"type": "action", "action": "note", "text": "", "data": {"eta_s": 540}})
        assert (await observer.entry("eta"))["data"] == {"eta_s": 540.0}

        for party in parties.values():
            await party.socket.close()
        await other.socket.close()


def test_a_ninth_party_is_refused_and_roles_are_checked_on_every_message(tmp_path: Path) -> None:
    asyncio.run(capacity_scenario(tmp_path))


async def kick_and_grace_scenario(data_dir: Path) -> None:
    async with running_hub(data_dir) as hub:
        case_id = await hub.hub.store.create_case("amb-1")
        parties = await full_room(hub, case_id)
        doc1, doc6 = parties["specialist:doc-1"], parties["specialist:doc-6"]

        # The crew may not kick; a specialist may.
        crew = parties["crew:tablet-amb-1"]
        await crew.send({"type": "kick", "member_id": "specialist:doc-6"})
        assert (await crew.next("the refusal", lambda m: m["type"] == "error"))[
            "code"
        ] == "forbidden"
        await doc1.send({"type": "kick", "member_id": "specialist:doc-6"})
        kicked = await doc6.next("the kick", lambda m: m["type"] == "kicked")
        assert kicked["by"] == "specialist:doc-1"
        assert await doc6.closed() == 1008
        left = await doc1.entry("member_left")
        assert left["by"] == "specialist:doc-6" and left["data"]["reason"] == "kicked"
        _, again = await join(hub, case_id, specialist(hub, "doc-6"))
        assert again["type"] == "error" and again["code"] == "forbidden"
        assert "removed" in again["message"]

        # Full again, then a member drops: its seat is kept while it reconnects.
        doc7, answer = await join(hub, case_id, specialist(hub, "doc-7"))
        assert answer["type"] == "joined"
        await parties["specialist:doc-2"].socket.close()
        await doc1.next(
            "doc-2 shown disconnected",
            lambda m: (
                m["type"] == "presence"
                and any(
                    p["member_id"] == "specialist:doc-2" and not p["connected"]
                    for p in m["members"]
                )
            ),
        )
        _, refused = await join(hub, case_id, specialist(hub, "doc-8"))
        assert refused["code"] == "room_full"
        back, answer = await join(hub, case_id, specialist(hub, "doc-2"))
        assert answer["type"] == "joined"
        assert answer["you"]["member_id"] == "specialist:doc-2"
        presence = await back.next("presence", lambda m: m["type"] == "presence")
        assert len(presence["members"]) == 8
        assert all(p["connected"] for p in presence["members"])
        for party in (*parties.values(), doc7, back):
            await party.socket.close()


def test_kick_removes_for_good_and_a_reconnect_keeps_the_seat(tmp_path: Path) -> None:
    asyncio.run(kick_and_grace_scenario(tmp_path))


async def refusals_scenario(data_dir: Path) -> None:
    async with running_hub(data_dir) as hub:
        case_id = await hub.hub.store.create_case("amb-1")
        doc, answer = await join(hub, case_id, specialist(hub, "doc"))
        assert answer["type"] == "joined"
        secret = hub.hub.settings.token_secret
        expired = TokenIssuer(secret, clock=lambda: time.time() - 3600).mint("doc-2", "specialist")
        cases = {
            "expired token": (case_id, expired, {}, "invalid_token"),
            "unknown case": ("no-such-case", specialist(hub, "x"), {}, "not_a_member"),
            "other unit's crew": (case_id, hub.crew_token("amb-9")(), {}, "forbidden"),
            "specialist as crew": (case_id, specialist(hub, "y"), {"as": "crew"}, "forbidden"),
        }
        for what, (case, token, extra, code) in cases.items():
            party, refusal = await join(hub, case, token, **extra)
            assert refusal["type"] == "error" and refusal["code"] == code, what
            assert len(refusal["message"]) > 10, what
            assert await party.closed() == 1008, what
        # The room goes on: the member still acts, and an observer by choice only watches.
        watcher, answer = await join(hub, case_id, specialist(hub, "z"), **{"as": "observer"})
        assert answer["you"]["role"] == "observer" and answer["you"]["permissions"] == ["view"]
        await doc.send({"type": "action", "action": "advice", "text": "give aspirin"})
        assert (await watcher.entry("advice"))["text"] == "give aspirin"
        await doc.send({"type": "action", "action": "advice", "text": "x" * 5000})
        assert (await doc.next("too long", lambda m: m["type"] == "error"))["code"] == "bad_action"
        await doc.send({"type": "nonsense"})
        assert (await doc.next("unknown", lambda m: m["type"] == "error"))[
            "code"
        ] == "protocol_error"
        for party in (doc, watcher):
            await party.socket.close()


def test_bad_joins_get_clear_errors_and_the_room_goes_on(tmp_path: Path) -> None:
    asyncio.run(refusals_scenario(tmp_path))


async def timeline_scenario(data_dir: Path) -> None:
    async with running_hub(data_dir) as hub:
        case_id = await hub.hub.store.create_case("amb-1")
        crew, joined = await join(hub, case_id, hub.crew_token("amb-1")())
        assert joined["you"]["role"] == "crew"
        timeline = await crew.next("the timeline", lambda m: m["type"] == "timeline")
        assert [e["kind"] for e in timeline["entries"]] == ["case_opened"]
        await hub.hub.ingest.open_stream(
            StreamOpen(
                case_id=case_id,
                unit_id="amb-1",
                stream_id=1,
                fs=500,
                leads=["I", "II"],
                gain=200.0,
                started_at=time.time(),
            )
        )
        started = await crew.entry("ecg_started")
        assert started["data"]["stream_id"] == 1
        await hub.hub.alarms.on_event(case_id, VF_START)
        alarm = await crew.next("the alarm", lambda m: m["type"] == "alarm")
        entry = await crew.entry("alarm")
        assert entry["data"]["kind"] == "vf"
        await crew.send({"type": "alarm_ack", "alarm_id": alarm["alarm"]["alarm_id"]})
        acked = await crew.entry("alarm_ack")
        assert acked["by"] == "crew:tablet-amb-1"
        await crew.socket.close()
        # A later member reads the same timeline from the store.
        doc, _ = await join(hub, case_id, specialist(hub, "doc"))
        later = await doc.next("the timeline", lambda m: m["type"] == "timeline")
        kinds = [e["kind"] for e in later["entries"]]
        assert kinds[:2] == ["case_opened", "member_joined"]
        assert {"ecg_started", "alarm", "alarm_ack"} <= set(kinds)
        await doc.socket.close()


def test_the_timeline_records_the_case_and_reaches_later_members(tmp_path: Path) -> None:
    asyncio.run(timeline_scenario(tmp_path))
