"""A Hypothesis state machine over onset, clear, receipt, ack, pause, re-onset, duplicates,
out-of-order messages, time and hub restarts: the ledger's promises hold in every history.

- A HIGH alarm is never lost without an ack: until acknowledged it stays in ``active()``,
  needs an ack, and a tick of ``redeliver_every_s`` or more delivers it again.
- One state per (id, counter), counters never go back: what a client keeps by (id, counter)
  is never ambiguous, and every change gets a new counter.
- Effects carry the current state: the last effect of each alarm in a step is the ledger's.
- Duplicates (raise again, ack again, restore again) produce no effect and no new counter.
- After an ack, no redelivery, escalation or annunciation of that alarm.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ambulink.hub.alarms.ledger import AlarmLedger, Annunciate, Effect, Publish, Redeliver
from ambulink.hub.alarms.model import (
    Alarm,
    AlarmForbidden,
    AlarmKind,
    Phase,
    Priority,
    Role,
    UnknownAlarm,
)
from tests.hub.alarms.helpers import WALL_T0, sequential_ids

CASES = ("c1", "c2")
KINDS = (AlarmKind.VF, AlarmKind.VT, AlarmKind.ASYSTOLE, AlarmKind.AF, AlarmKind.LEAD_OFF)
ACKERS: tuple[tuple[str, Role], ...] = (
    ("crew1", "crew"),
    ("spec1", "specialist"),
    ("d1", "dispatch"),
)
MEMBERS: tuple[tuple[str, Role], ...] = (*ACKERS, ("obs1", "observer"))
Evidence = Mapping[str, object] | None
EVIDENCE: tuple[Evidence, ...] = (None, {"start": 0, "end": 5000}, {"start": 100, "end": 5100})
ONSETS = (0.0, 5.0, 10.0)


def shared_state(alarm: Alarm) -> Alarm:
    """The alarm without receipts: what (id, counter) identifies."""
    return dataclasses.replace(alarm, receipts=())


class AlarmLedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.new_id = sequential_ids()
        self.ledger = AlarmLedger(new_id=self.new_id)
        self.now = 0.0
        self.ids: list[str] = []
        self.seen: dict[tuple[str, int], Alarm] = {}  # one shared state per (id, counter)
        self.last: dict[str, Alarm] = {}  # what members last received, per id
        self.high: set[str] = set()
        self.acked: set[str] = set()
        self.last_raise: dict[tuple[str, AlarmKind], tuple[str, float, Evidence]] = {}

    # ---- bookkeeping --------------------------------------------------------------------------

    def observe(self, effects: list[Effect]) -> list[Effect]:
        acked_before = set(self.acked)
        last_in_step: dict[str, Alarm] = {}
        for effect in effects:
            alarm = effect.alarm
            alarm_id = alarm.alarm_id
            if alarm_id not in self.last:
                self.ids.append(alarm_id)
            previous = self.last.get(alarm_id)
            assert previous is None or alarm.counter >= previous.counter, "counter went back"
            state = shared_state(alarm)
            assert self.seen.setdefault((alarm_id, alarm.counter), state) == state, (
                f"two states of {alarm_id} share counter {alarm.counter}"
            )
            if alarm_id in acked_before:
                assert not isinstance(effect, Redeliver | Annunciate), "acked alarm delivered again"
                assert isinstance(effect, Publish), f"acked alarm escalated: {effect}"
            if alarm.priority is Priority.HIGH:
                self.high.add(alarm_id)
            if alarm.acks:
                assert len(alarm.acks) == 1
                self.acked.add(alarm_id)
            self.last[alarm_id] = state
            last_in_step[alarm_id] = alarm
        for alarm_id, alarm in last_in_step.items():
            assert self.ledger.get(alarm_id) == alarm, "an effect carries a stale state"
        return effects

    def pick(self, index: int) -> str:
        return self.ids[index % len(self.ids)]

    # ---- rules --------------------------------------------------------------------------------

    @rule(
        case=st.sampled_from(CASES),
        kind=st.sampled_from(KINDS),
        onset=st.sampled_from(ONSETS),
        evidence=st.sampled_from(EVIDENCE),
    )
    def onset(self, case: str, kind: AlarmKind, onset: float, evidence: Evidence) -> None:
        was = {a.alarm_id for a in self.ledger.active()}
        effects = self.observe(
            self.ledger.raise_alarm(
                case,
                kind,
                now=self.now,
                onset_at=WALL_T0 + onset,
                evidence=evidence,
            )
        )
        assert len(effects) <= 1
        if effects:
            alarm = effects[0].alarm
            assert alarm.phase is Phase.ACTIVE
            assert (alarm.counter == 1) == (alarm.alarm_id not in was)  # re-onset: a new id
            self.last_raise[(case, kind)] = (alarm.alarm_id, onset, evidence)

    @precondition(lambda self: bool(self.last_raise))
    @rule(data=st.data())
    def duplicate_onset(self, data: st.DataObject) -> None:
        (case, kind), (alarm_id, onset, evidence) = data.draw(
            st.sampled_from(sorted(self.last_raise.items(), key=lambda kv: kv[1][0]))
        )
        before = self.ledger.get(alarm_id)
        effects = self.ledger.raise_alarm(
            case,
            kind,
            now=self.now,
            onset_at=WALL_T0 + onset,
            evidence=evidence,
        )
        if before.phase is Phase.ACTIVE:
            assert effects == [], "a duplicate onset changed the alarm"
            assert self.ledger.get(alarm_id) == before
        else:
            self.observe(effects)  # the episode cleared meanwhile: this is a re-onset

    @rule(case=st.sampled_from(CASES), kind=st.sampled_from(KINDS))
    def clear(self, case: str, kind: AlarmKind) -> None:
        for effect in self.observe(self.ledger.clear(case, kind, now=self.now)):
            assert effect.alarm.phase is Phase.CLEARED

    @precondition(lambda self: bool(self.ids))
    @rule(index=st.integers(0, 1000), member=st.sampled_from(MEMBERS))
    def receipt(self, index: int, member: tuple[str, Role]) -> None:
        self.observe(self.ledger.receipt(self.pick(index), *member, now=self.now))

    @precondition(lambda self: bool(self.ids))
    @rule(index=st.integers(0, 1000), member=st.sampled_from(ACKERS))
    def acknowledge(self, index: int, member: tuple[str, Role]) -> None:
        alarm_id = self.pick(index)  # also old, finished ids: acks out of order
        before = self.ledger.get(alarm_id)
        effects = self.observe(self.ledger.acknowledge(alarm_id, *member, now=self.now))
        if before.acks:
            assert effects == [] and self.ledger.get(alarm_id) == before
        else:
            (effect,) = effects
            assert isinstance(effect, Publish) and effect.to == before.to
            assert effects[0].alarm.counter == before.counter + 1
            assert effects[0].alarm.acks[0].member_id == member[0]

    @precondition(lambda self: bool(self.ids))
    @rule(index=st.integers(0, 1000))
    def bad_acks_change_nothing(self, index: int) -> None:
        alarm_id = self.pick(index)
        before = self.ledger.get(alarm_id)
        with pytest.raises(AlarmForbidden):
            self.ledger.acknowledge(alarm_id, "obs1", "observer", now=self.now)
        with pytest.raises(UnknownAlarm):
            self.ledger.acknowledge("no-such-alarm", "crew1", "crew", now=self.now)
        assert self.ledger.get(alarm_id) == before

    @precondition(lambda self: bool(self.ids))
    @rule(
        index=st.integers(0, 1000),
        member=st.sampled_from(ACKERS),
        seconds=st.sampled_from((1.0, 60.0, 500.0)),
    )
    def pause(self, index: int, member: tuple[str, Role], seconds: float) -> None:
        member_id, role = member
        alarm_id = self.pick(index)
        effects = self.observe(
            self.ledger.pause_audio(alarm_id, member_id, seconds, role=role, now=self.now)
        )
        for effect in effects:
            until = effect.alarm.audio_paused_until
            assert until is not None and until <= self.now + 120.0

    @rule(dt=st.sampled_from((0.0, 0.5, 1.0, 2.0, 5.0, 31.0, 130.0)))
    def tick(self, dt: float) -> None:
        waiting = {a.alarm_id for a in self.ledger.active() if a.needs_ack}
        self.now += dt
        effects = self.observe(self.ledger.tick(now=self.now))
        if dt >= self.ledger.policy.redeliver_every_s:
            delivered = {e.alarm.alarm_id for e in effects if isinstance(e, Redeliver | Annunciate)}
            still = {i for i in waiting if self.ledger.get(i).needs_ack}
            assert still <= delivered, f"not redelivered: {sorted(still - delivered)}"

    @rule()
    def restart(self) -> None:
        """The hub restarts: a new ledger takes the snapshot back, publishing each alarm once."""
        saved = self.ledger.snapshot()
        self.ledger = AlarmLedger(new_id=self.new_id)
        effects = self.observe(self.ledger.restore(saved, now=self.now))
        assert [type(e) for e in effects] == [Publish] * len(saved)
        assert sorted(e.alarm.alarm_id for e in effects) == sorted(a.alarm_id for a in saved)
        kept = {a.alarm_id for a in saved}
        self.ids = [i for i in self.ids if i in kept]  # finished ones: the new hub forgot them
        self.last_raise = {k: v for k, v in self.last_raise.items() if v[0] in kept}

    @rule()
    def duplicate_restore(self) -> None:
        assert self.ledger.restore(self.ledger.snapshot(), now=self.now) == []

    # ---- invariants ---------------------------------------------------------------------------

    @invariant()
    def high_alarm_never_lost_without_ack(self) -> None:
        active = {a.alarm_id: a for a in self.ledger.active()}
        for alarm_id in self.high - self.acked:
            assert alarm_id in active, f"HIGH alarm {alarm_id} dropped without an ack"
            assert active[alarm_id].needs_ack

    @invariant()
    def one_state_per_id_and_members_agree(self) -> None:
        active = self.ledger.active()
        assert len({a.alarm_id for a in active}) == len(active)
        keys = [(a.case_id, a.kind, a.technical_for) for a in active if a.phase is Phase.ACTIVE]
        assert len(set(keys)) == len(keys), "two ACTIVE alarms for one (case, kind)"
        for alarm_id in self.ids:
            assert shared_state(self.ledger.get(alarm_id)) == self.last[alarm_id]


TestAlarmLedgerMachine = AlarmLedgerMachine.TestCase
TestAlarmLedgerMachine.settings = settings(max_examples=300, stateful_step_count=40)
