from pathlib import Path

import pytest

from ambulink.errors import ConfigError
from ambulink.hub.settings import HubSettings


def test_defaults_need_no_environment() -> None:
    settings = HubSettings.from_env({})
    assert settings.redis_url is None and settings.port == 8000
    assert settings.store_path == Path("var") / "cases.sqlite3"


def test_environment_is_read_and_checked() -> None:
    settings = HubSettings.from_env(
        {
            "AMBULINK_PORT": "8123",
            "AMBULINK_REDIS_URL": "redis://127.0.0.1:7000/0",
            "AMBULINK_ICE_HOST_ADDRESSES": "127.0.0.1",
            "AMBULINK_TOKEN_SECRET": "x" * 40,
        }
    )
    assert settings.port == 8123 and settings.ice_host_addresses == ("127.0.0.1",)
    assert "x" * 40 not in repr(settings)  # the secret stays out of logs
    with pytest.raises(ConfigError, match="AMBULINK_REDIS_URL is 'x', not a redis:// URL"):
        HubSettings.from_env({"AMBULINK_REDIS_URL": "x"})
    with pytest.raises(ConfigError, match="AMBULINK_PORT is 'eighty'"):
        HubSettings.from_env({"AMBULINK_PORT": "eighty"})
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        HubSettings.from_env({"AMBULINK_TOKEN_SECRET": "short"})
    with pytest.raises(ConfigError, match="TOKEN_TTL_S is 3600, expected 10-600"):
        HubSettings.from_env({"AMBULINK_TOKEN_TTL_S": "3600"})


def test_alarm_policy_comes_from_the_environment_and_high_priorities_stay_high() -> None:
    settings = HubSettings.from_env(
        {"AMBULINK_ALARMS": '{"escalation_chain": ["supervisor"], "priorities": {"af": "high"}}'}
    )
    assert settings.alarms.escalation_chain == ("supervisor",)
    with pytest.raises(ConfigError, match="vf"):
        HubSettings.from_env({"AMBULINK_ALARMS": '{"priorities": {"vf": "low"}}'})
    with pytest.raises(ConfigError, match="AMBULINK_ALARMS is not JSON"):
        HubSettings.from_env({"AMBULINK_ALARMS": "{nope"})


def test_mqtt_url_and_fleet_file_come_from_the_environment() -> None:
    settings = HubSettings.from_env(
        {"AMBULINK_MQTT_URL": "mqtt://hub:secret@127.0.0.1:18830", "AMBULINK_FLEET": "f.json"}
    )
    assert settings.mqtt_url == "mqtt://hub:secret@127.0.0.1:18830"
    assert settings.fleet_path == Path("f.json") and "secret" not in repr(settings)
    with pytest.raises(ConfigError, match="MQTT_URL must look like mqtt://") as caught:
        HubSettings.from_env({"AMBULINK_MQTT_URL": "http://hub:secret@127.0.0.1"})
    assert "secret" not in str(caught.value)


def test_analysis_runs_in_a_process_unless_told_otherwise() -> None:
    assert HubSettings().analysis == "process"
    assert HubSettings.from_env({"AMBULINK_ANALYSIS": "thread"}).analysis == "thread"
    with pytest.raises(ConfigError, match="expected process or thread"):
        HubSettings.from_env({"AMBULINK_ANALYSIS": "gpu"})
