"""Alarms of the hub (DESIGN §3.4): the model, the pure ``AlarmLedger`` state machine, its
``AlarmPolicy`` and the durable ``AlarmStore``. Delivery and hub wiring sit on top of these."""

from __future__ import annotations

from ambulink.hub.alarms.ledger import (
    AlarmLedger,
    Annunciate,
    Effect,
    Escalate,
    Publish,
    Redeliver,
)
from ambulink.hub.alarms.model import (
    Alarm,
    AlarmAck,
    AlarmForbidden,
    AlarmKind,
    AlarmRejected,
    Audience,
    Phase,
    Priority,
    Receipt,
    Role,
    UnknownAlarm,
)
from ambulink.hub.alarms.policy import AlarmPolicy
from ambulink.hub.alarms.store import AlarmStore

__all__ = [
    "Alarm",
    "AlarmAck",
    "AlarmForbidden",
    "AlarmKind",
    "AlarmLedger",
    "AlarmPolicy",
    "AlarmRejected",
    "AlarmStore",
    "Annunciate",
    "Audience",
    "Effect",
    "Escalate",
    "Phase",
    "Priority",
    "Publish",
    "Receipt",
    "Redeliver",
    "Role",
    "UnknownAlarm",
]
