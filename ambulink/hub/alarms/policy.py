"""Alarm timing and priority configuration (DESIGN §3.4), validated once at the edge.

``AlarmPolicy.from_mapping`` reads the ``alarms`` section of the hub's configuration, e.g.::

    {"receipt_timeout_s": 5, "redeliver_every_s": 2,
     "escalate_after_s": {"high": 30, "medium": 120},
     "escalation_chain": ["dispatch_supervisor", "medical_director"],
     "audio_pause_max_s": 120, "priorities": {"af": "high", "lead_off": "medium"}}

Every key is optional. Asystole, VF and VT are HIGH whatever the configuration says: a mapping
that gives one of them another priority is rejected with a ``ConfigError`` naming the kind, as is
an audio pause longer than 120 s (IEC 60601-1-8's limit for a paused alarm signal).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ambulink.errors import ConfigError
from ambulink.hub.alarms.model import DEFAULT_PRIORITY, FIXED_HIGH, AlarmKind, Priority

AUDIO_PAUSE_LIMIT_S = 120.0

_KEYS = (
    "receipt_timeout_s",
    "redeliver_every_s",
    "escalate_after_s",
    "escalation_chain",
    "audio_pause_max_s",
    "priorities",
)


def _default_escalation() -> Mapping[Priority, float]:
    return MappingProxyType({Priority.HIGH: 30.0, Priority.MEDIUM: 120.0})


def _default_priorities() -> Mapping[AlarmKind, Priority]:
    return MappingProxyType(dict(DEFAULT_PRIORITY))


@dataclass(frozen=True)
class AlarmPolicy:
    """How alarms are timed and ranked. All durations are seconds on the ledger's clock.

    - ``receipt_timeout_s``: no clinician (crew or specialist) receipt within this after an
      alarm is raised → a technical "not delivered" alarm to crew and dispatch.
    - ``redeliver_every_s``: an alarm that needs an acknowledgement is delivered again to every
      member this often until acknowledged.
    - ``escalate_after_s``: per priority (HIGH, MEDIUM), an unacknowledged alarm escalates one
      step along ``escalation_chain`` every this many seconds; past the end of the chain it
      keeps escalating to the last target.
    - ``audio_pause_max_s``: longest audio pause; longer requests are shortened to it.
    - ``priorities``: every kind's priority (defaults: ``model.DEFAULT_PRIORITY``).
    """

    receipt_timeout_s: float = 5.0
    redeliver_every_s: float = 2.0
    escalate_after_s: Mapping[Priority, float] = field(default_factory=_default_escalation)
    escalation_chain: tuple[str, ...] = ("dispatch_supervisor", "medical_director")
    audio_pause_max_s: float = AUDIO_PAUSE_LIMIT_S
    priorities: Mapping[AlarmKind, Priority] = field(default_factory=_default_priorities)

    def __post_init__(self) -> None:
        for name in ("receipt_timeout_s", "redeliver_every_s", "audio_pause_max_s"):
            _check_seconds(name, getattr(self, name))
        if self.audio_pause_max_s > AUDIO_PAUSE_LIMIT_S:
            raise ConfigError(
                f"alarms.audio_pause_max_s must be at most {AUDIO_PAUSE_LIMIT_S:g} s, "
                f"got {self.audio_pause_max_s!r}"
            )
        for priority in (Priority.HIGH, Priority.MEDIUM):
            if priority not in self.escalate_after_s:
                raise ConfigError(f"alarms.escalate_after_s needs a value for {priority.value!r}")
        for priority, seconds in self.escalate_after_s.items():
            _check_seconds(f"escalate_after_s.{priority.value}", seconds)
        if not self.escalation_chain or not all(
            isinstance(t, str) and t for t in self.escalation_chain
        ):
            raise ConfigError(
                "alarms.escalation_chain must be a non-empty list of non-empty target names, "
                f"got {list(self.escalation_chain)!r}"
            )
        for kind in AlarmKind:
            if kind not in self.priorities:
                raise ConfigError(f"alarms.priorities has no priority for {kind.value!r}")
        for kind in FIXED_HIGH:
            if self.priorities[kind] is not Priority.HIGH:
                raise ConfigError(
                    f"alarms.priorities.{kind.value} is {self.priorities[kind].value!r}: "
                    f"{kind.value} is always 'high' and cannot be lowered"
                )

    def priority_of(self, kind: AlarmKind) -> Priority:
        return self.priorities[kind]

    def escalation_period_s(self, priority: Priority) -> float | None:
        """Seconds between escalation steps for ``priority``; None: never escalates (LOW)."""
        return self.escalate_after_s.get(priority)

    def escalation_target(self, level: int) -> str:
        """The chain's target for escalation ``level`` (1-based; the last one repeats)."""
        return self.escalation_chain[min(level, len(self.escalation_chain)) - 1]

    @classmethod
    def from_mapping(cls, config: Mapping[str, object]) -> AlarmPolicy:
        """Build a policy from configuration (see the module docstring); unknown keys, wrong
        types and unsafe values raise ``ConfigError`` naming the key and the value."""
        if not isinstance(config, Mapping):
            raise ConfigError(f"alarms configuration must be a mapping, got {config!r}")
        unknown = sorted(set(config) - set(_KEYS))
        if unknown:
            raise ConfigError(
                f"alarms configuration has unknown keys {unknown}; known: {', '.join(_KEYS)}"
            )
        default = cls()
        return cls(
            receipt_timeout_s=_seconds(config, "receipt_timeout_s", default.receipt_timeout_s),
            redeliver_every_s=_seconds(config, "redeliver_every_s", default.redeliver_every_s),
            escalate_after_s=_escalation(config.get("escalate_after_s"), default),
            escalation_chain=_chain(config.get("escalation_chain"), default),
            audio_pause_max_s=_seconds(config, "audio_pause_max_s", default.audio_pause_max_s),
            priorities=_priorities(config.get("priorities")),
        )


