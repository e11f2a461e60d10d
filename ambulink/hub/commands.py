"""``ambulink hub``, ``ambulink token``, ``ambulink client`` and ``ambulink demo``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ambulink.errors import ConfigError
from ambulink.hub.settings import HubSettings, check_secret
from ambulink.hub.tokens import ROLES, TokenIssuer

if TYPE_CHECKING:
    from ambulink.ambulance_client.source import Detachment


def register_hub(subparsers: Any) -> None:
    hub = subparsers.add_parser(
        "hub",
        help="run the hub (HTTP API, WebRTC uplinks, viewer WebSocket)",
        description=(
            "Run the hub on AMBULINK_HOST:AMBULINK_PORT (default 127.0.0.1:8000) with the "
            "settings from AMBULINK_* environment variables: DATA_DIR (case store, default "
            "./var), REDIS_URL (Redis Streams bus; default in-memory), TOKEN_SECRET (to verify "
            "tokens; a random one when unset), ICE_HOST_ADDRESSES (e.g. 127.0.0.1)."
        ),
    )
    hub.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    hub.set_defaults(run=_run_hub)

    token = subparsers.add_parser(
        "token",
        help="mint a short-lived access token from AMBULINK_TOKEN_SECRET",
        description="Print a signed token (at most 10 min) for the given role, unit and room.",
    )
    token.add_argument("--role", required=True, choices=ROLES)
    token.add_argument("--sub", default="cli", help="who the token is for (an opaque id)")
    token.add_argument("--unit", help="the ambulance (unit) id, for crew tokens")
    token.add_argument("--room", help="the consult room id")
    token.set_defaults(run=_run_token)

    client = subparsers.add_parser(
        "client",
        help="run the ambulance client: replay a WFDB record to the hub, losing nothing",
        description=(
            "Replay RECORD (a WFDB record path without extension) as a live monitor and stream "
            "it to the hub over WebRTC, buffering every frame on disk until the hub acks it. "
            "Tokens are minted from AMBULINK_TOKEN_SECRET (the hub's), as the demo does."
        ),
    )
    client.add_argument("record", help="WFDB record path, e.g. ambulink/data/mitdb/201")
    client.add_argument("--hub", default="http://127.0.0.1:8000", help="the hub's base URL")
    client.add_argument("--unit", required=True, help="this ambulance's unit id")
    client.add_argument("--buffer-dir", type=Path, help="default var/tablet/<unit>")
    client.add_argument("--speed", type=float, default=1.0, help="replay speed (x real time)")
    client.add_argument("--no-vitals", action="store_true", help="do not send simulated vitals")
    client.add_argument("--loopback", action="store_true", help="ICE on 127.0.0.1 only")
    client.add_argument(
        "--camera",
        default="test",
        help="'test' (a numbered test pattern), 'none', or a V4L2 device such as /dev/video0",
    )
    client.add_argument(
        "--mic", default="tone", help="'tone' (440 Hz), 'none', or a PulseAudio source name"
    )
    client.add_argument(
        "--route",
        type=_lat_lon,
        metavar="LAT,LON",
        help="also drive a simulated 3-5 km route from LAT,LON and report status, position "
        "and link every second (the unit must be in the hub's fleet to show on dispatch)",
    )
    client.add_argument(
        "--mqtt",
        metavar="URL",
        help="send those reports to this broker (mqtt://unit:password@host:port) instead of "
        "the uplink's data channel; needs --route",
    )
    client.add_argument(
        "--detach",
        type=_detachment,
        metavar="LEAD:OFF-ON/EVERY",
        help="simulate a detached electrode: LEAD flat, with its lead-off bit, from OFF to ON "
        "seconds of every EVERY seconds of the replay, e.g. MLII:60-90/300",
    )
    client.set_defaults(run=_run_client)

    demo = subparsers.add_parser(
        "demo",
        help="run a hub and a simulated fleet replaying bundled real records",
        description=(
            "Start the hub on 127.0.0.1:PORT (embedded defaults: in-memory bus, SQLite under "
            "--data-dir) and a fleet of ambulances replaying bundled PhysioNet records (AF, "
            "VT/VF, acute MI 12-lead, normal, PVCs) through the real client code; print the "
            "viewer URLs. Ctrl-C stops it."
        ),
    )
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--data-dir", type=Path, default=Path("var/demo"))
    demo.set_defaults(run=_run_demo)


def _settings() -> HubSettings:
    return HubSettings.from_env(os.environ)


def check_port_free(host: str, port: int, *, hint: str) -> None:
    """Raise ``ConfigError`` when ``host:port`` cannot be bound (say, another hub holds it),
    instead of the web server's exit deep in start-up."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc} (is another hub or demo "
                f"running?); stop it or {hint}"
            ) from None


