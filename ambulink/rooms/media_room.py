"""Who sees whom in a consult room: publishers, viewers' slots, and the ``slots`` messages.

A ``MediaRoom`` holds the room's media members: each member's published tracks (camera,
microphone) and, for members with a peer connection, its slots (the receiving transceivers of its
offer, one ``ForwardedTrack`` each). On every change each viewer's slots are assigned again:
a publisher keeps its slot while it publishes; new publishers take free slots in the order they
started; the member is told over its ``room-media`` data channel when its assignment changed.
A ``MediaRouter`` holds the rooms of the process and closes the peer connections of members
who left the room (``RoomRegistry.listeners``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCDataChannel, RTCPeerConnection

from ambulink.rooms.forwarding import ForwardedTrack, PublishedTrack
from ambulink.rooms.model import Room, RoomRegistry

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 5.0  # a peer connection that does not close in this long is abandoned
SLOTS_CHANNEL = "room-media"


@dataclass(eq=False)
class Slot:
    """One receiving transceiver of a viewer: ``mid`` carries ``track`` (idle or forwarding)."""

    mid: str
    kind: str
    track: ForwardedTrack

    @property
    def publisher(self) -> PublishedTrack | None:
        return self.track.source


@dataclass(eq=False)
class MediaMember:
    """A member's media: its peer connection (None for the ambulance uplink, whose connection
    the uplink session owns), what it publishes by kind, and its slots."""

    member_id: str
    role: str
    pc: RTCPeerConnection | None = None
    slots: list[Slot] = field(default_factory=list)
    published: dict[str, PublishedTrack] = field(default_factory=dict)
    channel: RTCDataChannel | None = None
    sent: list[dict[str, str]] | None = None  # the last slots message sent
    tasks: set[asyncio.Task[None]] = field(default_factory=set)  # cancelled when it leaves

    def slot_message(self, roles: dict[str, str]) -> list[dict[str, str]]:
        """``[{"mid", "kind", "member_id", "role"}]`` of the slots that carry a publisher."""
        return [
            {"mid": s.mid, "kind": s.kind, "member_id": p.member_id, "role": roles[p.member_id]}
            for s in self.slots
            if (p := s.publisher) is not None
        ]

    def tell_slots(self, roles: dict[str, str]) -> None:
        """Send the slot assignment if it changed and the data channel is open."""
        message = self.slot_message(roles)
        channel = self.channel
        if message == self.sent or channel is None or channel.readyState != "open":
            return
        channel.send(json.dumps({"type": "slots", "slots": message}))
        self.sent = message


@dataclass(eq=False)
class MediaRoom:
    """The media members of one case's room."""

    case_id: str
    members: dict[str, MediaMember] = field(default_factory=dict)

    def publishers(self, kind: str) -> list[PublishedTrack]:
        """Published tracks of ``kind``, in the order their members joined the media room."""
        return [m.published[kind] for m in self.members.values() if kind in m.published]

    def add(self, member: MediaMember) -> None:
        """Add ``member`` (the caller removed any previous one with the same id first)."""
        if member.member_id in self.members:
            raise ValueError(f"{member.member_id} already has media in case {self.case_id}")
        self.members[member.member_id] = member
        self.reassign()

    def publish(self, member_id: str, track: PublishedTrack) -> None:
        member = self.members[member_id]
        old = member.published.get(track.kind)
        if old is not None and old is not track:
            old.close()
        member.published[track.kind] = track
        self.reassign()

    def reassign(self) -> None:
        """Give every viewer's slots to the current publishers; tell viewers what changed."""
        roles = {m.member_id: m.role for m in self.members.values()}
        for viewer in self.members.values():
            for kind in ("video", "audio"):
                _assign(viewer, kind, self.publishers(kind))
            viewer.tell_slots(roles)

    def tell(self, member_id: str) -> None:
        """Send ``member_id`` its slots (e.g. when its data channel opened)."""
        member = self.members.get(member_id)
        if member is not None:
            member.sent = None
            member.tell_slots({m.member_id: m.role for m in self.members.values()})

    def detach(self, member_id: str) -> MediaMember | None:
        """Take ``member_id`` out: its publications end, its slots go idle (not closed yet)."""
        member = self.members.pop(member_id, None)
        if member is None:
            return None
        for track in member.published.values():
            track.close()
        for slot in member.slots:
            slot.track.stop()
        self.reassign()
        return member


def _assign(viewer: MediaMember, kind: str, publishers: Iterable[PublishedTrack]) -> None:
    slots = [s for s in viewer.slots if s.kind == kind]
    wanted = [p for p in publishers if p.member_id != viewer.member_id]
    for slot in slots:  # a publisher that is gone leaves its slot
        if slot.publisher is not None and slot.publisher not in wanted:
            slot.track.attach(None)
    shown = {s.publisher for s in slots if s.publisher is not None}
    free = [s for s in slots if s.publisher is None]
    for publisher in wanted:
        if publisher not in shown and free:
            free.pop(0).track.attach(publisher)


@dataclass(eq=False)
class MediaRouter:
    """The media rooms of this hub process."""

    rooms: dict[str, MediaRoom] = field(default_factory=dict)
    ice_timeout_s: float = 20.0  # a member not connected by then is closed (nothing held)

    def __post_init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._watched: RoomRegistry | None = None

    def room(self, case_id: str) -> MediaRoom:
        room = self.rooms.get(case_id)
        if room is None:
            room = self.rooms[case_id] = MediaRoom(case_id)
        return room

    @property
    def peer_connections(self) -> int:
        """Open peer connections held by the router (leak checks, metrics)."""
        return sum(1 for r in self.rooms.values() for m in r.members.values() if m.pc is not None)

    def watch(self, registry: RoomRegistry) -> None:
        """Close the media of members who leave ``registry``'s rooms (idempotent)."""
        if self._watched is registry:
            return
        self._watched = registry
        registry.listeners.append(self.on_room_changed)

    def on_room_changed(self, room: Room) -> None:
        media = self.rooms.get(room.case_id)
        if media is None:
            return
        for member_id in [m for m in media.members if m not in room.members]:
            self._spawn(self.remove(room.case_id, member_id))

    async def remove(
        self, case_id: str, member_id: str, pc: RTCPeerConnection | None = None
    ) -> None:
        """Take ``member_id``'s media out of the room and close its peer connection. With ``pc``,
        only if that is still the member's connection (a newer offer replaced it otherwise)."""
        room = self.rooms.get(case_id)
        if room is None:
            return
        member = room.members.get(member_id)
        if member is None or (pc is not None and member.pc is not pc):
            return
        room.detach(member_id)
        for task in member.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        if not room.members:
            del self.rooms[case_id]
        if member.pc is not None:
            await close_pc(member.pc)
        logger.info("media of %s left case %s", member_id, case_id)

    async def close(self) -> None:
        """Close every member's peer connection (hub shutdown)."""
        for case_id, room in list(self.rooms.items()):
            for member_id in list(room.members):
                await self.remove(case_id, member_id)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``work`` as a task the router cancels when it closes."""
        return self._spawn(work)

    @property
    def tasks(self) -> int:
        return len(self._tasks)


async def close_pc(pc: RTCPeerConnection) -> None:
    """Close ``pc`` within ``CLOSE_TIMEOUT_S``. Shielded: a second ``close()`` awaits aiortc's
    own "closed" future, and cancelling that waiter would cancel the future under the first."""
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await asyncio.shield(pc.close())
    except TimeoutError:
        logger.warning("a peer connection did not close within %.0f s", CLOSE_TIMEOUT_S)
