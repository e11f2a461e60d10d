"""Consult rooms in the hub: joins, leaves, removals and actions, told to every member.

The room state is the pure ``RoomRegistry`` (``Hub.rooms``, one per process). This service does
what it cannot: looks up the case's unit, keeps the durable timeline (``ambulink.hub.timeline``),
and publishes every change on the room's bus topic (``room:{case_id}``): presence snapshots
(whoever calls ``RoomRegistry.changed``: member sockets, the uplink, the media helper),
timeline entries, and removals, which close the removed member's sockets. In the background it
frees seats whose reconnect grace has passed and writes alarms and their acknowledgements to
the case timelines (read from the dispatch alarm topic, which carries every case's alarms).

Seats are per hub process: a case's members should reach the same process (route by case id);
timeline entries and presence reach members in every process through the bus.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from ambulink.errors import AmbulinkError
from ambulink.hub.alarm_service import DISPATCH_TOPIC
from ambulink.hub.audit import AuditLog
from ambulink.hub.bus import Bus
from ambulink.hub.store import CaseStore, UnknownCase
from ambulink.hub.timeline import ROOM_KEEP, Timeline, room_topic
from ambulink.hub.tokens import Grant
from ambulink.hub.viewers import now_id
from ambulink.protocol.messages import StreamOpen
from ambulink.rooms.model import (
    PERMISSIONS,
    Member,
    NotAllowed,
    NotAMember,
    Room,
    RoomRegistry,
    room_role,
)
from ambulink.rooms.timeline import Entry, action_entry

logger = logging.getLogger(__name__)

EXPIRE_EVERY_S = 1.0
ALARM_READ_MS = 1000


@dataclass(frozen=True)
class Seat:
    """A member's place after a join: what its socket needs to start."""

    room: Room
    member: Member
    cursor: str  # room topic position taken before the snapshot and the join
    timeline: list[Entry]


