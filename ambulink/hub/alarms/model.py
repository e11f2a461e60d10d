"""The alarm model (DESIGN §3.4, after IHE PCD ACM): kinds, priorities, phases and ``Alarm``.

An ``Alarm`` is an immutable snapshot of one alarm's state. Its ``counter`` starts at 1 and goes
up by one on every change of the *shared* state that members see: onset data or evidence, phase,
acknowledgements, audio pause, escalation level. Clients keep, per ``alarm_id``, the state with
the highest counter, so (alarm_id, counter) makes every delivery idempotent: a redelivery or a
reconnect shows no duplicate banner. ``receipts`` are per-member delivery bookkeeping (which
screens displayed the alarm) and do not bump the counter.

Times: ``onset_at`` is wall-clock seconds (the true onset in stream time, also for a ``delayed``
alarm raised from backfilled data); ``raised_at``, ``AlarmAck.at``, ``Receipt.at`` and
``audio_paused_until`` are seconds on the ledger's clock (the ``now`` passed to
``AlarmLedger``).

Errors (each sets ``code``)::

    AmbulinkError
    ├── UnknownAlarm     no alarm with that id                      "unknown_alarm"
    ├── AlarmRejected    malformed input (unknown role, bad seconds) "alarm_rejected"
    └── AlarmForbidden   the member's role may not do that          "alarm_forbidden"
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, cast

from ambulink.errors import AmbulinkError

Role = Literal["crew", "specialist", "observer", "dispatch"]
ROLES: tuple[Role, ...] = ("crew", "specialist", "observer", "dispatch")
CLINICIAN_ROLES: frozenset[Role] = frozenset({"crew", "specialist"})  # their receipt counts
ACK_ROLES: frozenset[Role] = frozenset({"crew", "specialist", "dispatch"})  # may ack and pause

Audience = Literal["all", "crew_and_dispatch"]


class UnknownAlarm(AmbulinkError, LookupError):
    code = "unknown_alarm"


class AlarmRejected(AmbulinkError, ValueError):
    code = "alarm_rejected"


class AlarmForbidden(AmbulinkError):
    code = "alarm_forbidden"


class Priority(enum.Enum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        """0 for HIGH, 1 for MEDIUM, 2 for LOW: sorts the most urgent first."""
        return _RANK[self]


_RANK = {Priority.HIGH: 0, Priority.MEDIUM: 1, Priority.LOW: 2}


class Phase(enum.Enum):
    ACTIVE = "active"
    CLEARED = "cleared"


class AlarmKind(enum.Enum):
    """Every alarm the hub raises; ``value`` is the name on the wire and in configuration."""

    ASYSTOLE = "asystole"
    VF = "vf"
    VT = "vt"
    STEMI = "stemi"
    BRADY = "brady"
    TACHY = "tachy"
    PAUSE = "pause"
    AF = "af"
    LEAD_OFF = "lead_off"
    NO_SIGNAL = "no_signal"
    LINK_DEGRADED = "link_degraded"
    NOT_DELIVERED = "not_delivered"
    ALARM_SYSTEM_FAILURE = "alarm_system_failure"

    @property
    def default_priority(self) -> Priority:
        return DEFAULT_PRIORITY[self]

    @property
    def fixed(self) -> bool:
        """True for asystole, VF and VT: their HIGH priority cannot be configured away."""
        return self in FIXED_HIGH

    @property
    def technical(self) -> bool:
        """True for alarms about the equipment or the link rather than the patient."""
        return self in TECHNICAL

    @classmethod
    def for_rhythm(cls, label: str) -> AlarmKind:
        """The alarm kind of an analysis rhythm label (``EpisodeStart.label``: "VF", "AF" ...)."""
        try:
            return cls(label.lower())
        except ValueError:
            raise AlarmRejected(
                f"rhythm label must be one of AF, VT, VF, ASYSTOLE, PAUSE, BRADY, TACHY, "
                f"got {label!r}"
            ) from None


FIXED_HIGH = frozenset({AlarmKind.ASYSTOLE, AlarmKind.VF, AlarmKind.VT})
TECHNICAL = frozenset(
    {
        AlarmKind.LEAD_OFF,
        AlarmKind.NO_SIGNAL,
        AlarmKind.LINK_DEGRADED,
        AlarmKind.NOT_DELIVERED,
        AlarmKind.ALARM_SYSTEM_FAILURE,
    }
)
DEFAULT_PRIORITY: Mapping[AlarmKind, Priority] = {
    **{kind: Priority.HIGH for kind in FIXED_HIGH},
    **{
        kind: Priority.MEDIUM
        for kind in (
            AlarmKind.STEMI,
            AlarmKind.BRADY,
            AlarmKind.TACHY,
            AlarmKind.PAUSE,
            AlarmKind.AF,
        )
    },
    **{kind: Priority.LOW for kind in TECHNICAL},
}


def audience(kind: AlarmKind) -> Audience:
    """Who an alarm of ``kind`` goes to: "not delivered" to crew and dispatch, the rest to all
    members of the case's room and to dispatch (for a hub-wide alarm, ``case_id`` None: every
    room and dispatch)."""
    return "crew_and_dispatch" if kind is AlarmKind.NOT_DELIVERED else "all"


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise AlarmRejected(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    return role


@dataclass(frozen=True, slots=True)
class AlarmAck:
    """``member_id`` (as ``role``) acknowledged the alarm at ``at`` (ledger s)."""

    member_id: str
    role: Role
    at: float


@dataclass(frozen=True, slots=True)
class Receipt:
    """``member_id``'s screen (as ``role``) displayed the alarm at ``at`` (ledger s)."""

    member_id: str
    role: Role
    at: float


