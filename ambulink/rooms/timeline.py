"""A case's timeline as plain data: entries, their kinds, and members' actions checked.

The consult page shows one timeline per case: first medical contact, ECG start, alarms and their
acknowledgements, the specialists' decisions and advice, notes, ETA, who joined and left. An
entry is written once and never changed. Nothing here does I/O or reads a clock: callers pass
``entry_id`` and ``at`` (Unix seconds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, get_args

from ambulink.rooms.model import NotAllowed, RoomError

Kind = Literal[
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
]
KINDS: tuple[str, ...] = get_args(Kind)

ActionName = Literal["confirm_stemi", "activate_cath_lab", "advice", "note"]
# The room permission each member action needs (docs/rooms.md).
ACTION_PERMISSION: dict[str, str] = {
    "confirm_stemi": "decide",
    "activate_cath_lab": "decide",
    "advice": "advise",
    "note": "note",
}
DECISIONS = ("confirm_stemi", "activate_cath_lab")
MAX_TEXT_CHARS = 1000
MAX_ETA_S = 24 * 3600


class BadAction(RoomError):
    """A member's action the timeline cannot take (unknown action, text too long, bad ETA)."""

    code = "bad_action"


@dataclass(frozen=True)
class Entry:
    """One timeline entry; ``by`` is a member id or ``"hub"``, ``data`` is JSON-ready."""

    entry_id: str
    case_id: str
    at: float
    kind: Kind
    by: str = "hub"
    text: str = ""
    data: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        """The wire form (docs/rooms.md); the case id is the room's, so it is left out."""
        return {
            "entry_id": self.entry_id,
            "at": self.at,
            "kind": self.kind,
            "by": self.by,
            "text": self.text,
            "data": dict(self.data),
        }


def check_kind(kind: str) -> Kind:
    if kind not in KINDS:
        raise BadAction(f"unknown timeline entry kind {kind!r}; expected one of {', '.join(KINDS)}")
    return kind  # type: ignore[return-value]


def check_text(text: object) -> str:
    """A member's free text: a string of at most ``MAX_TEXT_CHARS`` characters, trimmed."""
    if text is None:
        return ""
    if not isinstance(text, str):
        raise BadAction(f"text must be a string, got {type(text).__name__}")
    text = text.strip()
    if len(text) > MAX_TEXT_CHARS:
        raise BadAction(f"text must be at most {MAX_TEXT_CHARS} characters, got {len(text)}")
    return text


def permission_for(action: object) -> str:
    """The room permission ``action`` needs; ``BadAction`` for an unknown action."""
    if not isinstance(action, str) or action not in ACTION_PERMISSION:
        raise BadAction(
            f"unknown action {action!r}; expected one of {', '.join(ACTION_PERMISSION)}"
        )
    return ACTION_PERMISSION[action]


def action_entry(
    *,
    entry_id: str,
    case_id: str,
    at: float,
    by: str,
    permissions: frozenset[str],
    action: object,
    text: object,
    data: object = None,
) -> Entry:
    """The entry a member's action makes, once its role allows it (``NotAllowed`` otherwise).

    ``confirm_stemi`` and ``activate_cath_lab`` are decisions (``data.decision``); a note that
    carries ``data.eta_s`` (seconds to arrival, the crew's estimate) is an ``eta`` entry."""
    needed = permission_for(action)
    if needed not in permissions:
        raise NotAllowed(f"{by} may not {action}: it needs the {needed} permission")
    body = check_text(text)
    if action in DECISIONS:
        return Entry(entry_id, case_id, at, "decision", by, body, {"decision": action})
    if action == "advice":
        if not body:
            raise BadAction("advice needs a text")
        return Entry(entry_id, case_id, at, "advice", by, body)
    eta = data.get("eta_s") if isinstance(data, dict) else None
    if eta is not None:
        return Entry(entry_id, case_id, at, "eta", by, body, {"eta_s": check_eta(eta)})
    if not body:
        raise BadAction("a note needs a text (or data.eta_s for an ETA)")
    return Entry(entry_id, case_id, at, "note", by, body)


def check_eta(eta_s: object) -> float:
    """Seconds to arrival: a finite number in [0, ``MAX_ETA_S``]."""
    if isinstance(eta_s, bool) or not isinstance(eta_s, int | float) or not math.isfinite(eta_s):
        raise BadAction(f"eta_s must be a number of seconds, got {eta_s!r}")
    if not 0 <= eta_s <= MAX_ETA_S:
        raise BadAction(f"eta_s must be 0-{MAX_ETA_S} s, got {eta_s}")
    return float(eta_s)
