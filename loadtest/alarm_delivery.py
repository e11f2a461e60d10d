"""Alarm delivery: hub decision → receipt from each of 8 members; a plain broadcast peer.

``python -m loadtest.alarm_delivery [--alarms 200] [--loopback-budget 30] [--impaired-budget 55]
[--json FILE]``

Issue 6's benchmark. Four phases, one after another, each with a fresh room of 8 members in a
child process (``loadtest.alarm_members``: WebSocket clients that send ``{"type": "receipt"}``
the moment an alarm message arrives):

1. the hub on loopback; 2. the hub with every member behind an ``ImpairedTcpRelay`` (75 ms each
way = 150 ms RTT, 5 % of chunks per direction held for an extra 200-300 ms "retransmission";
TCP cannot drop, see ``loadtest/tcp_relay.py``); 3. and 4. the peer, a bare ``websockets``
server that fans the same alarm JSON out with ``websockets.broadcast()``, on loopback and
through the same relay (same seed).

The hub (``create_app`` under uvicorn, in-memory bus, SQLite stores) runs in *this* process, so
that alarms are decided by calling ``hub.alarms.on_event`` directly with a VF ``episode_start``
(what the analysis would publish). Per alarm: decision = ``time.monotonic()`` just before
``on_event`` (peer: just before the JSON is built and broadcast); receipt = the moment the
hub's ``AlarmService.receipt`` is called for that member (it is wrapped here to note the time;
peer: the server handler reading the receipt). Both ends are on the hub's clock, so a figure is
one full trip, hub → member → hub, including the store write and the viewer socket's bus poll.
After all 8 receipts (or 5 s) the alarm is acknowledged and cleared (two more messages to every
member, mirrored by the peer), then the next follows after a random 20-80 ms.

Reported per phase: p50/p99/max over all (alarm, member) pairs, the same for "the last of the
8" per alarm, receipts missing after 5 s, decision → "published" (``on_event`` returned: saved
to the alarm store and appended to the bus; peer: ``broadcast()`` returned), CPU of this
process and of the members' process.
Bounded: at most ``--alarms`` per phase and the phase's budget in s (under impairment a cycle
takes ~0.45 s, so fewer than 200 alarms fit); the whole run stops after 175 s at the latest and
prints the phases it finished. Nothing here asserts a time (STYLE §11).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import cast

import numpy as np
import uvicorn
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed
from websockets.version import version as websockets_version

from ambulink.hub.alarm_service import alarms_topic
from ambulink.hub.alarms import AlarmKind
from ambulink.hub.app import Hub, create_app
from ambulink.hub.serving import bind_loopback, serving
from ambulink.hub.settings import HubSettings
from ambulink.hub.tokens import TokenIssuer
from loadtest.hub_process import StatsWrapper
from loadtest.procs import ServerProcess, cpu_seconds

MEMBERS = 8
RECEIPT_TIMEOUT_S = 5.0
RUN_TIMEOUT_S = 175.0
GAP_S = (0.02, 0.08)
FS = 250  # the samples of the fake VF events' onsets, as VFDB's rate
ACKER = "specialist:bench"


@dataclass(frozen=True)
class Network:
    name: str
    one_way_ms: float
    loss: float


LOOPBACK = Network("loopback", 0.0, 0.0)
IMPAIRED = Network("150 ms RTT, 5 % loss", 75.0, 0.05)


class Receipts:
    """Decision times and receipt times (monotonic s) by alarm id and member."""

    def __init__(self, members: int) -> None:
        self.members = members
        self.decided: dict[str, float] = {}
        self.published_ms: list[float] = []  # decision → on_event (or broadcast) returned
        self.received: dict[str, dict[str, float]] = {}
        self._complete: dict[str, asyncio.Event] = {}

    def _event(self, alarm_id: str) -> asyncio.Event:
        return self._complete.setdefault(alarm_id, asyncio.Event())

    def decide(self, alarm_id: str, at: float, published: float) -> None:
        self.decided[alarm_id] = at
        self.published_ms.append(1000 * (published - at))

    def record(self, alarm_id: str, member: str, at: float) -> None:
        seen = self.received.setdefault(alarm_id, {})
        seen.setdefault(member, at)  # the first receipt counts; later ones answer ack/clear
        if len(seen) >= self.members:
            self._event(alarm_id).set()

    async def wait_all(self, alarm_id: str, timeout_s: float) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                await self._event(alarm_id).wait()
        except TimeoutError:
            pass  # counted as missing

    def pairs_ms(self) -> tuple[list[float], list[float], int]:
        """Latency of every (alarm, member) pair, of the last member per alarm, and missing."""
        pairs: list[float] = []
        last: list[float] = []
        missing = 0
        for alarm_id, t0 in self.decided.items():
            times = [t - t0 for t in self.received.get(alarm_id, {}).values()]
            pairs.extend(1000 * t for t in times)
            missing += self.members - len(times)
            if len(times) == self.members:
                last.append(1000 * max(times))
        return pairs, last, missing


@dataclass
class PhaseResult:
    server: str
    network: str
    alarms: int
    pairs: int
    missing: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    last_of_8_p50_ms: float
    last_of_8_p99_ms: float
    published_p50_ms: float  # decision → on_event returned (saved, on the bus) / broadcast done
    published_p99_ms: float
    duration_s: float
    server_cpu_pct: float  # this process (hub or peer, plus the trigger loop)
    members_cpu_pct: float  # the members' process (8 clients and the relay)
    relay_chunks: int
    relay_lost_chunks: int


def _pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 1) if values else float("nan")


class Phase:
    """One phase's bookkeeping: time and CPU of both processes, then the result row."""

    def __init__(self, server: str, network: Network, members: ServerProcess) -> None:
        self.server = server
        self.network = network
        self.members = members
        self.receipts = Receipts(MEMBERS)
        self._t0 = time.monotonic()
        self._cpu0 = (cpu_seconds(os.getpid()), cpu_seconds(members.pid))

    def result(self, stats: dict[str, float]) -> PhaseResult:
        elapsed = time.monotonic() - self._t0
        pairs, last, missing = self.receipts.pairs_ms()
        own = cpu_seconds(os.getpid()) - self._cpu0[0]
        return PhaseResult(
            server=self.server,
            network=self.network.name,
            alarms=len(self.receipts.decided),
            pairs=len(pairs),
            missing=missing,
            p50_ms=_pct(pairs, 50),
            p99_ms=_pct(pairs, 99),
            max_ms=round(max(pairs), 1) if pairs else float("nan"),
            last_of_8_p50_ms=_pct(last, 50),
            last_of_8_p99_ms=_pct(last, 99),
            published_p50_ms=_pct(self.receipts.published_ms, 50),
            published_p99_ms=_pct(self.receipts.published_ms, 99),
            duration_s=round(elapsed, 1),
            server_cpu_pct=round(100 * own / elapsed, 1),
            members_cpu_pct=round(100 * stats.get("cpu_s", 0.0) / elapsed, 1),
            relay_chunks=int(stats.get("chunks", 0)),
            relay_lost_chunks=int(stats.get("lost_chunks", 0)),
        )

    async def stop_members(self, stats_path: Path) -> dict[str, float]:
        """Stop the members' process; its CPU over the phase and the relay's counters."""
        cpu = cpu_seconds(self.members.pid) - self._cpu0[1]
        await self.members.stop()
        stats: dict[str, float] = json.loads(stats_path.read_text()) if stats_path.exists() else {}
        return {**stats, "cpu_s": cpu}


