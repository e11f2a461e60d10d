"""The consult room member socket ``/ws/rooms/{case_id}`` (docs/rooms.md, "Member socket").

A member authenticates as on every socket (token first, Origin checked), is seated in the
case's room (``RoomService.join``: capacity, roles, its own seat again after a drop), gets the
room's presence and timeline, then everything a case viewer gets (alarms first, waveform
skipped when it falls behind) through the shared serving loop of ``ambulink.hub.viewers``.
Every message it sends is checked against its room role (``Room.require``); refusals get an
``error`` message and go to the audit log. The room topic is read before the alarm topics.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import WebSocket

from ambulink.errors import ProtocolError
from ambulink.hub.room_service import RoomService, Seat
from ambulink.hub.timeline import room_topic
from ambulink.hub.tokens import Grant
from ambulink.hub.viewers import MemberSession, SessionEnded, authenticate, case_cursors, serve
from ambulink.rooms.model import CAPACITY, PERMISSIONS
from ambulink.rooms.timeline import permission_for

TOKEN_ROLES = ("crew", "specialist", "dispatch")

# The room permission each member message needs, besides the checks of the action itself.
MESSAGE_PERMISSION: dict[str, str] = {
    "receipt": "view",
    "alarm_ack": "ack",
    "audio_pause": "ack",
    "media_state": "view",  # sending video or audio needs publish (Room.set_media)
    "kick": "kick",
    "leave": "view",
}


class RoomSession(MemberSession):
    """A seated member's socket: room messages on top of the viewer's."""

    message_types = (*MemberSession.message_types, "action", "media_state", "kick", "leave")

    def __init__(self, websocket: WebSocket, hub: Any, grant: Grant, seat: Seat) -> None:
        super().__init__(websocket, hub, grant, seat.room.case_id)
        self.room = seat.room
        self.rooms: RoomService = hub.room_service

    async def relay(self, topic: str, text: str) -> None:
        if topic != room_topic(self.room.case_id):
            await self.send_text(text)
            return
        message = json.loads(text)
        if message.get("type") != "member_removed":
            await self.send_text(text)
        elif message.get("member_id") == self.member_id:
            if message.get("reason") == "kicked":
                await self.send({"type": "kicked", "by": message.get("by")})
                raise SessionEnded(1008, "removed from the room")
            raise SessionEnded(1000, "left the room")

    async def check(self, kind: object, message: dict[str, Any]) -> None:
        if kind == "action":
            needed = permission_for(message.get("action"))
        elif isinstance(kind, str) and kind in MESSAGE_PERMISSION:
            needed = MESSAGE_PERMISSION[kind]
        else:
            raise ProtocolError(
                f"unknown message type {kind!r}; expected {', '.join(self.message_types)}"
            )
        self.room.require(self.member_id, needed)

    async def handle(self, kind: object, message: dict[str, Any]) -> None:
        match kind:
            case "action":
                await self.rooms.act(self.room, self.member_id, message)
            case "media_state":
                self.rooms.set_media(
                    self.room,
                    self.member_id,
                    video=message.get("video"),
                    audio=message.get("audio"),
                )
            case "kick":
                await self.rooms.kick(self.room, self.member_id, str(message.get("member_id")))
            case "leave":
                await self.rooms.leave(self.room, self.member_id)
                raise SessionEnded(1000, "left the room")
            case _:
                await super().handle(kind, message)

    async def refused(self, kind: object, message: dict[str, Any], code: str) -> None:
        match kind:
            case "action":
                action = str(message.get("action"))[:64]
                await self.hub.audit.append(self.member_id, action, self.room.case_id, code)
            case "kick":
                target = str(message.get("member_id"))[:200]
                await self.hub.audit.append(self.member_id, "kick", target, code)
            case "media_state":
                await self.hub.audit.append(self.member_id, "media", self.room.case_id, code)
            case _:
                await super().refused(kind, message, code)


async def room_socket(websocket: WebSocket, case_id: str) -> None:
    """A consult room member: presence, timeline, alarms, vitals, waveform; actions back."""
    hub = websocket.state.hub
    service: RoomService = hub.room_service
    seats: list[Seat] = []

    async def admit(grant: Grant, first: dict[str, Any]) -> None:
        seats.append(await service.join(case_id, grant, first.get("as")))

    try:
        grant = await authenticate(websocket, hub, case_id, TOKEN_ROLES, admit=admit, action="join")
    except BaseException:
        for seat in seats:  # seated, then the audit failed: give the connection back
            service.disconnected(seat.room, seat.member.member_id)
        raise
    if grant is None:
        return
    seat = seats[0]
    session = RoomSession(websocket, hub, grant, seat)
    member = seat.member
    joined: dict[str, object] = {
        "type": "joined",
        "case_id": case_id,
        "unit_id": seat.room.unit_id,
        "capacity": CAPACITY,
        "you": {
            "member_id": member.member_id,
            "role": member.role,
            "permissions": sorted(PERMISSIONS[member.role]),
        },
    }
    timeline: dict[str, object] = {
        "type": "timeline",
        "entries": [entry.to_json() for entry in seat.timeline],
    }
    cursors = {room_topic(case_id): seat.cursor, **case_cursors(case_id)}
    try:
        await serve(session, cursors, hub.alarms.active(case_id), greeting=(joined, timeline))
    finally:
        service.disconnected(seat.room, session.member_id)
        await hub.audit.append(session.member_id, "leave", case_id)
