"""Timeline entries from members' actions: kinds, permissions, text limits, wire form."""

from __future__ import annotations

from typing import Any

import pytest

from ambulink.rooms.model import PERMISSIONS, NotAllowed
from ambulink.rooms.timeline import (
    KINDS,
    MAX_TEXT_CHARS,
    BadAction,
    Entry,
    action_entry,
    check_kind,
)


def act(role: str, action: object, text: object = "", data: object = None) -> Entry:
    return action_entry(
        entry_id="e1",
        case_id="case-1",
        at=1_800_000_000.0,
        by=f"{role}:someone",
        permissions=PERMISSIONS[role],
        action=action,
        text=text,
        data=data,
    )


@pytest.mark.parametrize("decision", ["confirm_stemi", "activate_cath_lab"])
def test_a_specialist_decides(decision: str) -> None:
    entry = act("specialist", decision, "  inferior STEMI  ")
    assert entry.kind == "decision" and entry.data == {"decision": decision}
    assert entry.text == "inferior STEMI"
    assert entry.to_json() == {
        "entry_id": "e1",
        "at": 1_800_000_000.0,
        "kind": "decision",
        "by": "specialist:someone",
        "text": "inferior STEMI",
        "data": {"decision": decision},
    }


@pytest.mark.parametrize(
    ("role", "action"),
    [
        ("crew", "confirm_stemi"),
        ("crew", "activate_cath_lab"),
        ("crew", "advice"),
        ("observer", "note"),
        ("observer", "confirm_stemi"),
    ],
)
def test_a_role_without_the_permission_is_refused(role: str, action: str) -> None:
    with pytest.raises(NotAllowed, match="needs the") as refused:
        act(role, action, "text")
    assert refused.value.code == "forbidden"


def test_advice_and_notes_need_text_and_notes_carry_eta() -> None:
    assert act("specialist", "advice", "give aspirin 300 mg").kind == "advice"
    assert act("crew", "note", "12-lead sent").kind == "note"
    eta = act("crew", "note", "", {"eta_s": 540})
    assert (eta.kind, eta.data) == ("eta", {"eta_s": 540.0})
    with pytest.raises(BadAction, match="advice needs a text"):
        act("specialist", "advice", "   ")
    with pytest.raises(BadAction, match="a note needs a text"):
        act("crew", "note", "")


@pytest.mark.parametrize(
    ("action", "text", "data", "says"),
    [
        ("reboot", "x", None, "unknown action 'reboot'"),
        (None, "x", None, "unknown action None"),
        ("note", "x" * (MAX_TEXT_CHARS + 1), None, f"at most {MAX_TEXT_CHARS} characters"),
        ("note", 42, None, "text must be a string"),
        ("note", "", {"eta_s": -5}, "eta_s must be 0-"),
        ("note", "", {"eta_s": float("nan")}, "eta_s must be a number"),
        ("note", "", {"eta_s": True}, "eta_s must be a number"),
        ("note", "", {"eta_s": "soon"}, "eta_s must be a number"),
    ],
)
def test_bad_actions_say_what_is_wrong(action: object, text: object, data: Any, says: str) -> None:
    with pytest.raises(BadAction, match=says) as refused:
        act("specialist", action, text, data)
    assert refused.value.code == "bad_action"


def test_text_at_the_limit_is_taken() -> None:
    assert len(act("crew", "note", "x" * MAX_TEXT_CHARS).text) == MAX_TEXT_CHARS


def test_kinds_are_the_contracts() -> None:
    assert set(KINDS) == {
        "case_opened",
        "ecg_started",
        "alarm",
        "alarm_ack",
        "decision",
        "advice",
        "note",
        "eta",
        "member_joined",
        "member_left",
    }
    with pytest.raises(BadAction, match="unknown timeline entry kind"):
        check_kind("gossip")
