"""Fleet updates (issue 8): N units at 1 Hz position + link through mosquitto into a hub process
and out to dispatch sockets; hub CPU and update latency, against a plain MQTT subscriber.

``python -m loadtest.fleet [--units 500] [--sockets 5] [--seconds 30] [--json out.json]``

It starts its own mosquitto (tests/servers.py: users, ACL, loopback, a free port), then runs
the same load twice in one run:

1. peer: the publishers → mosquitto → one plain aiomqtt subscriber (the floor the hub adds to);
2. hub: the publishers → mosquitto → the hub (its own process, ``AMBULINK_MQTT_URL``-style
   settings and a fleet file of N units) → ``/ws/fleet`` → ``--sockets`` dispatch sockets.

Latency is the wall time from a report's ``at`` (stamped when it is published) to its arrival:
at the subscriber, or in a ``unit`` message on a socket (the newest of its position and link
``at``). The hub coalesces each unit to ~4 updates/s, so a socket sees fewer messages than were
published. Hub CPU is read from /proc for the hub phase. Publishers publish as the broker's
``hub`` user (QoS 1) over 10 connections: the per-unit ACL is tested in tests/, not here.
Everything is bounded: ``--seconds`` (≤ 60) per phase.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import aiomqtt
import numpy as np
import websockets

from ambulink.hub.fleet_region import HOSPITALS
from ambulink.hub.tokens import TokenIssuer
from ambulink.protocol.telematics import SUBSCRIPTION, topic
from loadtest.procs import ServerProcess, cpu_seconds, free_port
from tests.servers import Mosquitto

PUBLISHERS = 10
SECRET = "loadtest-fleet-secret-0123456789-abcdef"


def payloads(unit: str, index: int, t: float) -> list[tuple[str, bytes]]:
    """One second of a unit's reports: it drives north at 10 m/s from its own start."""
    lat = 52.0 + (index % 50) * 0.004 + t * 10.0 / 111_000.0 % 0.05
    lon = 5.0 + (index // 50) * 0.004
    now = time.time()
    position = {"v": 1, "unit_id": unit, "lat": lat, "lon": lon, "speed_mps": 10.0}
    position |= {"heading_deg": 0.0, "accuracy_m": 5.0, "at": now}
    link = {"v": 1, "unit_id": unit, "rtt_ms": 60.0, "loss_pct": 0.5, "uplink_kbps": 3000.0}
    link |= {"radio": "LTE", "signal_dbm": -85.0, "buffered_frames": 0, "at": now}
    return [
        (topic(unit, "position"), json.dumps(position).encode()),
        (topic(unit, "link"), json.dumps(link).encode()),
    ]


async def publish_load(broker: Mosquitto, units: list[str], seconds: float) -> int:
    """Every unit's position and link once a second for ``seconds``; returns messages sent."""
    sent = 0

    async def one(client: aiomqtt.Client, mine: list[tuple[int, str]], t: float) -> None:
        nonlocal sent
        for index, unit in mine:
            for name, data in payloads(unit, index, t):
                await client.publish(name, data, qos=1)
                sent += 1

    groups = [list(enumerate(units))[i::PUBLISHERS] for i in range(PUBLISHERS)]
    clients = [
        aiomqtt.Client(
            "127.0.0.1",
            broker.port,
            username="hub",
            password=broker.passwords["hub"],
            identifier=f"loadgen-{i}",
            max_inflight_messages=1000,
        )
        for i in range(PUBLISHERS)
    ]
    for client in clients:
        await client.__aenter__()
    try:
        start = time.monotonic()
        tick = 0
        while tick < seconds:
            t = time.monotonic() - start
            await asyncio.gather(*(one(c, g, t) for c, g in zip(clients, groups, strict=True)))
            tick += 1
            await asyncio.sleep(max(start + tick - time.monotonic(), 0))
    finally:
        for client in clients:
            await client.__aexit__(None, None, None)
    return sent


async def publish_elsewhere(broker: Mosquitto, units: list[str], seconds: float) -> int:
    """``publish_load`` in a child process, so that publishing does not delay the receivers
    (the machine's other core does it); returns messages sent."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "loadtest.fleet",
        "--publish-child",
        "--port",
        str(broker.port),
        "--password",
        broker.passwords["hub"],
        "--units",
        str(len(units)),
        "--seconds",
        str(seconds),
        stdout=asyncio.subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[1],
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=seconds + 60)
    return int(out.decode().split()[-1])


async def peer_phase(broker: Mosquitto, units: list[str], seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    async with aiomqtt.Client(
        "127.0.0.1", broker.port, username="hub", password=broker.passwords["hub"]
    ) as sub:
        await sub.subscribe(SUBSCRIPTION, qos=1)

        async def receive() -> None:
            async for message in sub.messages:
                assert isinstance(message.payload, bytes)
                latencies.append(time.time() - json.loads(message.payload)["at"])

        receiving = asyncio.create_task(receive())
        sent = await publish_elsewhere(broker, units, seconds)
        with suppress(TimeoutError):
            async with asyncio.timeout(5):
                while len(latencies) < sent:
                    await asyncio.sleep(0.1)
        receiving.cancel()
        await asyncio.gather(receiving, return_exceptions=True)
    return summary("plain aiomqtt subscriber", sent, latencies, None)


async def hub_phase(
    broker: Mosquitto, units: list[str], seconds: float, sockets: int, folder: Path
) -> dict[str, Any]:
    fleet_file = folder / "fleet.json"
    fleet_file.write_text(
        json.dumps(
            {
                "units": units,
                "hospitals": [
                    {"hospital_id": h.hospital_id, "name": h.name, "lat": h.lat, "lon": h.lon}
                    for h in HOSPITALS
                ],
            }
        )
    )
    port = free_port()
    hub = await ServerProcess.start(
        "loadtest.fleet",
        port,
        "--hub-child",
        "--data-dir",
        str(folder / "hub"),
        "--mqtt-url",
        broker.url("hub"),
        "--fleet-file",
        str(fleet_file),
    )
    latencies: list[float] = []
    received = 0
    try:
        token = TokenIssuer(SECRET).mint("loadtest-dispatch", "dispatch")
        ready = asyncio.Event()
        opened = 0

        async def dispatch() -> None:
            nonlocal received, opened
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws/fleet", max_size=None) as ws:
                await ws.send(json.dumps({"type": "auth", "token": token}))
                opened += 1
                if opened == sockets:
                    ready.set()
                async for raw in ws:
                    message = json.loads(raw)
                    if message["type"] != "unit":
                        continue
                    unit = message["unit"]
                    stamps = [p["at"] for p in (unit["position"], unit["link"]) if p is not None]
                    if stamps:
                        received += 1
                        latencies.append(time.time() - max(stamps))

        readers = [asyncio.create_task(dispatch()) for _ in range(sockets)]
        async with asyncio.timeout(10):
            await ready.wait()
        cpu0, wall0 = cpu_seconds(hub.pid), time.monotonic()
        sent = await publish_elsewhere(broker, units, seconds)
        cpu1, wall1 = cpu_seconds(hub.pid), time.monotonic()
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    finally:
        await hub.stop()
    cpu_pct = 100.0 * (cpu1 - cpu0) / (wall1 - wall0)
    return summary(f"ambulink hub → {sockets} /ws/fleet sockets", sent, latencies, cpu_pct)


def summary(name: str, sent: int, latencies: list[float], cpu_pct: float | None) -> dict[str, Any]:
    ms = np.asarray(latencies) * 1000.0 if latencies else np.asarray([np.nan])
    return {
        "path": name,
        "published": sent,
        "received": len(latencies),
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(np.max(ms)),
        "hub_cpu_pct": cpu_pct,
    }


async def run(units_n: int, sockets: int, seconds: float) -> dict[str, Any]:
    units = [f"lt-{i}" for i in range(units_n)]
    with tempfile.TemporaryDirectory() as folder:
        broker = Mosquitto(Path(folder) / "mosquitto", [])
        try:
            peer = await peer_phase(broker, units, seconds)
            hub = await hub_phase(broker, units, seconds, sockets, Path(folder))
        finally:
            broker.stop()
    return {
        "units": units_n,
        "sockets": sockets,
        "seconds": seconds,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "rows": [peer, hub],
        "p99_ratio_hub_to_peer": hub["p99_ms"] / peer["p99_ms"],
    }


async def serve_hub(port: int, data_dir: Path, mqtt_url: str, fleet_file: Path) -> None:
    """The hub child process: ``create_app`` with MQTT, prints ``ready <pid> <port>``."""
    from ambulink.hub.app import create_app
    from ambulink.hub.settings import HubSettings
    from loadtest.hub_process import serve_app

    settings = HubSettings(
        port=port,
        data_dir=data_dir,
        token_secret=SECRET,
        mqtt_url=mqtt_url,
        fleet_path=fleet_file,
        allowed_origins=(f"http://127.0.0.1:{port}",),
    )
    await serve_app(create_app(settings), port)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.fleet",
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--units", type=int, default=500, help="simulated units (default 500)")
    parser.add_argument("--sockets", type=int, default=5, help="dispatch sockets (default 5)")
    parser.add_argument("--seconds", type=float, default=30.0, help="per phase, ≤ 60 (default 30)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--hub-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--mqtt-url", help=argparse.SUPPRESS)
    parser.add_argument("--fleet-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--publish-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--password", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.publish_child:
        broker = Mosquitto.__new__(Mosquitto)  # only port and password are used
        broker.port, broker.passwords = args.port, {"hub": args.password}
        units = [f"lt-{i}" for i in range(args.units)]
        print(f"sent {asyncio.run(publish_load(broker, units, args.seconds))}", flush=True)
        return
    if args.hub_child:
        with suppress(KeyboardInterrupt):
            asyncio.run(serve_hub(args.port, args.data_dir, args.mqtt_url, args.fleet_file))
        return
    if not 1 <= args.units <= 5000 or not 1 <= args.sockets <= 50 or not 1 <= args.seconds <= 60:
        parser.error("--units 1-5000, --sockets 1-50, --seconds 1-60")
    result = asyncio.run(run(args.units, args.sockets, args.seconds))
    print(f"{result['units']} units at 1 Hz position + link, {result['seconds']:.0f} s per phase")
    print("| path | published | received | p50 ms | p99 ms | max ms | hub CPU % |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in result["rows"]:
        cpu = "" if row["hub_cpu_pct"] is None else f"{row['hub_cpu_pct']:.0f}"
        print(
            f"| {row['path']} | {row['published']} | {row['received']} | {row['p50_ms']:.1f} | "
            f"{row['p99_ms']:.1f} | {row['max_ms']:.1f} | {cpu} |"
        )
    print(f"p99 hub ÷ peer: {result['p99_ratio_hub_to_peer']:.1f}")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