async def start_members(
    port: int, path: str, tokens: list[str], network: Network, seed: int, stats: Path
) -> ServerProcess:
    return await ServerProcess.start(
        "loadtest.alarm_members",
        port,
        "--path",
        path,
        "--tokens",
        ",".join(tokens),
        "--one-way-ms",
        str(network.one_way_ms),
        "--loss",
        str(network.loss),
        "--seed",
        str(seed),
        "--stats",
        str(stats),
    )


async def alarm_loop(
    count: int,
    budget_s: float,
    seed: int,
    raise_alarm: Callable[[int], Awaitable[str]],
    finish: Callable[[int, str], Awaitable[None]],
    receipts: Receipts,
) -> None:
    """Raise alarm k, wait for its 8 receipts (≤ 5 s), ack and clear it, pause, repeat."""
    rng = random.Random(seed)
    deadline = time.monotonic() + budget_s
    for k in range(count):
        if time.monotonic() > deadline:
            break
        alarm_id = await raise_alarm(k)
        await receipts.wait_all(alarm_id, RECEIPT_TIMEOUT_S)
        await finish(k, alarm_id)
        await asyncio.sleep(rng.uniform(*GAP_S))


# ---- the hub ------------------------------------------------------------------------------


@asynccontextmanager
async def hub_in_process(data_dir: Path) -> AsyncIterator[tuple[Hub, int, TokenIssuer]]:
    """The real hub app under uvicorn on a free 127.0.0.1 port, in this event loop."""
    secret = secrets.token_urlsafe(32)
    sock, port = bind_loopback()
    settings = HubSettings(
        port=port,
        data_dir=data_dir,
        token_secret=secret,
        ice_host_addresses=("127.0.0.1",),
        allowed_origins=(f"http://127.0.0.1:{port}",),
    )
    app = StatsWrapper(create_app(settings))
    async with serving(app, sock):
        yield cast(Hub, app.state["hub"]), port, TokenIssuer(secret)


