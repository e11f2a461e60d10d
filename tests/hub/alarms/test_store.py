"""AlarmStore: alarms survive close and reopen; a restored ledger redelivers each once."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest

from ambulink.hub.alarms.ledger import AlarmLedger, Effect, Publish, Redeliver
from ambulink.hub.alarms.model import (
    AlarmKind,
    AlarmRejected,
    Phase,
    alarm_from_json,
    alarm_to_json,
)
from ambulink.hub.alarms.store import AlarmStore
from ambulink.hub.store_types import StorageUnavailable
from tests.hub.alarms.helpers import WALL_T0, new_ledger, run_clock, sequential_ids


def save_effects(store: AlarmStore, effects: list[Effect]) -> None:
    store.save_all(effect.alarm for effect in effects)


def busy_ledger(store: AlarmStore) -> tuple[AlarmLedger, dict[str, str]]:
    """A ledger with every kind of state, each effect saved as the hub would."""
    ledger = new_ledger()
    ids: dict[str, str] = {}

    def do(name: str, effects: list[Effect]) -> None:
        save_effects(store, effects)
        if effects:
            ids.setdefault(name, effects[0].alarm.alarm_id)

    do("vf", ledger.raise_alarm("c1", AlarmKind.VF, now=0.0, onset_at=WALL_T0, onset_sample=10))
    do("vt_latched", ledger.raise_alarm("c1", AlarmKind.VT, now=0.0, onset_at=WALL_T0))
    do("vt_latched", ledger.clear("c1", AlarmKind.VT, now=1.0))
    do("af_done", ledger.raise_alarm("c2", AlarmKind.AF, now=0.0, onset_at=WALL_T0))
    do("af_done", ledger.clear("c2", AlarmKind.AF, now=1.0))
    do("asys_acked", ledger.raise_alarm("c2", AlarmKind.ASYSTOLE, now=0.0, onset_at=WALL_T0))
    do("asys_acked", ledger.acknowledge(ids["asys_acked"], "crew1", "crew", now=1.0))
    do("asys_acked", ledger.clear("c2", AlarmKind.ASYSTOLE, now=2.0))
    do(
        "stemi",
        ledger.raise_alarm(
            "c2",
            AlarmKind.STEMI,
            now=0.0,
            onset_at=WALL_T0 + 1.5,
            delayed=True,
            evidence={"territories": ["inferior"], "st_j60_mv": {"II": 0.21}},
        ),
    )
    do("stemi", ledger.pause_audio(ids["stemi"], "spec1", 60, role="specialist", now=1.0))
    for effect in ledger.tick(now=6.0):  # no clinician receipts: NOT_DELIVERED alarms
        save_effects(store, [effect])
    return ledger, ids


def test_round_trip_through_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "hub" / "alarms.sqlite"
    store = AlarmStore.open(path)
    ledger, ids = busy_ledger(store)
    expected = {a.alarm_id: a for a in ledger.snapshot()}
    store.close()
    store.close()  # idempotent

    with AlarmStore.open(path) as reopened:
        unfinished = reopened.load_unfinished()
        assert {a.alarm_id: a for a in unfinished} == expected
        assert ids["vf"] in expected and ids["vt_latched"] in expected and ids["stemi"] in expected
        assert ids["af_done"] not in expected and ids["asys_acked"] not in expected
        assert reopened.load(ids["asys_acked"]) == ledger.get(ids["asys_acked"])
        assert reopened.load("missing") is None
        not_delivered = [a for a in unfinished if a.kind is AlarmKind.NOT_DELIVERED]
        assert {a.technical_for for a in not_delivered} >= {ids["vf"], ids["vt_latched"]}

        # The restarted hub: one Publish per unfinished alarm, to its audience.
        restored = AlarmLedger(new_id=sequential_ids())
        effects = restored.restore(unfinished, now=5000.0)
        assert [type(e) for e in effects] == [Publish] * len(unfinished)
        assert sorted(e.alarm.alarm_id for e in effects) == sorted(expected)
        assert {
            e.alarm.alarm_id: e.to for e in effects if isinstance(e, Publish) and e.to != "all"
        } == {a.alarm_id: "crew_and_dispatch" for a in not_delivered}
        by_id = {e.alarm.alarm_id: e.alarm for e in effects}
        latched = by_id[ids["vt_latched"]]
        assert latched.phase is Phase.CLEARED and latched.needs_ack
        stemi = by_id[ids["stemi"]]
        assert stemi.delayed and stemi.onset_at == WALL_T0 + 1.5
        assert stemi.evidence == {"territories": ["inferior"], "st_j60_mv": {"II": 0.21}}
        # Its audio pause (on the old clock) did not survive: a new counter, sounding again.
        assert stemi.audio_paused_until is None
        assert stemi.counter == expected[ids["stemi"]].counter + 1
        assert {a.alarm_id for a in restored.active()} == set(expected)
        # Timers restarted at the restore; no second NOT_DELIVERED for the same alarms.
        seen = run_clock(restored, 5000.0, 5010.0)
        assert [t for t, e in seen if isinstance(e, Redeliver)][:1] == [5002.0]
        assert not [e for _, e in seen if isinstance(e, Publish)]
        # A second restore of the same states is a no-op.
        assert restored.restore(unfinished, now=5011.0) == []


def test_save_keeps_the_highest_counter(tmp_path: Path) -> None:
    ledger = new_ledger()
    (raised,) = ledger.raise_alarm("c1", AlarmKind.VF, now=0.0, onset_at=WALL_T0)
    (acked,) = ledger.acknowledge(raised.alarm.alarm_id, "crew1", "crew", now=1.0)
    (cleared,) = ledger.clear("c1", AlarmKind.VF, now=2.0)
    with AlarmStore.open(tmp_path / "a.sqlite") as store:
        store.save(cleared.alarm)
        store.save(raised.alarm)  # late and stale: ignored
        store.save(acked.alarm)
        assert store.load(raised.alarm.alarm_id) == cleared.alarm
        assert store.load_unfinished() == []
        received = dataclasses.replace(
            cleared.alarm, receipts=(*cleared.alarm.receipts, *acked.alarm.receipts)
        )
        store.save(received)  # same counter, more receipts: kept
        assert store.load(raised.alarm.alarm_id) == received


def test_store_uses_wal_and_full_sync(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite"
    with AlarmStore.open(path) as store:
        live = store._live()  # synchronous is per connection: ask the store's own
        assert live.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    finally:
        conn.close()


def test_errors_are_clear(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite"
    store = AlarmStore.open(path)
    ledger = new_ledger()
    (raised,) = ledger.raise_alarm(
        "c1", AlarmKind.AF, now=0.0, onset_at=WALL_T0, evidence={"strip": object()}
    )
    with pytest.raises(AlarmRejected, match="evidence must be JSON data"):
        store.save(raised.alarm)
    store.close()
    with pytest.raises(StorageUnavailable, match="is closed"):
        store.load_unfinished()
    newer = tmp_path / "newer.sqlite"
    conn = sqlite3.connect(newer)
    conn.execute("PRAGMA user_version=7")
    conn.close()
    with pytest.raises(StorageUnavailable, match="schema version 7"):
        AlarmStore.open(newer)
    with pytest.raises(StorageUnavailable, match="could not open"):
        AlarmStore.open(tmp_path / "a.sqlite" / "inside-a-file.sqlite")


def test_json_round_trip_and_malformed_rows() -> None:
    ledger = new_ledger()
    (raised,) = ledger.raise_alarm("c1", AlarmKind.VT, now=0.0, onset_at=WALL_T0, onset_sample=7)
    (acked,) = ledger.acknowledge(raised.alarm.alarm_id, "d1", "dispatch", now=1.0)
    assert alarm_from_json(alarm_to_json(acked.alarm)) == acked.alarm
    broken = alarm_to_json(acked.alarm) | {"kind": "hiccup"}
    with pytest.raises(AlarmRejected, match="stored alarm is malformed"):
        alarm_from_json(broken)
