"""Consult rooms as plain state: members, roles, capacity, presence, reconnects (DESIGN §3.5).

A room belongs to one case and holds at most ``CAPACITY`` parties: the ambulance crew (its uplink
and its tablet page), specialists and observers. Nothing here does I/O or reads a clock: callers
pass ``now`` (seconds) and act on what the methods return. Every message a member sends is checked
with ``Room.require(member_id, action)``, not only the join.

A member whose last connection drops keeps its seat for ``RECONNECT_GRACE_S`` (5G drops in a
tunnel are routine): a reconnect within that time is the same member in the same seat, even when
the room has filled meanwhile; ``expire`` frees seats after it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, get_args

from ambulink.errors import AmbulinkError

RoomRole = Literal["crew", "specialist", "observer"]
ROOM_ROLES: tuple[str, ...] = get_args(RoomRole)
Action = Literal["view", "publish", "ack", "note", "advise", "decide", "kick"]

CAPACITY = 8
RECONNECT_GRACE_S = 30.0

# What each room role may do. Crew: publish patient data and media, ack alarms, note the
# timeline (ETA, findings). Specialists: also advise the crew, record decisions (confirm STEMI,
# activate the cath lab) and remove a member. Observers (e.g. dispatch) only watch.
PERMISSIONS: dict[str, frozenset[str]] = {
    "crew": frozenset({"view", "publish", "ack", "note"}),
    "specialist": frozenset({"view", "publish", "ack", "note", "advise", "decide", "kick"}),
    "observer": frozenset({"view"}),
}


class RoomError(AmbulinkError):
    """A room refused something; ``code`` says what, the message says why in plain words."""

    code = "room_error"


class RoomFull(RoomError):
    code = "room_full"


class NotAMember(RoomError):
    code = "not_a_member"


class NotAllowed(RoomError):
    code = "forbidden"


@dataclass
class Member:
    """One party. ``member_id`` is opaque ("<token role>:<token subject>"), never patient data."""

    member_id: str
    role: RoomRole
    joined_at: float
    connections: int = 0
    disconnected_at: float | None = None
    video: bool = False
    audio: bool = False

    @property
    def connected(self) -> bool:
        return self.connections > 0

    def can(self, action: str) -> bool:
        return action in PERMISSIONS[self.role]

    def presence(self) -> dict[str, object]:
        return {
            "member_id": self.member_id,
            "role": self.role,
            "connected": self.connected,
            "video": self.video,
            "audio": self.audio,
            "joined_at": self.joined_at,
        }


@dataclass
class Room:
    """The parties of one case's consult."""

    case_id: str
    unit_id: str
    capacity: int = CAPACITY
    members: dict[str, Member] = field(default_factory=dict)
    kicked: set[str] = field(default_factory=set)

    def join(self, member_id: str, role: RoomRole, now: float) -> Member:
        """Add a connection for ``member_id``: a new seat, or the member's own seat again."""
        if role not in ROOM_ROLES:
            raise NotAllowed(f"unknown room role {role!r}; expected one of {', '.join(ROOM_ROLES)}")
        if member_id in self.kicked:
            raise NotAllowed(f"{member_id} was removed from the room of case {self.case_id}")
        member = self.members.get(member_id)
        if member is None:
            if len(self.members) >= self.capacity:
                raise RoomFull(
                    f"the room of case {self.case_id} is full ({len(self.members)} of "
                    f"{self.capacity} parties); ask a member to leave or join later"
                )
            member = Member(member_id, role, joined_at=now)
            self.members[member_id] = member
        elif member.role != role:
            raise NotAllowed(
                f"{member_id} is in the room as {member.role}; leave before joining as {role}"
            )
        member.connections += 1
        member.disconnected_at = None
        return member

    def disconnect(self, member_id: str, now: float) -> None:
        """One connection of ``member_id`` ended; the seat is kept for the grace period."""
        member = self.members.get(member_id)
        if member is None:
            return
        member.connections = max(member.connections - 1, 0)
        if member.connections == 0:
            member.disconnected_at = now
            member.video = member.audio = False

    def leave(self, member_id: str) -> bool:
        """Free ``member_id``'s seat at once; False when it had none."""
        return self.members.pop(member_id, None) is not None

    def kick(self, by: str, member_id: str) -> None:
        """``by`` removes ``member_id``, who cannot join this room again."""
        self.require(by, "kick")
        if by == member_id:
            raise NotAllowed("a member cannot remove itself; leave instead")
        if member_id not in self.members:
            raise NotAMember(f"{member_id} is not in the room of case {self.case_id}")
        del self.members[member_id]
        self.kicked.add(member_id)

    def expire(self, now: float, grace_s: float = RECONNECT_GRACE_S) -> list[str]:
        """Free the seats of members disconnected longer than ``grace_s``; their ids."""
        gone = [
            m.member_id
            for m in self.members.values()
            if m.disconnected_at is not None and now - m.disconnected_at >= grace_s
        ]
        for member_id in gone:
            del self.members[member_id]
        return gone

    def require(self, member_id: str, action: Action | str) -> Member:
        """The connected member, if its role allows ``action``; else a clear error."""
        member = self.members.get(member_id)
        if member is None or not member.connected:
            raise NotAMember(f"{member_id} has not joined the room of case {self.case_id}")
        if not member.can(action):
            raise NotAllowed(f"a {member.role} may not {action} in a consult room")
        return member

    def set_media(self, member_id: str, *, video: bool, audio: bool) -> None:
        """What a member says it is sending (camera and microphone toggles)."""
        member = self.require(member_id, "view")
        if (video or audio) and not member.can("publish"):
            raise NotAllowed(f"a {member.role} may not publish video or audio")
        member.video, member.audio = video, audio

    def presence(self) -> list[dict[str, object]]:
        return [m.presence() for m in sorted(self.members.values(), key=lambda m: m.joined_at)]


def room_role(
    token_role: str, token_unit: str | None, room_unit: str, asked: str | None
) -> RoomRole:
    """The room role a token gets: the unit's own crew is ``crew``, specialists and admins are
    ``specialist``, dispatch is ``observer``; anyone may ask to join as ``observer`` instead."""
    if token_role == "crew":
        if token_unit != room_unit:
            raise NotAllowed(f"this crew token is for unit {token_unit}, not {room_unit}")
        granted: RoomRole = "crew"
    elif token_role in ("specialist", "admin"):
        granted = "specialist"
    elif token_role == "dispatch":
        granted = "observer"
    else:
        raise NotAllowed(f"role {token_role} cannot join a consult room")
    if asked is None or asked == granted:
        return granted
    if asked == "observer":
        return "observer"
    raise NotAllowed(f"a {token_role} token may join as {granted} or observer, not {asked}")


@dataclass
class RoomRegistry:
    """Rooms by case id, in this process. ``listeners`` hear every presence change."""

    rooms: dict[str, Room] = field(default_factory=dict)
    listeners: list[Callable[[Room], None]] = field(default_factory=list)

    def room(self, case_id: str, unit_id: str) -> Room:
        """The case's room, created on first use."""
        room = self.rooms.get(case_id)
        if room is None:
            room = self.rooms[case_id] = Room(case_id, unit_id)
        return room

    def get(self, case_id: str) -> Room:
        room = self.rooms.get(case_id)
        if room is None:
            raise NotAMember(f"case {case_id} has no consult room yet")
        return room

    def changed(self, room: Room) -> None:
        """Tell listeners that ``room``'s membership or media state changed."""
        for listener in self.listeners:
            listener(room)