def vf_start(k: int) -> dict[str, object]:
    onset = (60 + 30 * k) * FS
    return {
        "kind": "episode_start",
        "label": "VF",
        "onset": onset,
        "onset_at": time.time() - 4.0,
        "decided_at": onset + 4 * FS,
        "evidence": {"start": onset - 6 * FS, "end": onset + 4 * FS},
        "stream_id": 1,
        "delayed": False,
    }


def vf_end(k: int) -> dict[str, object]:
    return {"kind": "episode_end", "label": "VF", "end": (60 + 30 * k + 10) * FS, "stream_id": 1}


async def hub_phase(
    hub: Hub, port: int, issuer: TokenIssuer, network: Network, args: argparse.Namespace
) -> tuple[PhaseResult, str]:
    """One room of 8 specialists; returns the result and the first alarm message's JSON."""
    case_id = await hub.store.create_case(f"amb-bench-{uuid.uuid4().hex[:6]}")
    tokens = [issuer.mint(f"doctor-{i}", "specialist") for i in range(MEMBERS)]
    stats_path = args.work / f"relay-hub-{network.one_way_ms:g}.json"
    members = await start_members(
        port, f"/ws/cases/{case_id}", tokens, network, args.seed, stats_path
    )
    phase = Phase("ambulink hub", network, members)
    service = hub.alarms
    receipt = service.receipt

    async def timed_receipt(alarm_id: str, member_id: str, role: str) -> None:
        phase.receipts.record(alarm_id, member_id, time.monotonic())
        await receipt(alarm_id, member_id, role)

    service.receipt = timed_receipt  # type: ignore[method-assign]
    vf = AlarmKind.for_rhythm("VF")

    async def raise_alarm(k: int) -> str:
        t0 = time.monotonic()
        await service.on_event(case_id, vf_start(k))
        published = time.monotonic()
        (alarm,) = [a for a in service.ledger.active(case_id) if a.kind is vf]
        phase.receipts.decide(alarm.alarm_id, t0, published)
        return alarm.alarm_id

    async def finish(k: int, alarm_id: str) -> None:
        await service.acknowledge(alarm_id, ACKER, "specialist")
        await service.on_event(case_id, vf_end(k))

    try:
        await alarm_loop(
            args.alarms, budget_of(network, args), args.seed, raise_alarm, finish, phase.receipts
        )
        stats = await phase.stop_members(stats_path)
    finally:
        await members.stop()
        del service.receipt  # the class's method again
    entries = await hub.bus.read(alarms_topic(case_id), after="0", count=1)
    return phase.result(stats), entries[0][1]["json"].decode()


# ---- the peer -----------------------------------------------------------------------------


async def peer_phase(network: Network, template: str, args: argparse.Namespace) -> PhaseResult:
    """The same fan-out with ``websockets.broadcast()``: no store, no bus, no ledger."""
    connections: set[ServerConnection] = set()
    receipts_of: list[Receipts] = []

    async def handler(ws: ServerConnection) -> None:
        await ws.recv()  # {"type": "auth", ...}: not checked
        await ws.send('{"type": "ready"}')
        name = str(id(ws))
        connections.add(ws)
        try:
            async for raw in ws:
                now = time.monotonic()
                message = json.loads(raw)
                if message.get("type") == "receipt" and receipts_of:
                    receipts_of[0].record(str(message["alarm_id"]), name, now)
        except ConnectionClosed:
            pass
        finally:
            connections.discard(ws)

    stats_path = args.work / f"relay-peer-{network.one_way_ms:g}.json"
    async with serve(handler, "127.0.0.1", 0, compression=None, max_size=2**20) as server:
        port = int(next(iter(server.sockets)).getsockname()[1])
        tokens = [f"peer-{i}" for i in range(MEMBERS)]
        members = await start_members(port, "/", tokens, network, args.seed, stats_path)
        phase = Phase("websockets.broadcast()", network, members)
        receipts_of.append(phase.receipts)

        def message(alarm_id: str, effect: str, counter: int) -> str:
            body = json.loads(template)
            body["effect"] = effect
            body["alarm"]["alarm_id"] = alarm_id
            body["alarm"]["counter"] = counter
            return json.dumps(body)

        async def raise_alarm(k: int) -> str:
            alarm_id = uuid.uuid4().hex
            t0 = time.monotonic()
            broadcast(connections, message(alarm_id, "publish", 1))
            phase.receipts.decide(alarm_id, t0, time.monotonic())
            return alarm_id

        async def finish(k: int, alarm_id: str) -> None:
            broadcast(connections, message(alarm_id, "publish", 2))  # the ack
            broadcast(connections, message(alarm_id, "publish", 3))  # the clear

        try:
            await alarm_loop(
                args.alarms,
                budget_of(network, args),
                args.seed,
                raise_alarm,
                finish,
                phase.receipts,
            )
            stats = await phase.stop_members(stats_path)
        finally:
            await members.stop()
    return phase.result(stats)


