"""AlarmPolicy: defaults, configuration, and the priorities nobody may lower."""

from __future__ import annotations

import pytest

from ambulink.errors import ConfigError
from ambulink.hub.alarms.model import AlarmKind, Priority
from ambulink.hub.alarms.policy import AlarmPolicy


def test_defaults_follow_the_design() -> None:
    policy = AlarmPolicy()
    assert policy.receipt_timeout_s == 5.0
    assert policy.redeliver_every_s == 2.0
    assert policy.escalation_period_s(Priority.HIGH) == 30.0
    assert policy.escalation_period_s(Priority.MEDIUM) == 120.0
    assert policy.escalation_period_s(Priority.LOW) is None
    assert policy.audio_pause_max_s == 120.0
    high = {k for k in AlarmKind if policy.priority_of(k) is Priority.HIGH}
    medium = {k for k in AlarmKind if policy.priority_of(k) is Priority.MEDIUM}
    assert {k.value for k in high} == {"asystole", "vf", "vt"}
    assert {k.value for k in medium} == {"stemi", "brady", "tachy", "pause", "af"}
    assert all(policy.priority_of(k) is Priority.LOW for k in AlarmKind if k.technical)


def test_from_mapping_reads_every_key() -> None:
    policy = AlarmPolicy.from_mapping(
        {
            "receipt_timeout_s": 3,
            "redeliver_every_s": 1.5,
            "escalate_after_s": {"high": 20},
            "escalation_chain": ["supervisor"],
            "audio_pause_max_s": 60,
            "priorities": {"af": "high", "vf": "high", "lead_off": "medium"},
        }
    )
    assert policy.receipt_timeout_s == 3.0
    assert policy.redeliver_every_s == 1.5
    assert policy.escalation_period_s(Priority.HIGH) == 20.0
    assert policy.escalation_period_s(Priority.MEDIUM) == 120.0  # default kept
    assert policy.escalation_chain == ("supervisor",)
    assert policy.escalation_target(1) == policy.escalation_target(5) == "supervisor"
    assert policy.audio_pause_max_s == 60.0
    assert policy.priority_of(AlarmKind.AF) is Priority.HIGH
    assert policy.priority_of(AlarmKind.LEAD_OFF) is Priority.MEDIUM
    assert AlarmPolicy.from_mapping({}) == AlarmPolicy()


@pytest.mark.parametrize("kind", ["asystole", "vf", "vt"])
@pytest.mark.parametrize("level", ["medium", "low"])
def test_lowering_a_life_threatening_rhythm_is_rejected_naming_it(kind: str, level: str) -> None:
    with pytest.raises(ConfigError, match=rf"alarms\.priorities\.{kind} .*{kind} is always 'high'"):
        AlarmPolicy.from_mapping({"priorities": {kind: level}})


def test_direct_construction_cannot_lower_vf_either() -> None:
    priorities = {k: k.default_priority for k in AlarmKind} | {AlarmKind.VF: Priority.LOW}
    with pytest.raises(ConfigError, match="vf is always 'high'"):
        AlarmPolicy(priorities=priorities)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"audio_pause_max_s": 180}, "audio_pause_max_s must be at most 120 s, got 180"),
        ({"audio_pause_max_s": 0}, "audio_pause_max_s must be a positive number"),
        ({"receipt_timeout_s": -1}, "receipt_timeout_s must be a positive number of seconds"),
        ({"redeliver_every_s": True}, "redeliver_every_s must be a positive number"),
        ({"redeliver_every_s": float("nan")}, "redeliver_every_s must be a positive number"),
        ({"escalate_after_s": {"low": 10}}, "low alarms never escalate"),
        ({"escalate_after_s": 30}, "escalate_after_s must map"),
        ({"escalation_chain": []}, "escalation_chain must be a non-empty list"),
        ({"escalation_chain": "supervisor"}, "escalation_chain must be a list"),
        ({"priorities": {"hiccup": "high"}}, "unknown alarm kind 'hiccup'"),
        ({"priorities": {"af": "urgent"}}, "priorities.af must be 'high', 'medium' or 'low'"),
        ({"redeliver_every": 2}, r"unknown keys \['redeliver_every'\]"),
    ],
)
def test_bad_configuration_is_rejected_clearly(config: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        AlarmPolicy.from_mapping(config)
