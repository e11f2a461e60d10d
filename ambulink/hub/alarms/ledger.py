"""The alarm state machine: raise, clear, receipts, acknowledgement, audio pause, timers.

``AlarmLedger`` is pure (STYLE §4): no asyncio, no clock, no I/O. Every method takes ``now``
(seconds on one forward-moving clock, e.g. ``time.monotonic()``) and returns the effects the
caller must carry out, dispatched with ``match``::

    for effect in ledger.tick(now=clock()):
        match effect:
            case Publish(alarm, to) | Redeliver(alarm, to) | Annunciate(alarm, to):
                store.save(alarm); fan_out(alarm, to)   # Annunciate: also sound it again
            case Escalate(alarm, level, target):
                store.save(alarm); notify(target, alarm, level)

Rules (DESIGN §3.4, policy in ``AlarmPolicy``):

- One ACTIVE alarm per (case, kind): raising it again updates it (counter + 1, ``Publish``) only
  if something changed (earlier onset, new evidence); after it cleared, an onset is a new alarm.
- An alarm *needs an ack* while it is unacknowledged and ACTIVE, or cleared but HIGH: a HIGH
  alarm is never lost without an ack. Such a *latched* alarm stays in ``active()``, keeps being
  redelivered and escalated, and keeps its audio, until someone acknowledges it.
- ``tick`` redelivers every alarm that needs an ack ``redeliver_every_s`` after its last
  delivery; raises one technical NOT_DELIVERED alarm (to crew and dispatch) for an alarm with no
  clinician receipt ``receipt_timeout_s`` after it was raised, and clears it when the receipt
  comes; escalates unacknowledged HIGH/MEDIUM alarms one step along the chain every
  ``escalate_after_s``; re-annunciates an alarm whose audio pause ended.
- The first acknowledgement (crew, specialist or dispatch; observers may not) is recorded with
  who and when, goes to everyone, and stops redelivery, escalation and audio. Later acks of the
  same alarm change nothing and return no effect (the caller audits them).
- Audio pause is shared: a pause by one member pauses the alarm for all, for at most
  ``audio_pause_max_s`` (longer requests are *clamped*, not refused: a shorter pause is the safe
  side and the clinician's request is not lost); when it ends the alarm sounds again.
- Every ``Publish`` or ``Annunciate`` of an alarm counts as a delivery: the next redelivery is
  ``redeliver_every_s`` after it. Receipts are recorded without a counter bump and without an
  effect; an acknowledgement also counts as that member's receipt.
- NOT_DELIVERED and ALARM_SYSTEM_FAILURE alarms have no receipt check of their own (no alarm
  about an alarm about an alarm).
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from ambulink.hub.alarms.model import (
    ACK_ROLES,
    Alarm,
    AlarmAck,
    AlarmForbidden,
    AlarmKind,
    AlarmRejected,
    Audience,
    Phase,
    Receipt,
    Role,
    UnknownAlarm,
    check_role,
)
from ambulink.hub.alarms.policy import AlarmPolicy

_EPS_S = 1e-9  # float slack on deadlines, so 0.1-step virtual clocks hit them exactly
_NO_RECEIPT_CHECK = frozenset({AlarmKind.NOT_DELIVERED, AlarmKind.ALARM_SYSTEM_FAILURE})

_Key = tuple[str | None, AlarmKind, str | None]  # (case_id, kind, technical_for)


@dataclass(frozen=True, slots=True)
class Publish:
    """Deliver ``alarm`` (a new state) to ``to``."""

    alarm: Alarm
    to: Audience


@dataclass(frozen=True, slots=True)
class Redeliver:
    """Deliver ``alarm`` (unchanged since the last delivery) to ``to`` again: not acked yet."""

    alarm: Alarm
    to: Audience


@dataclass(frozen=True, slots=True)
class Escalate:
    """Notify ``target`` (a name from the escalation chain): no ack after ``level`` periods."""

    alarm: Alarm
    level: int
    target: str


@dataclass(frozen=True, slots=True)
class Annunciate:
    """The audio pause of ``alarm`` ended: deliver it to ``to`` and sound it again."""

    alarm: Alarm
    to: Audience


Effect = Publish | Redeliver | Escalate | Annunciate


@dataclass
class _Timers:
    """Deadlines of one unfinished alarm (ledger s); None: that rule no longer applies."""

    delivered_at: float
    receipt_due_at: float | None
    escalate_at: float | None


def _new_id() -> str:
    return uuid.uuid4().hex


class AlarmLedger:
    """Every alarm of the hub and what is due for it; see the module docstring."""

    def __init__(
        self, policy: AlarmPolicy | None = None, *, new_id: Callable[[], str] = _new_id
    ) -> None:
        self.policy = policy or AlarmPolicy()
        self._new_id = new_id
        self._alarms: dict[str, Alarm] = {}  # every alarm seen, finished ones too
        self._current: dict[_Key, str] = {}  # the ACTIVE alarm of each key
        self._timers: dict[str, _Timers] = {}  # unfinished alarms only
        self._not_delivered_for: dict[str, str] = {}  # alarm id -> its NOT_DELIVERED alarm id

    # ---- queries ------------------------------------------------------------------------------

    def get(self, alarm_id: str) -> Alarm:
        """The current state of ``alarm_id`` (finished alarms too); ``UnknownAlarm`` if none."""
        try:
            return self._alarms[alarm_id]
        except KeyError:
            raise UnknownAlarm(f"no alarm {alarm_id!r} on this hub") from None

    def current(self, case_id: str | None, kind: AlarmKind) -> Alarm | None:
        """The ACTIVE alarm of ``kind`` for ``case_id``, if its condition still holds."""
        alarm_id = self._current.get((case_id, kind, None))
        return None if alarm_id is None else self._alarms[alarm_id]

    def active(self, case_id: str | None = None) -> list[Alarm]:
        """Unfinished alarms (ACTIVE, or latched HIGH), most urgent first, each once with its
        newest counter: what a (re)connecting client must show. With ``case_id``: that case's
        alarms and the hub-wide ones (``case_id`` None)."""
        alarms = (self._alarms[i] for i in self._timers)
        if case_id is not None:
            alarms = (a for a in alarms if a.case_id in (case_id, None))
        return sorted(alarms, key=lambda a: (a.priority.rank, a.raised_at, a.alarm_id))

    def snapshot(self) -> list[Alarm]:
        """Every unfinished alarm, for ``AlarmStore`` or another ledger's ``restore``."""
        return self.active()

    # ---- events from analysis and the hub ------------------------------------------------------

    def raise_alarm(
        self,
        case_id: str | None,
        kind: AlarmKind,
        *,
        now: float,
        onset_at: float,
        onset_sample: int | None = None,
        delayed: bool = False,
        evidence: Mapping[str, object] | None = None,
    ) -> list[Effect]:
        """An alarm condition of ``case_id`` began at ``onset_at`` (wall s, the true onset; for
        ``delayed`` alarms raised from backfilled data it lies in the past)."""
        if kind is AlarmKind.NOT_DELIVERED:
            raise AlarmRejected("not_delivered alarms are raised by the ledger itself")
        if case_id is None and kind is not AlarmKind.ALARM_SYSTEM_FAILURE:
            raise AlarmRejected(f"a {kind.value} alarm needs a case_id")
        if not math.isfinite(onset_at):
            raise AlarmRejected(f"onset_at must be a finite wall time (s), got {onset_at!r}")
        key: _Key = (case_id, kind, None)
        current_id = self._current.get(key)
        if current_id is not None:
            return self._update(self._alarms[current_id], now, onset_at, onset_sample, evidence)
        alarm = Alarm(
            alarm_id=self._new_id(),
            case_id=case_id,
            kind=kind,
            priority=self.policy.priority_of(kind),
            phase=Phase.ACTIVE,
            counter=1,
            onset_sample=onset_sample,
            onset_at=onset_at,
            raised_at=now,
            delayed=delayed,
            evidence=None if evidence is None else dict(evidence),
        )
        return [self._start(alarm, now)]

    def clear(self, case_id: str | None, kind: AlarmKind, *, now: float) -> list[Effect]:
        """The condition ended. No ACTIVE alarm of that (case, kind): nothing happens."""
        alarm_id = self._current.pop((case_id, kind, None), None)
        if alarm_id is None:
            return []
        return [self._clear(self._alarms[alarm_id], now)]

    def alarm_system_failure(
        self, case_id: str | None, *, now: float, reason: str, onset_at: float
    ) -> list[Effect]:
        """The analysis or alarm worker of ``case_id`` (None: of the whole hub) failed."""
        return self.raise_alarm(
            case_id,
            AlarmKind.ALARM_SYSTEM_FAILURE,
            now=now,
            onset_at=onset_at,
            evidence={"reason": reason},
        )

    # ---- from members ----------------------------------------------------------------------

    def receipt(self, alarm_id: str, member_id: str, role: Role, *, now: float) -> list[Effect]:
        """``member_id``'s screen displayed ``alarm_id``. Idempotent per member. The first
        clinician receipt ends the receipt check and clears its NOT_DELIVERED alarm, if any."""
        alarm = self.get(alarm_id)
        role = check_role(role)
        if any(r.member_id == member_id for r in alarm.receipts):
            return []
        # Receipts are delivery bookkeeping: recorded without a counter bump (model docstring).
        seen = Receipt(member_id, role, now)
        alarm = dataclasses.replace(alarm, receipts=(*alarm.receipts, seen))
        self._alarms[alarm_id] = alarm
        if not alarm.clinician_received:
            return []
        timers = self._timers.get(alarm_id)
        if timers is not None:
            timers.receipt_due_at = None
        technical_id = self._not_delivered_for.get(alarm_id)
        if technical_id is None:
            return []
        technical = self._alarms[technical_id]
        key: _Key = (technical.case_id, technical.kind, technical.technical_for)
        if self._current.get(key) != technical_id:
            return []
        del self._current[key]
        return [self._clear(technical, now)]

    def acknowledge(self, alarm_id: str, member_id: str, role: Role, *, now: float) -> list[Effect]:
        """``member_id`` acknowledged ``alarm_id``: one ``Publish`` to all with the ack
        attributed. Raises ``UnknownAlarm``, ``AlarmRejected`` (no such role) or
        ``AlarmForbidden`` (an observer); an alarm already acknowledged is left as it is."""
        alarm = self.get(alarm_id)
        role = check_role(role)
        if role not in ACK_ROLES:
            raise AlarmForbidden(
                f"member {member_id} is {role}; only {', '.join(sorted(ACK_ROLES))} "
                f"may acknowledge alarm {alarm_id}"
            )
        if alarm.acks:
            return []
        receipts = alarm.receipts
        if not any(r.member_id == member_id for r in receipts):
            receipts = (*receipts, Receipt(member_id, role, now))  # an ack implies display
        alarm = self._bump(
            dataclasses.replace(
                alarm,
                acks=(AlarmAck(member_id, role, now),),
                receipts=receipts,
                audio_paused_until=None,
                audio_paused_by=None,
            )
        )
        timers = self._timers.get(alarm_id)
        if timers is not None:
            timers.escalate_at = None
            timers.delivered_at = now
            if alarm.clinician_received:
                timers.receipt_due_at = None
        return [Publish(alarm, alarm.to)]

    def pause_audio(
        self, alarm_id: str, member_id: str, seconds: float, *, role: Role, now: float
    ) -> list[Effect]:
        """Pause the audio of ``alarm_id`` for everyone for ``seconds``, clamped to
        ``policy.audio_pause_max_s``; ``tick`` re-annunciates it when the pause ends. An alarm
        that does not sound (acknowledged, or cleared and not HIGH) is left as it is."""
        alarm = self.get(alarm_id)
        role = check_role(role)
        if role not in ACK_ROLES:
            raise AlarmForbidden(
                f"member {member_id} is {role}; only {', '.join(sorted(ACK_ROLES))} "
                f"may pause the audio of alarm {alarm_id}"
            )
        if isinstance(seconds, bool) or not math.isfinite(seconds) or seconds <= 0:
            raise AlarmRejected(f"audio pause must be a positive number of s, got {seconds!r}")
        if not alarm.needs_ack:
            return []
        until = now + min(float(seconds), self.policy.audio_pause_max_s)
        if alarm.audio_paused_until == until and alarm.audio_paused_by == member_id:
            return []
        alarm = self._bump(
            dataclasses.replace(alarm, audio_paused_until=until, audio_paused_by=member_id)
        )
        self._delivered(alarm.alarm_id, now)
        return [Publish(alarm, alarm.to)]

    # ---- time ---------------------------------------------------------------------------------

    def tick(self, *, now: float) -> list[Effect]:
        """Everything due at ``now``: not-delivered alarms, escalations, re-annunciations and
        redeliveries, in the order of the alarms' ``raised_at``. Call it often (e.g. every
        100 ms); a late tick catches up on escalation steps but redelivers only once."""
        effects: list[Effect] = []
        due = sorted(self._timers, key=lambda i: (self._alarms[i].raised_at, i))
        for alarm_id in due:
            timers = self._timers.get(alarm_id)
            if timers is None:
                continue
            effects.extend(self._due(self._alarms[alarm_id], timers, now))
        return effects

    def _due(self, alarm: Alarm, timers: _Timers, now: float) -> list[Effect]:
        effects: list[Effect] = []
        if timers.receipt_due_at is not None and now + _EPS_S >= timers.receipt_due_at:
            timers.receipt_due_at = None
            if alarm.alarm_id not in self._not_delivered_for:
                effects.append(self._raise_not_delivered(alarm, now))
        period = self.policy.escalation_period_s(alarm.priority)
        while (
            alarm.needs_ack
            and period is not None
            and timers.escalate_at is not None
            and now + _EPS_S >= timers.escalate_at
        ):
            level = alarm.escalation_level + 1
            alarm = self._bump(dataclasses.replace(alarm, escalation_level=level))
            effects.append(Escalate(alarm, level, self.policy.escalation_target(level)))
            timers.escalate_at += period
        paused_until = alarm.audio_paused_until
        if paused_until is not None and now + _EPS_S >= paused_until:
            alarm = self._bump(
                dataclasses.replace(alarm, audio_paused_until=None, audio_paused_by=None)
            )
            effects.append(Annunciate(alarm, alarm.to))
            timers.delivered_at = now
        if alarm.needs_ack and now + _EPS_S >= timers.delivered_at + self.policy.redeliver_every_s:
            effects.append(Redeliver(alarm, alarm.to))
            timers.delivered_at = now
        return effects

    # ---- durability ----------------------------------------------------------------------------

    def restore(self, alarms: Iterable[Alarm], *, now: float) -> list[Effect]:
        """Take back alarms saved before a restart (``AlarmStore.load_unfinished()``).

        Returns one ``Publish`` per unfinished alarm, so the hub redelivers each once to every
        member. An alarm the ledger already holds at the same or a higher counter is skipped.
        Timers restart at ``now`` (the old clock's values mean nothing now): the next
        redelivery, escalation step and receipt check (for alarms no clinician displayed yet) are
        counted from ``now``. An audio pause does not survive a restart: the alarm sounds again
        (counter + 1)."""
        taken: list[Alarm] = []
        for alarm in sorted(alarms, key=lambda a: (a.raised_at, a.alarm_id)):
            known = self._alarms.get(alarm.alarm_id)
            if known is not None and known.counter >= alarm.counter:
                continue
            if alarm.audio_paused_until is not None and alarm.needs_ack:
                alarm = dataclasses.replace(
                    alarm,
                    counter=alarm.counter + 1,
                    audio_paused_until=None,
                    audio_paused_by=None,
                )
            self._alarms[alarm.alarm_id] = alarm
            self._timers.pop(alarm.alarm_id, None)
            if alarm.technical_for is not None:
                self._not_delivered_for[alarm.technical_for] = alarm.alarm_id
            if alarm.phase is Phase.ACTIVE:
                self._current[(alarm.case_id, alarm.kind, alarm.technical_for)] = alarm.alarm_id
            if not alarm.finished:
                taken.append(alarm)
        effects: list[Effect] = []
        for alarm in taken:  # after the loop above: NOT_DELIVERED alarms are all known
            self._timers[alarm.alarm_id] = self._new_timers(alarm, now)
            effects.append(Publish(alarm, alarm.to))
        return effects

    # ---- internals ---------------------------------------------------------------------------

    def _new_timers(self, alarm: Alarm, now: float) -> _Timers:
        check_receipt = (
            alarm.kind not in _NO_RECEIPT_CHECK
            and not alarm.clinician_received
            and alarm.alarm_id not in self._not_delivered_for
        )
        period = self.policy.escalation_period_s(alarm.priority)
        return _Timers(
            delivered_at=now,
            receipt_due_at=now + self.policy.receipt_timeout_s if check_receipt else None,
            escalate_at=now + period if period is not None and alarm.needs_ack else None,
        )

    def _start(self, alarm: Alarm, now: float) -> Publish:
        self._alarms[alarm.alarm_id] = alarm
        self._current[(alarm.case_id, alarm.kind, alarm.technical_for)] = alarm.alarm_id
        self._timers[alarm.alarm_id] = self._new_timers(alarm, now)
        return Publish(alarm, alarm.to)

    def _raise_not_delivered(self, alarm: Alarm, now: float) -> Publish:
        technical = Alarm(
            alarm_id=self._new_id(),
            case_id=alarm.case_id,
            kind=AlarmKind.NOT_DELIVERED,
            priority=self.policy.priority_of(AlarmKind.NOT_DELIVERED),
            phase=Phase.ACTIVE,
            counter=1,
            onset_sample=None,
            onset_at=alarm.onset_at,  # about that alarm's condition, so its onset
            raised_at=now,
            evidence={
                "alarm_id": alarm.alarm_id,
                "kind": alarm.kind.value,
                "receipt_timeout_s": self.policy.receipt_timeout_s,
            },
            technical_for=alarm.alarm_id,
        )
        self._not_delivered_for[alarm.alarm_id] = technical.alarm_id
        return self._start(technical, now)

    def _update(
        self,
        alarm: Alarm,
        now: float,
        onset_at: float,
        onset_sample: int | None,
        evidence: Mapping[str, object] | None,
    ) -> list[Effect]:
        """Raise of an ACTIVE alarm: an earlier onset or new evidence updates it; the rest is
        a duplicate. ``delayed`` keeps its first value: the alarm was announced then."""
        changed = alarm
        if onset_at < alarm.onset_at:
            changed = dataclasses.replace(changed, onset_at=onset_at, onset_sample=onset_sample)
        if evidence is not None and dict(evidence) != alarm.evidence:
            changed = dataclasses.replace(changed, evidence=dict(evidence))
        if changed == alarm:
            return []
        alarm = self._bump(changed)
        self._delivered(alarm.alarm_id, now)
        return [Publish(alarm, alarm.to)]

    def _clear(self, alarm: Alarm, now: float) -> Publish:
        alarm = dataclasses.replace(alarm, phase=Phase.CLEARED)  # counter: _bump below
        if not alarm.latched:  # it no longer sounds, so no pause either
            alarm = dataclasses.replace(alarm, audio_paused_until=None, audio_paused_by=None)
        alarm = self._bump(alarm)
        self._delivered(alarm.alarm_id, now)
        return Publish(alarm, alarm.to)

    def _bump(self, changed: Alarm) -> Alarm:
        """Store ``changed`` (``dataclasses.replace`` of the current state) as the alarm's next
        state, counter + 1."""
        new = dataclasses.replace(changed, counter=self._alarms[changed.alarm_id].counter + 1)
        self._alarms[new.alarm_id] = new
        if new.finished:
            self._timers.pop(new.alarm_id, None)
        return new

    def _delivered(self, alarm_id: str, now: float) -> None:
        timers = self._timers.get(alarm_id)
        if timers is not None:
            timers.delivered_at = now
