"""AlarmLedger timing and acknowledgement rules, on a virtual clock (no sleeps)."""

from __future__ import annotations

import pytest

from ambulink.hub.alarms.ledger import Annunciate, Escalate, Publish, Redeliver
from ambulink.hub.alarms.model import (
    AlarmAck,
    AlarmForbidden,
    AlarmKind,
    AlarmRejected,
    Phase,
    Priority,
    UnknownAlarm,
)
from ambulink.hub.alarms.policy import AlarmPolicy
from tests.hub.alarms.helpers import WALL_T0, new_ledger, run_clock, times_of


def test_onset_publishes_a_new_high_alarm_to_all() -> None:
    ledger = new_ledger()
    effects = ledger.raise_alarm(
        "case1",
        AlarmKind.VF,
        now=10.0,
        onset_at=WALL_T0 + 3.0,
        onset_sample=1500,
        evidence={"start": 0, "end": 5000, "stream_id": 1},
    )
    assert len(effects) == 1
    match effects[0]:
        case Publish(alarm, to):
            assert to == "all"
            assert (alarm.kind, alarm.priority, alarm.phase) == (
                AlarmKind.VF,
                Priority.HIGH,
                Phase.ACTIVE,
            )
            assert alarm.counter == 1
            assert (alarm.onset_sample, alarm.onset_at, alarm.raised_at) == (1500, WALL_T0 + 3, 10)
            assert alarm.evidence == {"start": 0, "end": 5000, "stream_id": 1}
            assert not alarm.delayed and alarm.needs_ack
        case other:
            pytest.fail(f"expected a Publish, got {other}")
    assert ledger.active("case1") == [effects[0].alarm]
    assert ledger.active("case2") == []


def test_no_clinician_receipt_raises_not_delivered_once_at_5_s() -> None:
    ledger = new_ledger()
    (published,) = ledger.raise_alarm("case1", AlarmKind.VT, now=100.0, onset_at=WALL_T0)
    vt = published.alarm
    ledger.receipt(vt.alarm_id, "disp1", "dispatch", now=100.5)  # not a clinician
    ledger.receipt(vt.alarm_id, "obs1", "observer", now=100.6)  # nor this
    seen = run_clock(ledger, 100.0, 130.0)
    technical = [
        (t, e.alarm)
        for t, e in seen
        if isinstance(e, Publish) and e.alarm.kind is AlarmKind.NOT_DELIVERED
    ]
    assert len(technical) == 1
    at, alarm = technical[0]
    assert at == 105.0
    assert alarm.technical_for == vt.alarm_id
    assert alarm.case_id == "case1" and alarm.priority is Priority.LOW
    assert alarm.to == "crew_and_dispatch"
    assert [e.to for t, e in seen if isinstance(e, Publish)] == ["crew_and_dispatch"]
    # The late clinician receipt clears it, to crew and dispatch.
    (cleared,) = ledger.receipt(vt.alarm_id, "crew1", "crew", now=131.0)
    assert isinstance(cleared, Publish) and cleared.to == "crew_and_dispatch"
    assert cleared.alarm.alarm_id == alarm.alarm_id
    assert cleared.alarm.phase is Phase.CLEARED
    assert ledger.receipt(vt.alarm_id, "crew1", "crew", now=131.5) == []  # idempotent


def test_a_clinician_receipt_in_time_means_no_not_delivered() -> None:
    ledger = new_ledger()
    (published,) = ledger.raise_alarm("case1", AlarmKind.AF, now=0.0, onset_at=WALL_T0)
    assert ledger.receipt(published.alarm.alarm_id, "spec1", "specialist", now=4.9) == []
    seen = run_clock(ledger, 0.0, 60.0)
    assert not [e for _, e in seen if e.alarm.kind is AlarmKind.NOT_DELIVERED]
    assert ledger.get(published.alarm.alarm_id).counter == 1  # receipts do not bump it


def test_redelivery_every_2_s_until_acknowledged_and_none_after() -> None:
    ledger = new_ledger()
    (published,) = ledger.raise_alarm("case1", AlarmKind.ASYSTOLE, now=0.0, onset_at=WALL_T0)
    alarm_id = published.alarm.alarm_id
    ledger.receipt(alarm_id, "crew1", "crew", now=0.2)
    seen = run_clock(ledger, 0.0, 9.0)
    assert times_of(seen, Redeliver) == [2.0, 4.0, 6.0, 8.0]
    assert all(isinstance(e, Redeliver) and (e.alarm.counter, e.to) == (1, "all") for _, e in seen)
    ledger.acknowledge(alarm_id, "crew1", "crew", now=9.0)
    assert run_clock(ledger, 9.0, 200.0) == []