def _run_hub(args: argparse.Namespace) -> int:
    import uvicorn

    from ambulink.hub.app import create_app

    settings = _settings()
    check_port_free(settings.host, settings.port, hint="set AMBULINK_PORT to another port")
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    uvicorn.run(
        create_app(settings), host=settings.host, port=settings.port, log_level=args.log_level
    )
    return 0


def _secret() -> str:
    secret = os.environ.get("AMBULINK_TOKEN_SECRET")
    if not secret:
        raise ConfigError("set AMBULINK_TOKEN_SECRET to the hub's token secret")
    return check_secret(secret)


def _run_token(args: argparse.Namespace) -> int:
    print(TokenIssuer(_secret()).mint(args.sub, args.role, unit=args.unit, room=args.room))
    return 0


def _lat_lon(text: str) -> tuple[float, float]:
    """``LAT,LON`` in degrees, e.g. ``52.09,5.12``."""
    try:
        lat, lon = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected LAT,LON in degrees such as 52.09,5.12, got {text!r}"
        ) from None
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a place: lat -90..90, lon -180..180")
    return lat, lon


def _detachment(text: str) -> Detachment:
    """``LEAD:OFF-ON/EVERY`` (seconds), e.g. ``MLII:60-90/300``."""
    from ambulink.ambulance_client.source import Detachment

    try:
        lead, rest = text.rsplit(":", 1)
        span, every = rest.split("/")
        off, on = span.split("-")
        return Detachment(lead, float(off), float(on), float(every))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected LEAD:OFF-ON/EVERY in seconds such as MLII:60-90/300, got {text!r}"
        ) from None
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _run_client(args: argparse.Namespace) -> int:
    from ambulink.ambulance_client.media import MediaChoice
    from ambulink.ambulance_client.runner import run_client

    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.mqtt and args.route is None:
        print(
            "ambulink client: --mqtt sends the simulated route's reports; give --route too",
            file=sys.stderr,
        )
        return 2
    issuer = TokenIssuer(_secret())
    buffer_dir = args.buffer_dir or Path("var") / "tablet" / args.unit
    try:
        asyncio.run(
            run_client(
                args.record,
                hub_url=args.hub,
                unit_id=args.unit,
                buffer_dir=buffer_dir,
                token=lambda: issuer.mint(f"tablet-{args.unit}", "crew", unit=args.unit),
                speed=args.speed,
                vitals=not args.no_vitals,
                loopback=args.loopback,
                media=MediaChoice(camera=args.camera, mic=args.mic),
                route_from=args.route,
                mqtt_url=args.mqtt,
                detach=args.detach,
            )
        )
    except KeyboardInterrupt:
        return 130
    return 0


def _run_demo(args: argparse.Namespace) -> int:
    from ambulink.hub.demo import run_demo

    logging.basicConfig(level="WARNING", format="%(asctime)s %(levelname)s %(name)s %(message)s")
    secret = os.environ.get("AMBULINK_TOKEN_SECRET") or secrets.token_urlsafe(32)
    check_secret(secret)
    check_port_free("127.0.0.1", args.port, hint="pick another with --port")
    try:
        asyncio.run(run_demo(port=args.port, data_dir=args.data_dir, secret=secret, out=sys.stdout))
    except KeyboardInterrupt:
        return 0
    return 0