class RoomService:
    """One per hub process; see the module docstring. ``clock`` gives Unix seconds."""

    def __init__(
        self,
        rooms: RoomRegistry,
        timeline: Timeline,
        bus: Bus,
        store: CaseStore,
        audit: AuditLog,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.rooms = rooms
        self.timeline = timeline
        self._bus = bus
        self._store = store
        self._audit = audit
        self._clock = clock
        self._outbox: asyncio.Queue[tuple[str, str]] = asyncio.Queue()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[RoomService]:
        """Publish presence, free expired seats and follow alarms while the hub runs."""
        self.rooms.listeners.append(self._presence_changed)
        tasks = [
            asyncio.create_task(self._publish_forever()),
            asyncio.create_task(self._expire_forever()),
            asyncio.create_task(self._follow_alarms()),
        ]
        try:
            yield self
        finally:
            self.rooms.listeners.remove(self._presence_changed)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # ---- membership --------------------------------------------------------------------------

    async def join(self, case_id: str, grant: Grant, asked: object) -> Seat:
        """Seat ``grant``'s holder in the case's room (its own seat again after a drop)."""
        try:
            info = await self._store.get_case(case_id)
        except UnknownCase:
            raise NotAMember(f"there is no case {case_id}; check the link to the consult") from None
        if asked is not None and not isinstance(asked, str):
            raise NotAllowed(f'"as" must be a room role such as "observer", got {asked!r}')
        role = room_role(grant.role, grant.unit, info.unit_id, asked)
        member_id = f"{grant.role}:{grant.sub}"
        await self.timeline.append(case_id, "case_opened", at=info.created_at, key="case_opened")
        cursor = now_id()
        snapshot = await self.timeline.entries(case_id)
        room = self.rooms.room(case_id, info.unit_id)
        await self._expire(room)
        is_new = member_id not in room.members
        member = room.join(member_id, role, self._clock())  # no await since the capacity check
        self.rooms.changed(room)
        if is_new:
            await self.timeline.append(case_id, "member_joined", by=member_id, data={"role": role})
        return Seat(room, member, cursor, snapshot)

    def disconnected(self, room: Room, member_id: str) -> None:
        """One of the member's sockets closed; its seat stays for the reconnect grace."""
        if member_id in room.members:
            room.disconnect(member_id, self._clock())
            self.rooms.changed(room)

    async def leave(self, room: Room, member_id: str) -> None:
        room.require(member_id, "view")
        room.leave(member_id)
        await self._removed(room, member_id, by=member_id, reason="left")

    async def kick(self, room: Room, by: str, member_id: str) -> None:
        room.kick(by, member_id)
        await self._audit.append(by, "kick", member_id)
        await self._removed(room, member_id, by=by, reason="kicked")

    async def _removed(self, room: Room, member_id: str, *, by: str, reason: str) -> None:
        self.rooms.changed(room)
        removal = {"type": "member_removed", "member_id": member_id, "by": by, "reason": reason}
        self._outbox.put_nowait((room.case_id, json.dumps(removal)))
        await self.timeline.append(
            room.case_id, "member_left", by=member_id, data={"reason": reason, "by": by}
        )

    def set_media(self, room: Room, member_id: str, *, video: object, audio: object) -> None:
        if not isinstance(video, bool) or not isinstance(audio, bool):
            raise NotAllowed("media_state needs video and audio as true or false")
        room.set_media(member_id, video=video, audio=audio)
        self.rooms.changed(room)

    async def act(self, room: Room, member_id: str, message: dict[str, Any]) -> Entry:
        """A member's action (decision, advice, note, ETA) on the timeline, pushed to all."""
        member = room.require(member_id, "view")
        entry = action_entry(
            entry_id=uuid.uuid4().hex,
            case_id=room.case_id,
            at=self._clock(),
            by=member_id,
            permissions=PERMISSIONS[member.role],
            action=message.get("action"),
            text=message.get("text"),
            data=message.get("data"),
        )
        await self.timeline.add(entry)
        if entry.kind == "decision":
            await self._audit.append(member_id, str(entry.data["decision"]), room.case_id)
        return entry

    async def on_stream_open(self, opened: StreamOpen) -> None:
        """Ingest opened a stream: the case's ECG started (once per case)."""
        try:
            await self.timeline.append(
                opened.case_id,
                "ecg_started",
                at=opened.started_at,
                data={"stream_id": opened.stream_id, "leads": len(opened.leads), "fs": opened.fs},
                key="ecg_started",
            )
        except AmbulinkError:
            # The timeline is a view of the case; the ECG itself must go on.
            logger.exception("could not write the ECG start of case %s", opened.case_id)

    # ---- background --------------------------------------------------------------------------

    def _presence_changed(self, room: Room) -> None:
        # A snapshot now, published in order by one task (listeners are synchronous).
        message = {"type": "presence", "members": room.presence()}
        self._outbox.put_nowait((room.case_id, json.dumps(message)))

    async def _publish_forever(self) -> None:
        while True:
            case_id, text = await self._outbox.get()
            try:
                await self._bus.append(room_topic(case_id), {"json": text}, maxlen=ROOM_KEEP)
            except AmbulinkError:
                logger.exception("could not publish a change of the room of case %s", case_id)

    async def _expire_forever(self) -> None:
        while True:
            await asyncio.sleep(EXPIRE_EVERY_S)
            for room in list(self.rooms.rooms.values()):
                try:
                    await self._expire(room)
                except AmbulinkError:
                    logger.exception("could not free seats in the room of case %s", room.case_id)

    async def _expire(self, room: Room) -> None:
        gone = room.expire(self._clock())
        if gone:
            self.rooms.changed(room)
        for member_id in gone:
            await self.timeline.append(
                room.case_id, "member_left", by=member_id, data={"reason": "gone"}
            )

    async def _follow_alarms(self) -> None:
        """Alarms raised and acknowledged, once each, on their case's timeline."""
        cursor = now_id()
        while True:
            entries = await self._bus.read(
                DISPATCH_TOPIC, after=cursor, count=100, block_ms=ALARM_READ_MS
            )
            for entry_id, fields in entries:
                cursor = entry_id
                try:
                    await self._alarm_entry(json.loads(fields["json"]))
                except (AmbulinkError, ValueError, KeyError, TypeError):
                    logger.exception("could not write an alarm to its case timeline")

    async def _alarm_entry(self, message: dict[str, Any]) -> None:
        alarm = message["alarm"]
        case_id = alarm.get("case_id")
        if case_id is None:
            return  # the hub's own alarms belong to no case
        alarm_id = str(alarm["alarm_id"])
        about = {"alarm_id": alarm_id, "kind": alarm["kind"], "priority": alarm["priority"]}
        text = f"{alarm['priority']} priority alarm: {alarm['kind']}"
        await self.timeline.append(case_id, "alarm", text=text, data=about, key=f"alarm:{alarm_id}")
        if alarm.get("acks"):
            by = alarm["acks"][0][0]
            await self.timeline.append(
                case_id,
                "alarm_ack",
                by=str(by),
                text=f"acknowledged {alarm['kind']}",
                data=about,
                key=f"alarm_ack:{alarm_id}",
            )