def test_ack_by_one_member_reaches_all_attributed_once() -> None:
    ledger = new_ledger()
    (published,) = ledger.raise_alarm("case1", AlarmKind.VF, now=0.0, onset_at=WALL_T0)
    alarm_id = published.alarm.alarm_id
    effects = ledger.acknowledge(alarm_id, "spec7", "specialist", now=3.5)
    assert len(effects) == 1
    match effects[0]:
        case Publish(alarm, "all"):
            assert alarm.counter == 2
            assert alarm.acks == (AlarmAck("spec7", "specialist", 3.5),)
            assert alarm.clinician_received  # an ack implies the screen showed it
        case other:
            pytest.fail(f"expected a Publish to all, got {other}")
    # A second ack, by anyone, changes nothing: no new counter, no effect.
    assert ledger.acknowledge(alarm_id, "spec7", "specialist", now=4.0) == []
    assert ledger.acknowledge(alarm_id, "crew1", "crew", now=4.1) == []
    assert ledger.get(alarm_id) == effects[0].alarm
    assert ledger.active("case1") == [effects[0].alarm]  # still active, just acknowledged


def test_escalation_after_30_s_for_high_along_the_chain_and_repeated() -> None:
    ledger = new_ledger()
    (published,) = ledger.raise_alarm("case1", AlarmKind.VT, now=0.0, onset_at=WALL_T0)
    ledger.receipt(published.alarm.alarm_id, "crew1", "crew", now=1.0)
    seen = run_clock(ledger, 0.0, 125.0)
    escalations = [(t, e) for t, e in seen if isinstance(e, Escalate)]
    assert [(t, e.level, e.target) for t, e in escalations] == [
        (30.0, 1, "dispatch_supervisor"),
        (60.0, 2, "medical_director"),
        (90.0, 3, "medical_director"),
        (120.0, 4, "medical_director"),
    ]
    assert [e.alarm.escalation_level for _, e in escalations] == [1, 2, 3, 4]
    assert [e.alarm.counter for _, e in escalations] == [2, 3, 4, 5]
    # Redeliveries after an escalation carry the new counter.
    assert {e.alarm.counter for t, e in seen if isinstance(e, Redeliver) and t > 120} == {5}
    ledger.acknowledge(published.alarm.alarm_id, "disp1", "dispatch", now=125.0)
    assert run_clock(ledger, 125.0, 400.0) == []


def test_escalation_after_120_s_for_medium_and_never_for_low() -> None:
    ledger = new_ledger()
    (stemi,) = ledger.raise_alarm("case1", AlarmKind.STEMI, now=0.0, onset_at=WALL_T0)
    (lead_off,) = ledger.raise_alarm("case1", AlarmKind.LEAD_OFF, now=0.0, onset_at=WALL_T0)
    for published in (stemi, lead_off):
        ledger.receipt(published.alarm.alarm_id, "crew1", "crew", now=0.5)
    seen = run_clock(ledger, 0.0, 250.0, step_s=0.5)
    escalations = [(t, e.alarm.kind, e.level, e.target) for t, e in seen if isinstance(e, Escalate)]
    assert escalations == [
        (120.0, AlarmKind.STEMI, 1, "dispatch_supervisor"),
        (240.0, AlarmKind.STEMI, 2, "medical_director"),
    ]


def test_a_late_tick_catches_up_on_escalation_steps_but_redelivers_once() -> None:
    ledger = new_ledger()
    (published,) = ledger.raise_alarm("case1", AlarmKind.VF, now=0.0, onset_at=WALL_T0)
    ledger.receipt(published.alarm.alarm_id, "crew1", "crew", now=0.1)
    effects = ledger.tick(now=65.0)
    assert [(type(e).__name__, e.alarm.counter) for e in effects] == [
        ("Escalate", 2),
        ("Escalate", 3),
        ("Redeliver", 3),
    ]


def test_audio_pause_is_clamped_to_120_s_then_re_annunciates() -> None:
    ledger = new_ledger()
    (published,) = ledger.raise_alarm("case1", AlarmKind.VF, now=0.0, onset_at=WALL_T0)
    alarm_id = published.alarm.alarm_id
    ledger.receipt(alarm_id, "crew1", "crew", now=0.1)
    (paused,) = ledger.pause_audio(alarm_id, "crew1", 300.0, role="crew", now=10.0)
    assert isinstance(paused, Publish) and paused.to == "all"  # a pause by one pauses all
    assert paused.alarm.audio_paused_until == 130.0
    assert paused.alarm.audio_paused_by == "crew1"
    assert paused.alarm.counter == 2
    seen = run_clock(ledger, 10.0, 135.0)
    annunciations = [(t, e) for t, e in seen if isinstance(e, Annunciate)]
    assert [t for t, _ in annunciations] == [130.0]
    again = annunciations[0][1].alarm
    assert again.audio_paused_until is None and again.to == "all"
    assert again.counter == ledger.get(alarm_id).counter
    assert 130.0 not in times_of(seen, Redeliver)  # the annunciation was the delivery
    assert 132.0 in times_of(seen, Redeliver)


