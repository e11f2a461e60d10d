"""The pure room model: capacity, roles, kick, reconnect grace, presence."""

from __future__ import annotations

import pytest

from ambulink.rooms.model import (
    CAPACITY,
    RECONNECT_GRACE_S,
    NotAllowed,
    NotAMember,
    Room,
    RoomFull,
    RoomRegistry,
    room_role,
)


def full_room() -> Room:
    room = Room("case-1", "amb-1")
    room.join("crew:tablet", "crew", now=0.0)
    for i in range(CAPACITY - 2):
        room.join(f"specialist:doc-{i}", "specialist", now=1.0 + i)
    room.join("dispatch:desk", "observer", now=20.0)
    return room


def test_a_ninth_party_is_refused_in_plain_words() -> None:
    room = full_room()
    assert len(room.members) == CAPACITY == 8
    with pytest.raises(RoomFull, match=r"full \(8 of 8 parties\)") as refused:
        room.join("specialist:late", "specialist", now=30.0)
    assert refused.value.code == "room_full"
    assert "specialist:late" not in room.members


def test_roles_decide_what_a_member_may_do() -> None:
    room = full_room()
    assert room.require("specialist:doc-0", "decide").role == "specialist"
    room.require("crew:tablet", "note")
    for action in ("decide", "advise", "kick"):
        with pytest.raises(NotAllowed, match="crew may not"):
            room.require("crew:tablet", action)
    for action in ("publish", "ack", "note"):
        with pytest.raises(NotAllowed) as refused:
            room.require("dispatch:desk", action)
        assert refused.value.code == "forbidden"
    with pytest.raises(NotAMember):
        room.require("specialist:stranger", "view")
    with pytest.raises(NotAllowed, match="may not publish"):
        room.set_media("dispatch:desk", video=True, audio=False)
    room.set_media("dispatch:desk", video=False, audio=False)
    room.set_media("crew:tablet", video=True, audio=True)
    assert room.members["crew:tablet"].video


def test_a_reconnect_within_grace_keeps_the_seat_of_a_full_room() -> None:
    room = full_room()
    room.set_media("specialist:doc-1", video=True, audio=True)
    room.disconnect("specialist:doc-1", now=100.0)
    seat = room.members["specialist:doc-1"]
    assert not seat.connected and not seat.video  # media stops with the last connection
    with pytest.raises(NotAMember):
        room.require("specialist:doc-1", "view")  # not connected: no messages
    with pytest.raises(RoomFull):
        room.join("specialist:late", "specialist", now=101.0)
    assert room.expire(now=100.0 + RECONNECT_GRACE_S - 1) == []
    again = room.join("specialist:doc-1", "specialist", now=110.0)
    assert again is seat and again.connected and again.joined_at == 2.0
    # Two connections of one member: the seat stays connected until both drop.
    room.join("specialist:doc-1", "specialist", now=111.0)
    room.disconnect("specialist:doc-1", now=112.0)
    assert room.members["specialist:doc-1"].connected


def test_expired_seats_are_freed_for_others() -> None:
    room = full_room()
    room.disconnect("specialist:doc-2", now=100.0)
    assert room.expire(now=100.0 + RECONNECT_GRACE_S) == ["specialist:doc-2"]
    room.join("specialist:late", "specialist", now=140.0)
    assert "specialist:doc-2" not in room.members


def test_a_kicked_member_cannot_come_back() -> None:
    room = full_room()
    with pytest.raises(NotAllowed):
        room.kick("crew:tablet", "specialist:doc-0")
    with pytest.raises(NotAllowed, match="leave instead"):
        room.kick("specialist:doc-0", "specialist:doc-0")
    room.kick("specialist:doc-0", "specialist:doc-1")
    assert "specialist:doc-1" not in room.members
    with pytest.raises(NotAllowed, match="removed"):
        room.join("specialist:doc-1", "observer", now=50.0)
    with pytest.raises(NotAMember):
        room.kick("specialist:doc-0", "specialist:doc-1")
    # A member that leaves may come back.
    assert room.leave("dispatch:desk") and not room.leave("dispatch:desk")
    room.join("dispatch:desk", "observer", now=60.0)


def test_a_member_keeps_its_role_until_it_leaves() -> None:
    room = Room("case-1", "amb-1")
    room.join("specialist:doc", "specialist", now=0.0)
    with pytest.raises(NotAllowed, match="leave before joining as observer"):
        room.join("specialist:doc", "observer", now=1.0)
    with pytest.raises(NotAllowed, match="unknown room role"):
        room.join("specialist:x", "boss", now=1.0)  # type: ignore[arg-type]


def test_presence_lists_members_in_join_order() -> None:
    room = full_room()
    room.disconnect("dispatch:desk", now=50.0)
    presence = room.presence()
    assert [p["member_id"] for p in presence][:2] == ["crew:tablet", "specialist:doc-0"]
    assert presence[-1] == {
        "member_id": "dispatch:desk",
        "role": "observer",
        "connected": False,
        "video": False,
        "audio": False,
        "joined_at": 20.0,
    }


@pytest.mark.parametrize(
    ("token_role", "token_unit", "asked", "expected"),
    [
        ("crew", "amb-1", None, "crew"),
        ("crew", "amb-1", "observer", "observer"),
        ("specialist", None, None, "specialist"),
        ("admin", None, None, "specialist"),
        ("dispatch", None, None, "observer"),
        ("dispatch", None, "observer", "observer"),
    ],
)
def test_room_role_of_a_token(
    token_role: str, token_unit: str | None, asked: str | None, expected: str
) -> None:
    assert room_role(token_role, token_unit, "amb-1", asked) == expected


@pytest.mark.parametrize(
    ("token_role", "token_unit", "asked", "says"),
    [
        ("crew", "amb-2", None, "for unit amb-2, not amb-1"),
        ("crew", None, None, "not amb-1"),
        ("dispatch", None, "specialist", "observer, not specialist"),
        ("specialist", None, "crew", "specialist or observer, not crew"),
        ("robot", None, None, "cannot join"),
    ],
)
def test_room_role_refusals_say_why(
    token_role: str, token_unit: str | None, asked: str | None, says: str
) -> None:
    with pytest.raises(NotAllowed, match=says):
        room_role(token_role, token_unit, "amb-1", asked)


def test_registry_tells_listeners_and_knows_its_rooms() -> None:
    registry = RoomRegistry()
    heard: list[str] = []
    registry.listeners.append(lambda room: heard.append(room.case_id))
    room = registry.room("case-1", "amb-1")
    assert registry.room("case-1", "amb-1") is room and registry.get("case-1") is room
    with pytest.raises(NotAMember, match="no consult room"):
        registry.get("case-2")
    registry.changed(room)
    assert heard == ["case-1"]
