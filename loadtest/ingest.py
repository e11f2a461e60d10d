"""Ingest capacity: N simulated ambulances into one hub process, and the same load into a bare
``websockets`` echo peer, step by step, in one run.

``python -m loadtest.ingest [--steps 5,10,20,40] [--warmup 5] [--window 30] [--json out.json]``

Per step N, first against the hub, then against the echo peer, each in a fresh child process:

1. start the server process (``loadtest.hub_process`` / ``loadtest.echo_process``);
2. connect N ambulances (``loadtest.senders``), each streaming PTB-XL 00003 (12 leads, 500 Hz,
   looping) in 40 ms frames, vitals every 2 s and heartbeats at 1 Hz, phases spread over 40 ms;
3. after ``--warmup`` s, measure for ``--window`` s: the server's CPU (utime + stime from
   ``/proc/<pid>/stat``), the generator's own CPU, the whole machine's busy time, and the
   latency (creation → ack) of every frame created in the window;
4. stop sending, wait up to ``--drain`` s for the last acks; frames lost = made - acked.

The hub passes a step when p99 ≤ 250 ms and nothing is lost. Steps stop after the first failing
hub step. Everything runs on 127.0.0.1, each step is bounded (connect, warm-up, window, drain,
stop timeouts), and the run ends by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import numpy as np

from ambulink.data import record_path
from ambulink.hub.tokens import TokenIssuer
from ambulink.rtc import restrict_ice_hosts
from loadtest.hub_process import DEFAULT_SECRET, STATS_PATH
from loadtest.procs import (
    ServerProcess,
    cpu_seconds,
    free_port,
    machine_busy_seconds,
    thread_cpu_seconds,
    tree_cpu_seconds,
)
from loadtest.senders import BLOCK_MS, Ambulance, LightAmbulance, WsAmbulance

RECORD = "ptbxl/00003_hr"
P99_BAR_S = 0.250
CONNECT_CONCURRENCY = 4
STEP_CONNECT_TIMEOUT_S = 120.0


@dataclass
class StepResult:
    target: str  # "hub" or "echo"
    n: int
    connected: int
    window_s: float
    server_cpu_pct: float  # % of one core
    generator_cpu_pct: float
    machine_busy_pct: float  # % of one core, all cores summed (200 % = both cores busy)
    frames_in_window: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    send_lag_p99_ms: float  # the generator's own lateness
    made: int
    lost: int
    analysis_backlog_batches: int | None = None
    analysis_lag_frames: int | None = None
    acks_per_frame: float | None = None  # hub acks sent / frames received (whole run)
    server_threads_pct: dict[str, float] = field(default_factory=dict)  # % of a core by thread
    error: str | None = None

    @property
    def passed(self) -> bool:
        return (
            self.error is None
            and self.connected == self.n
            and self.p99_ms <= P99_BAR_S * 1000
            and self.lost == 0
        )

    @property
    def other_cpu_pct(self) -> float:
        """CPU used by everything else on the machine in the window (% of one core)."""
        return max(0.0, self.machine_busy_pct - self.server_cpu_pct - self.generator_cpu_pct)

    @property
    def cpu_pct_per_ambulance(self) -> float:
        return self.server_cpu_pct / self.n

    @property
    def ambulances_per_core(self) -> float:
        return self.n / (self.server_cpu_pct / 100.0) if self.server_cpu_pct > 0 else math.inf


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000 if values else math.nan


async def _connect_all(ambulances: list[Ambulance]) -> tuple[int, str | None]:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    errors: list[str] = []

    async def one(ambulance: Ambulance) -> bool:
        async with gate:
            try:
                await ambulance.connect()
                return True
            except Exception as exc:  # reported in the step's result, never swallowed silently
                errors.append(f"{ambulance.unit_id}: {type(exc).__name__}: {exc}")
                return False

    try:
        async with asyncio.timeout(STEP_CONNECT_TIMEOUT_S):
            done = await asyncio.gather(*(one(a) for a in ambulances))
    except TimeoutError:
        return 0, f"connecting {len(ambulances)} ambulances took > {STEP_CONNECT_TIMEOUT_S} s"
    return sum(done), (errors[0] if errors else None)


async def _hub_stats(http: httpx.AsyncClient | None) -> dict[str, object] | None:
    if http is None:
        return None
    try:
        response = await http.get(STATS_PATH, timeout=5.0)
        stats: dict[str, object] = response.json()
        return stats
    except httpx.HTTPError:
        return None


def _acks_per_frame(stats: dict[str, object] | None) -> float | None:
    if stats is None:
        return None
    acks, frames = stats.get("acks"), stats.get("frames")
    if not isinstance(acks, int) or not isinstance(frames, int) or frames == 0:
        return None
    return round(acks / frames, 3)


def _by_thread(
    before: dict[int, float],
    after: dict[int, float],
    stats: dict[str, object] | None,
    pid: int,
    elapsed: float,
) -> dict[str, float]:
    """CPU % of a core per server thread group: event loop, store, analysis, other."""
    names: dict[int, str] = {pid: "MainThread"}
    threads = stats.get("threads") if stats is not None else None
    if isinstance(threads, dict):
        names.update({int(tid): str(name) for name, tid in threads.items()})
    groups: dict[str, float] = {}
    for tid, cpu in after.items():
        name = names.get(tid, "other")
        group = (
            "event loop"
            if name == "MainThread"
            else "store"
            if "store" in name
            else "analysis"
            if "analysis" in name
            else "other"
        )
        groups[group] = groups.get(group, 0.0) + cpu - before.get(tid, 0.0)
    return {k: round(100 * v / elapsed, 1) for k, v in sorted(groups.items())}


async def run_step(
    target: str,
    n: int,
    *,
    warmup_s: float,
    window_s: float,
    drain_s: float,
    work: Path,
    profile_dir: Path | None = None,
    pack: int = 1,
) -> StepResult:
    port = free_port()
    data_dir = work / f"{target}-{n}"
    if target == "hub":
        server = await ServerProcess.start(
            "loadtest.hub_process", port, "--data-dir", str(data_dir)
        )
    else:
        server = await ServerProcess.start("loadtest.echo_process", port)
    http: httpx.AsyncClient | None = None
    ambulances: list[Ambulance] = []
    stop = asyncio.Event()
    streams: list[asyncio.Task[None]] = []
    try:
        record = record_path(RECORD)
        if target == "hub":
            http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30.0)
            issuer = TokenIssuer(DEFAULT_SECRET)
            ambulances = [
                LightAmbulance(
                    f"amb-{i}", record, http, issuer.mint(f"lt-{i}", "crew", unit=f"amb-{i}")
                )
                for i in range(n)
            ]
        else:
            ambulances = [
                WsAmbulance(f"amb-{i}", record, f"ws://127.0.0.1:{port}/") for i in range(n)
            ]
        for ambulance in ambulances:
            ambulance.pack = pack
        connected, error = await _connect_all(ambulances)
        period = BLOCK_MS / 1000.0
        streams = [
            asyncio.create_task(a.stream(stop, period * i / n)) for i, a in enumerate(ambulances)
        ]
        await asyncio.sleep(warmup_s)
        t0 = time.monotonic()
        window = (t0, t0 + window_s)
        for a in ambulances:
            a.log.window = window
        threads0 = thread_cpu_seconds(server.pid)
        own0 = cpu_seconds(server.pid)
        server0, me0, busy0 = (
            tree_cpu_seconds(server.pid),  # with the analysis worker process
            cpu_seconds(os.getpid()),
            machine_busy_seconds(),
        )
        profiler = None
        if profile_dir is not None and target == "hub":
            profiler = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).with_name("py-spy")),
                "record",
                "--pid",
                str(server.pid),
                "--duration",
                str(int(window_s)),
                "--rate",
                "50",
                "--format",
                "raw",
                "--threads",
                "--nonblocking",
                "--output",
                str(profile_dir / f"hub-{n}.txt"),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
        await asyncio.sleep(window_s)
        elapsed = time.monotonic() - t0
        own1 = cpu_seconds(server.pid)
        server1, me1, busy1 = (
            tree_cpu_seconds(server.pid),
            cpu_seconds(os.getpid()),
            machine_busy_seconds(),
        )
        threads1 = thread_cpu_seconds(server.pid)
        stats_end = await _hub_stats(http)
        by_thread = _by_thread(threads0, threads1, stats_end, server.pid, elapsed)
        workers = (server1 - server0) - (own1 - own0)
        if workers > 0.01 * elapsed:
            by_thread["worker processes"] = round(100 * workers / elapsed, 1)
        if profiler is not None:
            await profiler.wait()
        stop.set()
        await asyncio.gather(*streams, return_exceptions=True)
        deadline = time.monotonic() + drain_s
        while time.monotonic() < deadline and any(a.log.unacked for a in ambulances):
            await asyncio.sleep(0.1)
        latencies = [x for a in ambulances for x in a.log.latencies]
        lags = [x for a in ambulances for x in a.send_lag]
        backlog = lag = None
        if stats_end is not None and stats_end.get("ready"):
            backlog_value = stats_end.get("analysis_backlog_batches")
            backlog = int(backlog_value) if isinstance(backlog_value, int) else None
            analysed = stats_end.get("analysed_seq")
            if isinstance(analysed, dict) and analysed:
                made_now = statistics.median(a.log.made for a in ambulances)
                lag = int(made_now - min(int(v) for v in analysed.values()) - 1)
        return StepResult(
            target=target,
            n=n,
            connected=connected,
            window_s=round(elapsed, 2),
            server_cpu_pct=round(100 * (server1 - server0) / elapsed, 1),
            generator_cpu_pct=round(100 * (me1 - me0) / elapsed, 1),
            machine_busy_pct=round(100 * (busy1 - busy0) / elapsed, 1),
            frames_in_window=len(latencies),
            p50_ms=round(_pct(latencies, 50), 1),
            p99_ms=round(_pct(latencies, 99), 1),
            max_ms=round(max(latencies) * 1000, 1) if latencies else math.nan,
            send_lag_p99_ms=round(_pct(lags, 99), 1),
            made=sum(a.log.made for a in ambulances),
            lost=sum(a.log.unacked for a in ambulances),
            analysis_backlog_batches=backlog,
            analysis_lag_frames=lag,
            acks_per_frame=_acks_per_frame(stats_end),
            server_threads_pct=by_thread,
            error=error,
        )
    finally:
        stop.set()
        for task in streams:
            task.cancel()
        await asyncio.gather(*streams, return_exceptions=True)
        await asyncio.gather(*(a.close() for a in ambulances), return_exceptions=True)
        if http is not None:
            await http.aclose()
        await server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def _row(r: StepResult) -> str:
    backlog = "—" if r.analysis_lag_frames is None else f"{r.analysis_lag_frames}"
    verdict = "pass" if r.passed else "FAIL"
    return (
        f"| {r.target} | {r.n} | {r.connected} | {r.server_cpu_pct:.1f} | "
        f"{r.cpu_pct_per_ambulance:.2f} | {r.generator_cpu_pct:.1f} | {r.other_cpu_pct:.1f} | "
        f"{r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.max_ms:.1f} | {r.send_lag_p99_ms:.1f} | "
        f"{r.made} | {r.lost} | {backlog} | {verdict} |"
    )


HEADER = (
    "| ingest | N | connected | server CPU % of a core | CPU %/ambulance | generator CPU % | "
    "other processes CPU % | p50 ms | p99 ms | max ms | generator lag p99 ms | frames made | "
    "lost | analysis lag (frames) | p99 ≤ 250 ms, 0 lost |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
)


def summary(results: list[StepResult]) -> list[str]:
    lines = [HEADER, *(_row(r) for r in results)]
    hub = {r.n: r for r in results if r.target == "hub"}
    echo = {r.n: r for r in results if r.target == "echo"}
    passing = [r for r in hub.values() if r.passed]
    lines.append("")
    if passing:
        best = max(passing, key=lambda r: r.n)
        lines.append(
            f"- largest passing hub step: N = {best.n}, hub CPU {best.server_cpu_pct:.1f} % of "
            f"a core → {best.ambulances_per_core:.0f} ambulances per hub core"
        )
    else:
        lines.append("- no hub step passed (p99 ≤ 250 ms and 0 lost)")
    for n in sorted(hub):
        if n in echo and echo[n].server_cpu_pct > 0:
            ratio = hub[n].cpu_pct_per_ambulance / echo[n].cpu_pct_per_ambulance
            lines.append(
                f"- N = {n}: hub CPU per ambulance ÷ echo's = {ratio:.1f} "
                f"({hub[n].cpu_pct_per_ambulance:.2f} % vs {echo[n].cpu_pct_per_ambulance:.2f} %"
                f" of a core; echo ≈ {echo[n].ambulances_per_core:.0f} ambulances per core)"
            )
    return lines


async def main_async(args: argparse.Namespace) -> list[StepResult]:
    restrict_ice_hosts(("127.0.0.1",))  # all WebRTC on loopback
    work = Path(tempfile.mkdtemp(prefix="ambulink-loadtest-"))
    results: list[StepResult] = []
    started = time.monotonic()
    try:
        for n in args.steps:
            if time.monotonic() - started > args.budget:
                print(f"time budget of {args.budget:.0f} s spent; not running N = {n}")
                break
            for target in ("hub", "echo"):
                result = await run_step(
                    target,
                    n,
                    warmup_s=args.warmup,
                    window_s=args.window if target == "hub" else args.echo_window,
                    drain_s=args.drain,
                    work=work,
                    profile_dir=args.profile,
                    pack=args.pack,
                )
                results.append(result)
                print(_row(result), flush=True)
                if result.server_threads_pct:
                    print(
                        f"  {target} CPU by thread (% of a core): {result.server_threads_pct}"
                        + (
                            f"; acks per frame {result.acks_per_frame}"
                            if result.acks_per_frame is not None
                            else ""
                        )
                    )
                if result.error:
                    print(f"  error: {result.error}", flush=True)
            if not results[-2].passed:
                break  # the hub failed this step: larger ones will too
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--steps", type=lambda s: [int(x) for x in s.split(",")], default=[5, 10, 20, 40]
    )
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--window", type=float, default=30.0, help="hub window, s")
    parser.add_argument("--echo-window", type=float, default=20.0, help="echo window, s")
    parser.add_argument("--drain", type=float, default=10.0)
    parser.add_argument("--budget", type=float, default=480.0, help="no new step after this, s")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="py-spy the hub during each window (folded stacks, hub-N.txt in this folder)",
    )
    parser.add_argument(
        "--pack",
        type=int,
        default=3,
        help="40 ms frames per data-channel message (the client's 120 ms live pacing packs 3; "
        "1 = one frame per message as before)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)
    print(
        f"machine: {platform.platform()}; {platform.processor() or 'cpu'}; "
        f"{os.cpu_count()} cores; Python {platform.python_version()}"
    )
    print(HEADER, flush=True)
    results = asyncio.run(main_async(args))
    print()
    for line in summary(results)[len(HEADER.splitlines()) + len(results) :]:
        print(line)
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                [asdict(r) | {"passed": r.passed} for r in results], indent=2, allow_nan=True
            )
        )


if __name__ == "__main__":
    main()