def test_a_pause_shorter_than_the_limit_is_kept() -> None:
    ledger = new_ledger()
    (published,) = ledger.raise_alarm("case1", AlarmKind.AF, now=0.0, onset_at=WALL_T0)
    (paused,) = ledger.pause_audio(published.alarm.alarm_id, "d", 30, role="dispatch", now=1.0)
    assert paused.alarm.audio_paused_until == 31.0
    assert times_of(run_clock(ledger, 1.0, 40.0), Annunciate) == [31.0]


def test_acknowledged_alarm_drops_its_pause_and_is_never_re_annunciated() -> None:
    ledger = new_ledger()
    (published,) = ledger.raise_alarm("case1", AlarmKind.VT, now=0.0, onset_at=WALL_T0)
    alarm_id = published.alarm.alarm_id
    ledger.pause_audio(alarm_id, "crew1", 60.0, role="crew", now=1.0)
    (acked,) = ledger.acknowledge(alarm_id, "crew1", "crew", now=2.0)
    assert acked.alarm.audio_paused_until is None
    assert ledger.pause_audio(alarm_id, "crew1", 60.0, role="crew", now=3.0) == []
    assert run_clock(ledger, 2.0, 200.0) == []


def test_update_only_when_something_changed_and_re_onset_is_a_new_alarm() -> None:
    ledger = new_ledger()
    (first,) = ledger.raise_alarm("c", AlarmKind.AF, now=0.0, onset_at=WALL_T0 + 10)
    assert ledger.raise_alarm("c", AlarmKind.AF, now=1.0, onset_at=WALL_T0 + 10) == []
    assert ledger.raise_alarm("c", AlarmKind.AF, now=1.0, onset_at=WALL_T0 + 12) == []
    (earlier,) = ledger.raise_alarm(
        "c", AlarmKind.AF, now=2.0, onset_at=WALL_T0 + 4, onset_sample=2000
    )
    assert earlier.alarm.alarm_id == first.alarm.alarm_id
    assert (earlier.alarm.counter, earlier.alarm.onset_at) == (2, WALL_T0 + 4)
    (evidence,) = ledger.raise_alarm(
        "c", AlarmKind.AF, now=3, onset_at=WALL_T0 + 4, evidence={"a": 1}
    )
    assert evidence.alarm.counter == 3
    (cleared,) = ledger.clear("c", AlarmKind.AF, now=4.0)
    assert cleared.alarm.phase is Phase.CLEARED and cleared.alarm.counter == 4
    assert ledger.clear("c", AlarmKind.AF, now=4.5) == []  # a duplicate clear
    assert ledger.active("c") == []  # a cleared MEDIUM alarm is finished
    (again,) = ledger.raise_alarm("c", AlarmKind.AF, now=5.0, onset_at=WALL_T0 + 20)
    assert again.alarm.alarm_id != first.alarm.alarm_id and again.alarm.counter == 1


def test_cleared_unacknowledged_high_alarm_is_latched_until_acked() -> None:
    ledger = new_ledger()
    (published,) = ledger.raise_alarm("c", AlarmKind.VF, now=0.0, onset_at=WALL_T0)
    alarm_id = published.alarm.alarm_id
    ledger.receipt(alarm_id, "crew1", "crew", now=0.1)
    (cleared,) = ledger.clear("c", AlarmKind.VF, now=1.0)
    assert cleared.alarm.phase is Phase.CLEARED and cleared.alarm.latched
    assert [a.alarm_id for a in ledger.active("c")] == [alarm_id]
    seen = run_clock(ledger, 1.0, 31.0)
    assert times_of(seen, Redeliver)[:2] == [3.0, 5.0]
    assert times_of(seen, Escalate) == [30.0]
    (acked,) = ledger.acknowledge(alarm_id, "crew1", "crew", now=31.0)
    assert acked.alarm.finished
    assert ledger.active("c") == [] and ledger.snapshot() == []
    assert ledger.get(alarm_id) == acked.alarm  # still known, for audit and late acks
    assert run_clock(ledger, 31.0, 100.0) == []