@dataclass(frozen=True, slots=True)
class Alarm:
    """One alarm's state; see the module docstring for ``counter`` and the clocks."""

    alarm_id: str  # uuid4 hex
    case_id: str | None  # None only for a hub-wide "alarm system failure"
    kind: AlarmKind
    priority: Priority
    phase: Phase
    counter: int
    onset_sample: int | None
    onset_at: float  # wall s
    raised_at: float  # ledger s
    delayed: bool = False
    evidence: Mapping[str, object] | None = None
    acks: tuple[AlarmAck, ...] = ()
    receipts: tuple[Receipt, ...] = ()
    audio_paused_until: float | None = None  # ledger s
    audio_paused_by: str | None = None
    escalation_level: int = 0
    technical_for: str | None = None  # for NOT_DELIVERED: the alarm id it is about

    @property
    def acknowledged(self) -> bool:
        return bool(self.acks)

    @property
    def latched(self) -> bool:
        """Cleared but never acknowledged HIGH alarm: it stays until someone acknowledges it."""
        return self.phase is Phase.CLEARED and self.priority is Priority.HIGH and not self.acks

    @property
    def needs_ack(self) -> bool:
        """Unacknowledged and either active or latched: redelivered (and escalated) until acked."""
        return not self.acks and (self.phase is Phase.ACTIVE or self.latched)

    @property
    def finished(self) -> bool:
        """Nothing left to show or do: cleared, and acknowledged unless it was not HIGH."""
        return self.phase is Phase.CLEARED and not self.latched

    @property
    def clinician_received(self) -> bool:
        return any(r.role in CLINICIAN_ROLES for r in self.receipts)

    @property
    def to(self) -> Audience:
        return audience(self.kind)


def alarm_to_json(alarm: Alarm) -> dict[str, object]:
    """``alarm`` as JSON-ready data (the store's row body; the wire message can reuse it)."""
    return {
        "alarm_id": alarm.alarm_id,
        "case_id": alarm.case_id,
        "kind": alarm.kind.value,
        "priority": alarm.priority.value,
        "phase": alarm.phase.value,
        "counter": alarm.counter,
        "onset_sample": alarm.onset_sample,
        "onset_at": alarm.onset_at,
        "raised_at": alarm.raised_at,
        "delayed": alarm.delayed,
        "evidence": None if alarm.evidence is None else dict(alarm.evidence),
        "acks": [[a.member_id, a.role, a.at] for a in alarm.acks],
        "receipts": [[r.member_id, r.role, r.at] for r in alarm.receipts],
        "audio_paused_until": alarm.audio_paused_until,
        "audio_paused_by": alarm.audio_paused_by,
        "escalation_level": alarm.escalation_level,
        "technical_for": alarm.technical_for,
    }


def alarm_from_json(data: Mapping[str, object]) -> Alarm:
    """Inverse of ``alarm_to_json``; raises ``AlarmRejected`` naming what is wrong."""
    try:
        evidence = data["evidence"]
        paused = data["audio_paused_until"]
        onset_sample = data["onset_sample"]
        return Alarm(
            alarm_id=str(data["alarm_id"]),
            case_id=None if data["case_id"] is None else str(data["case_id"]),
            kind=AlarmKind(data["kind"]),
            priority=Priority(data["priority"]),
            phase=Phase(data["phase"]),
            counter=int(cast(int, data["counter"])),
            onset_sample=None if onset_sample is None else int(cast(int, onset_sample)),
            onset_at=float(cast(float, data["onset_at"])),
            raised_at=float(cast(float, data["raised_at"])),
            delayed=bool(data["delayed"]),
            evidence=None if evidence is None else dict(cast(Mapping[str, object], evidence)),
            acks=tuple(
                AlarmAck(str(m), check_role(str(r)), float(t))
                for m, r, t in cast(list[tuple[str, str, float]], data["acks"])
            ),
            receipts=tuple(
                Receipt(str(m), check_role(str(r)), float(t))
                for m, r, t in cast(list[tuple[str, str, float]], data["receipts"])
            ),
            audio_paused_until=None if paused is None else float(cast(float, paused)),
            audio_paused_by=cast(str | None, data["audio_paused_by"]),
            escalation_level=int(cast(int, data["escalation_level"])),
            technical_for=cast(str | None, data["technical_for"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise AlarmRejected(f"stored alarm is malformed: {exc!r}") from exc