# ---- the run ------------------------------------------------------------------------------


def machine() -> str:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    python = platform.python_version()
    return f"{platform.platform()}; {model}; {os.cpu_count()} cores; Python {python}"


def commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def table(results: list[PhaseResult]) -> str:
    lines = [
        "| server | network | alarms | pairs | missing | p50 ms | p99 ms | max ms "
        "| last of 8 p50 / p99 ms | published p50 / p99 ms | server CPU % | members CPU % "
        "| relay chunks (held) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---|",
    ]
    for r in results:
        relay = f"{r.relay_chunks} ({r.relay_lost_chunks})" if r.relay_chunks else "—"
        lines.append(
            f"| {r.server} | {r.network} | {r.alarms} | {r.pairs} | {r.missing} | {r.p50_ms} "
            f"| {r.p99_ms} | {r.max_ms} | {r.last_of_8_p50_ms} / {r.last_of_8_p99_ms} "
            f"| {r.published_p50_ms} / {r.published_p99_ms} "
            f"| {r.server_cpu_pct} | {r.members_cpu_pct} | {relay} |"
        )
    return "\n".join(lines)


def budget_of(network: Network, args: argparse.Namespace) -> float:
    budget: float = args.loopback_budget if network is LOOPBACK else args.impaired_budget
    return budget


async def run(args: argparse.Namespace, results: list[PhaseResult]) -> None:
    """The four phases into ``results`` (kept when the run's timeout cuts it short)."""
    async with asyncio.timeout(RUN_TIMEOUT_S):
        template = ""
        async with hub_in_process(args.work / "hub") as (hub, port, issuer):
            for network in (LOOPBACK, IMPAIRED):
                result, template = await hub_phase(hub, port, issuer, network, args)
                results.append(result)
                print(
                    f"hub, {network.name}: p50 {result.p50_ms}, p99 {result.p99_ms} ms", flush=True
                )
        for network in (LOOPBACK, IMPAIRED):
            result = await peer_phase(network, template, args)
            results.append(result)
            print(f"peer, {network.name}: p50 {result.p50_ms}, p99 {result.p99_ms} ms", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alarms", type=int, default=200, help="alarms per phase (at most)")
    parser.add_argument("--loopback-budget", type=float, default=30.0, help="s per phase, at most")
    parser.add_argument("--impaired-budget", type=float, default=55.0, help="s per phase, at most")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    args.work = Path(tempfile.mkdtemp(prefix="ambulink-alarms-"))
    started = time.monotonic()
    results: list[PhaseResult] = []
    try:
        asyncio.run(run(args, results))
    except TimeoutError:
        print(f"the run's {RUN_TIMEOUT_S:g} s limit cut it short", flush=True)
    finally:
        shutil.rmtree(args.work, ignore_errors=True)
    print()
    print(f"machine: {machine()}; websockets {websockets_version}, uvicorn {uvicorn.__version__}")
    print(f"commit: {commit()}; run took {time.monotonic() - started:.0f} s")
    print()
    print(table(results))
    hub = {r.network: r for r in results if r.server == "ambulink hub"}
    peer = {r.network: r for r in results if r.server != "ambulink hub"}
    print()
    for name, ours in hub.items():
        if name not in peer:
            continue
        other = peer[name]
        print(
            f"{name}: hub ÷ peer p50 {ours.p50_ms / other.p50_ms:.1f}, "
            f"p99 {ours.p99_ms / other.p99_ms:.1f}"
        )
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    sys.exit(0)


if __name__ == "__main__":
    main()