def test_bad_input_raises_clear_errors_and_leaves_the_state_alone() -> None:
    ledger = new_ledger()
    (published,) = ledger.raise_alarm("c", AlarmKind.VT, now=0.0, onset_at=WALL_T0)
    alarm_id = published.alarm.alarm_id
    with pytest.raises(UnknownAlarm, match="no alarm 'nope'") as unknown:
        ledger.acknowledge("nope", "crew1", "crew", now=1.0)
    assert unknown.value.code == "unknown_alarm"
    with pytest.raises(AlarmForbidden, match="member obs1 is observer"):
        ledger.acknowledge(alarm_id, "obs1", "observer", now=1.0)
    with pytest.raises(AlarmForbidden):
        ledger.pause_audio(alarm_id, "obs1", 10.0, role="observer", now=1.0)
    with pytest.raises(AlarmRejected, match="role must be one of"):
        ledger.receipt(alarm_id, "x", "nurse", now=1.0)  # type: ignore[arg-type]
    with pytest.raises(AlarmRejected, match="positive number"):
        ledger.pause_audio(alarm_id, "crew1", 0.0, role="crew", now=1.0)
    with pytest.raises(AlarmRejected, match="raised by the ledger"):
        ledger.raise_alarm("c", AlarmKind.NOT_DELIVERED, now=1.0, onset_at=WALL_T0)
    with pytest.raises(AlarmRejected, match="needs a case_id"):
        ledger.raise_alarm(None, AlarmKind.VF, now=1.0, onset_at=WALL_T0)
    assert ledger.get(alarm_id) == published.alarm


def test_alarm_system_failure_is_a_technical_alarm_hub_wide_or_per_case() -> None:
    ledger = new_ledger()
    ledger.raise_alarm("c", AlarmKind.VF, now=0.0, onset_at=WALL_T0)
    (hub_wide,) = ledger.alarm_system_failure(
        None, now=1.0, reason="alarm worker died", onset_at=WALL_T0 + 1
    )
    assert isinstance(hub_wide, Publish) and hub_wide.to == "all"
    alarm = hub_wide.alarm
    assert (alarm.kind, alarm.priority, alarm.case_id) == (
        AlarmKind.ALARM_SYSTEM_FAILURE,
        Priority.LOW,
        None,
    )
    assert alarm.evidence == {"reason": "alarm worker died"}
    assert [a.kind for a in ledger.active("c")] == [AlarmKind.VF, AlarmKind.ALARM_SYSTEM_FAILURE]
    assert (
        ledger.alarm_system_failure(None, now=2, reason="alarm worker died", onset_at=WALL_T0 + 5)
        == []
    )
    # It has no receipt check of its own: only the VF gets a NOT_DELIVERED.
    seen = run_clock(ledger, 1.0, 10.0)
    technical = [
        e.alarm
        for _, e in seen
        if isinstance(e, Publish) and e.alarm.kind is AlarmKind.NOT_DELIVERED
    ]
    assert len(technical) == 1 and technical[0].technical_for == ledger.active("c")[0].alarm_id


def test_delayed_alarm_keeps_its_true_onset() -> None:
    ledger = new_ledger()
    (published,) = ledger.raise_alarm(
        "c", AlarmKind.VF, now=500.0, onset_at=WALL_T0 + 12.0, onset_sample=6000, delayed=True
    )
    assert published.alarm.delayed
    assert (published.alarm.onset_at, published.alarm.onset_sample) == (WALL_T0 + 12.0, 6000)


def test_rhythm_labels_map_to_kinds() -> None:
    assert AlarmKind.for_rhythm("VF") is AlarmKind.VF
    assert AlarmKind.for_rhythm("ASYSTOLE") is AlarmKind.ASYSTOLE
    with pytest.raises(AlarmRejected, match="got 'SINUS'"):
        AlarmKind.for_rhythm("SINUS")


def test_a_custom_policy_changes_the_timers() -> None:
    policy = AlarmPolicy.from_mapping(
        {"receipt_timeout_s": 1, "redeliver_every_s": 0.5, "escalation_chain": ["sup"]}
    )
    ledger = new_ledger(policy)
    ledger.raise_alarm("c", AlarmKind.VT, now=0.0, onset_at=WALL_T0)
    seen = run_clock(ledger, 0.0, 2.0)
    vt = [(t, type(e).__name__) for t, e in seen if e.alarm.kind is AlarmKind.VT]
    assert vt == [(0.5, "Redeliver"), (1.0, "Redeliver"), (1.5, "Redeliver"), (2.0, "Redeliver")]
    assert next(t for t, e in seen if e.alarm.kind is AlarmKind.NOT_DELIVERED) == 1.0
