"""A virtual clock for the ledger and small helpers shared by the alarm tests."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

from ambulink.hub.alarms.ledger import (
    AlarmLedger,
    Annunciate,
    Effect,
    Escalate,
    Publish,
    Redeliver,
)
from ambulink.hub.alarms.policy import AlarmPolicy

WALL_T0 = 1_700_000_000.0  # wall time of the (made-up) stream start


def sequential_ids() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"alarm{next(counter):04d}"


def new_ledger(policy: AlarmPolicy | None = None) -> AlarmLedger:
    return AlarmLedger(policy, new_id=sequential_ids())


def run_clock(
    ledger: AlarmLedger, start_s: float, end_s: float, step_s: float = 0.1
) -> list[tuple[float, Effect]]:
    """Tick the ledger from ``start_s`` to ``end_s`` (inclusive) every ``step_s``; returns the
    effects with the virtual time they came at."""
    seen: list[tuple[float, Effect]] = []
    n = round((end_s - start_s) / step_s)
    for i in range(n + 1):
        now = round(start_s + i * step_s, 6)
        seen.extend((now, effect) for effect in ledger.tick(now=now))
    return seen


def times_of(
    seen: Sequence[tuple[float, Effect]], kind: type[Publish | Redeliver | Escalate | Annunciate]
) -> list[float]:
    return [t for t, e in seen if isinstance(e, kind)]