def _check_seconds(name: str, value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigError(f"alarms.{name} must be a positive number of seconds, got {value!r}")
    return float(value)


def _seconds(config: Mapping[str, object], key: str, default: float) -> float:
    return _check_seconds(key, config.get(key, default))


def _escalation(value: object, default: AlarmPolicy) -> Mapping[Priority, float]:
    if value is None:
        return default.escalate_after_s
    if not isinstance(value, Mapping):
        raise ConfigError(f"alarms.escalate_after_s must map 'high'/'medium' to s, got {value!r}")
    result = dict(default.escalate_after_s)
    for name, seconds in value.items():
        if name not in ("high", "medium"):
            raise ConfigError(
                f"alarms.escalate_after_s keys are 'high' and 'medium' (low alarms never "
                f"escalate), got {name!r}"
            )
        result[Priority(name)] = _check_seconds(f"escalate_after_s.{name}", seconds)
    return MappingProxyType(result)


def _chain(value: object, default: AlarmPolicy) -> tuple[str, ...]:
    if value is None:
        return default.escalation_chain
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ConfigError(f"alarms.escalation_chain must be a list of target names, got {value!r}")
    return tuple(value)  # __post_init__ checks the items


def _priorities(value: object) -> Mapping[AlarmKind, Priority]:
    result = dict(DEFAULT_PRIORITY)
    if value is None:
        return MappingProxyType(result)
    if not isinstance(value, Mapping):
        raise ConfigError(f"alarms.priorities must map alarm kinds to priorities, got {value!r}")
    kinds = ", ".join(k.value for k in AlarmKind)
    for name, level in value.items():
        try:
            kind = AlarmKind(name)
        except ValueError:
            raise ConfigError(
                f"alarms.priorities: unknown alarm kind {name!r}; known: {kinds}"
            ) from None
        try:
            priority = Priority(level)
        except ValueError:
            raise ConfigError(
                f"alarms.priorities.{name} must be 'high', 'medium' or 'low', got {level!r}"
            ) from None
        if kind in FIXED_HIGH and priority is not Priority.HIGH:
            raise ConfigError(
                f"alarms.priorities.{name} = {level!r} rejected: {name} is always 'high' "
                "(asystole, VF and VT cannot be lowered)"
            )
        result[kind] = priority
    return MappingProxyType(result)
