"""The hub's settings: one frozen object, read from the environment once, at the edge."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args
from urllib.parse import urlparse

from ambulink.errors import ConfigError
from ambulink.hub.alarms.policy import AlarmPolicy

ENV_PREFIX = "AMBULINK_"
AnalysisMode = Literal["process", "thread"]


@dataclass(frozen=True)
class HubSettings:
    """Every knob of the hub. ``from_env`` documents the variables; defaults run a demo hub."""

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("var")
    redis_url: str | None = None
    token_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    token_ttl_s: int = 600
    allowed_origins: tuple[str, ...] = ("http://127.0.0.1:8000", "http://localhost:8000")
    heartbeat_interval_s: float = 1.0
    heartbeat_misses: int = 3
    ice_host_addresses: tuple[
        str, ...
    ] = ()  # () = aiortc's default; ("127.0.0.1",) = loopback only
    max_message_bytes: int = 65536
    demo_password: str | None = field(default=None, repr=False)  # enables /api/demo/login
    analysis: AnalysisMode = "process"  # where stream analysis runs (hub/analysis.py)
    alarms: AlarmPolicy = field(default_factory=AlarmPolicy)
    mqtt_url: str | None = field(default=None, repr=False)  # mqtt://user:pass@host:port
    fleet_path: Path | None = None  # JSON units and hospitals; None: the demo region

    @property
    def store_path(self) -> Path:
        return self.data_dir / "cases.sqlite3"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> HubSettings:
        """Settings from ``AMBULINK_*`` variables (HOST, PORT, DATA_DIR, REDIS_URL, TOKEN_SECRET,
        TOKEN_TTL_S, MQTT_URL ``mqtt://user:pass@host:port``, FLEET a JSON file of units
        and hospitals, ANALYSIS process (default) or thread, ALLOWED_ORIGINS comma-separated,
        ICE_HOST_ADDRESSES comma-separated, ALARMS
        a JSON object for ``AlarmPolicy.from_mapping``, e.g. ``{"escalation_chain":
        ["dispatch_supervisor"], "priorities": {"af": "high"}}``)."""

        def get(name: str) -> str | None:
            value = environ.get(ENV_PREFIX + name)
            return value.strip() if value is not None and value.strip() else None

        kwargs: dict[str, object] = {}
        if (host := get("HOST")) is not None:
            kwargs["host"] = host
        if (port := get("PORT")) is not None:
            kwargs["port"] = _int(ENV_PREFIX + "PORT", port, 1, 65535)
        if (data_dir := get("DATA_DIR")) is not None:
            kwargs["data_dir"] = Path(data_dir)
        if (redis_url := get("REDIS_URL")) is not None:
            if urlparse(redis_url).scheme not in ("redis", "rediss", "unix"):
                raise ConfigError(f"{ENV_PREFIX}REDIS_URL is {redis_url!r}, not a redis:// URL")
            kwargs["redis_url"] = redis_url
        if (secret := get("TOKEN_SECRET")) is not None:
            kwargs["token_secret"] = check_secret(secret)
        if (ttl := get("TOKEN_TTL_S")) is not None:
            kwargs["token_ttl_s"] = _int(ENV_PREFIX + "TOKEN_TTL_S", ttl, 10, 600)
        if (origins := get("ALLOWED_ORIGINS")) is not None:
            kwargs["allowed_origins"] = tuple(o.strip() for o in origins.split(",") if o.strip())
        if (alarms := get("ALARMS")) is not None:
            try:
                config = json.loads(alarms)
            except ValueError as exc:
                raise ConfigError(f"{ENV_PREFIX}ALARMS is not JSON: {exc}") from exc
            kwargs["alarms"] = AlarmPolicy.from_mapping(config)
        if (mqtt_url := get("MQTT_URL")) is not None:
            parsed = urlparse(mqtt_url)
            if parsed.scheme != "mqtt" or not parsed.hostname:
                raise ConfigError(
                    f"{ENV_PREFIX}MQTT_URL must look like mqtt://user:pass@host:port, "
                    f"got a {parsed.scheme or 'schemeless'} URL"
                )
            kwargs["mqtt_url"] = mqtt_url
        if (fleet := get("FLEET")) is not None:
            kwargs["fleet_path"] = Path(fleet)
        if (analysis := get("ANALYSIS")) is not None:
            if analysis not in get_args(AnalysisMode):
                raise ConfigError(
                    f"{ENV_PREFIX}ANALYSIS is {analysis!r}; expected process or thread"
                )
            kwargs["analysis"] = analysis
        if (ice := get("ICE_HOST_ADDRESSES")) is not None:
            kwargs["ice_host_addresses"] = tuple(a.strip() for a in ice.split(",") if a.strip())
        return cls(**kwargs)  # type: ignore[arg-type]


def check_secret(secret: str) -> str:
    """The token secret, refused when shorter than HS256 needs (32 bytes, RFC 7518)."""
    if len(secret.encode()) < 32:
        raise ConfigError(f"{ENV_PREFIX}TOKEN_SECRET must have at least 32 bytes")
    return secret


def _int(name: str, value: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError as exc:
        raise ConfigError(f"{name} is {value!r}, not a whole number") from exc
    if not low <= number <= high:
        raise ConfigError(f"{name} is {number}, expected {low}-{high}")
    return number
