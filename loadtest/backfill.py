"""Backfill rate: one real ``AmbulanceClient`` whose disk buffer already holds ``--gap`` s of
frames made while the hub was unreachable, reconnecting to a hub in its own process.

``python -m loadtest.backfill [--gap 30] [--after 10]``

Set-up: the hub (``loadtest.hub_process``) runs; a case is opened over REST; ``--gap`` s of the
PTB-XL 00003 12-lead record (750 frames of 40 ms for 30 s) are framed exactly as the client
frames them and put into the client's SQLite buffer, with ``case.json`` saying the case started
``--gap`` s ago. This is the state of a tablet whose uplink was cut for ``--gap`` s. Then the
real client starts: it resumes the case from its buffer, makes live frames from seq 750 on, opens
a new peer connection, announces the stream, learns the hub holds nothing and backfills.

Measured (one monotonic clock, one process for client and viewer; the hub apart):

- link up: the client's ``status`` turns UP (the hub answered ``stream_open``);
- backlog stored: the hub's ack covers the last buffered frame (seq 749); backfill rate =
  ``--gap`` s of stream ÷ (backlog stored - link up), as a multiple of real time;
- live latency during backfill, two ways: (a) creation → ack of the live frames (the hub acks
  the highest *contiguous* seq, so a live frame's ack waits for the backlog below it; this is
  durability latency, not display latency), and (b) creation → arrival at a viewer WebSocket
  (``/ws/cases/<id>``, batched ~100 ms by the hub), which is what a clinician sees;
- the same two latencies for the ``--after`` s after the backlog is stored.

A frame's creation time is when the client put it into its buffer (it is sent after that); the
instrumentation wraps the buffer's ``put`` and the client's message handler, nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import numpy as np
from websockets.asyncio.client import connect

from ambulink.ambulance_client.buffer import FrameBuffer
from ambulink.ambulance_client.runner import build_client
from ambulink.ambulance_client.uplink import AmbulanceClient, LinkState
from ambulink.data import record_path
from ambulink.hub.tokens import TokenIssuer
from ambulink.protocol.ecg_frame import encode_ecg_frame, frames_from_samples
from ambulink.rtc import restrict_ice_hosts
from loadtest.hub_process import DEFAULT_SECRET
from loadtest.procs import ServerProcess, cpu_seconds, free_port

RECORD = "ptbxl/00003_hr"
UNIT = "amb-backfill"
SAMPLES_PER_FRAME = 20  # 40 ms at 500 Hz
RUN_TIMEOUT_S = 120.0


@dataclass
class Timeline:
    """Frame creation times, ack arrivals and viewer arrivals (monotonic s), by seq."""

    made: dict[int, float] = field(default_factory=dict)
    acked: dict[int, float] = field(default_factory=dict)  # seq -> first ack covering it
    viewed: dict[int, float] = field(default_factory=dict)
    acked_seq: int = -1

    def ack(self, seq: int, now: float) -> None:
        for s in range(self.acked_seq + 1, seq + 1):
            self.acked[s] = now
        self.acked_seq = max(self.acked_seq, seq)


def instrument(client: AmbulanceClient, timeline: Timeline) -> None:
    """Record when each frame is made (buffer ``put``) and when acks arrive."""
    on_message = client._on_message

    def on_message_timed(data: str | bytes) -> None:
        on_message(data)
        if client.status.acked_seq > timeline.acked_seq:
            timeline.ack(client.status.acked_seq, time.monotonic())

    client._on_message = on_message_timed  # type: ignore[method-assign]


def timed_put(buffer: FrameBuffer, timeline: Timeline) -> None:
    put = buffer.put

    def put_timed(stream_id: int, seq: int, data: bytes) -> None:
        timeline.made[seq] = time.monotonic()
        put(stream_id, seq, data)

    buffer.put = put_timed  # type: ignore[method-assign]


def prefill(folder: Path, case_id: str, gap_frames: int, started_at: float) -> None:
    """The buffer of a tablet that made ``gap_frames`` frames while the hub was unreachable."""
    client_source = build_client(
        record_path(RECORD),
        hub_url="http://127.0.0.1:1",
        unit_id=UNIT,
        buffer_dir=folder,
        token=lambda: "",
    ).source
    folder.mkdir(parents=True, exist_ok=True)
    with FrameBuffer.open(folder / f"{case_id}.sqlite3") as buffer:
        for k in range(gap_frames):
            block = client_source.block_at(k)
            (frame,) = frames_from_samples(
                block.samples,
                stream_id=1,
                fs=client_source.fs,
                gain=client_source.gain,
                first_sample=block.first_sample,
                first_seq=k,
                frame_samples=block.n_samples,
            )
            buffer.put(1, k, encode_ecg_frame(frame))
    (folder / "case.json").write_text(json.dumps({"case_id": case_id, "started_at": started_at}))


async def watch(url: str, token: str, timeline: Timeline, stop: asyncio.Event) -> None:
    """A viewer: note when each frame (by seq) first reaches it."""
    async with connect(url, max_size=2**24) as ws:
        await ws.send(json.dumps({"type": "auth", "token": token}))
        while not stop.is_set():
            try:
                async with asyncio.timeout(0.5):
                    text = await ws.recv()
            except TimeoutError:
                continue
            now = time.monotonic()
            message = json.loads(text)
            if message.get("type") != "waveform":
                continue
            for stream in message["streams"]:
                for chunk in stream["chunks"]:
                    timeline.viewed.setdefault(chunk["first_sample"] // SAMPLES_PER_FRAME, now)


@dataclass
class BackfillResult:
    gap_s: float
    gap_frames: int
    connect_s: float  # client start → link UP
    drain_s: float  # link UP → ack covers the whole backlog
    backlog_frames: int  # the gap plus the frames made while connecting
    rate_x: float  # backlog stream seconds / drain_s
    frames_backfilled: int
    live_ack_during_ms: tuple[float, float, float]  # p50, p99, max
    live_view_during_ms: tuple[float, float, float]
    live_ack_after_ms: tuple[float, float, float]
    live_view_after_ms: tuple[float, float, float]
    hub_cpu_pct_during: float
    lost: int


def _stats(values: list[float]) -> tuple[float, float, float]:
    if not values:
        return (math.nan, math.nan, math.nan)
    ms = np.asarray(values) * 1000
    return (
        round(float(np.percentile(ms, 50)), 1),
        round(float(np.percentile(ms, 99)), 1),
        round(float(ms.max()), 1),
    )


async def run(gap_s: float, after_s: float) -> BackfillResult:
    restrict_ice_hosts(("127.0.0.1",))
    work = Path(tempfile.mkdtemp(prefix="ambulink-backfill-"))
    port = free_port()
    hub = await ServerProcess.start("loadtest.hub_process", port, "--data-dir", str(work / "hub"))
    issuer = TokenIssuer(DEFAULT_SECRET)
    crew: Callable[[], str] = lambda: issuer.mint("tablet", "crew", unit=UNIT)  # noqa: E731
    base = f"http://127.0.0.1:{port}"
    stop = asyncio.Event()
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10.0) as http:
            response = await http.post(
                "/api/cases", json={"unit_id": UNIT}, headers={"Authorization": f"Bearer {crew()}"}
            )
            response.raise_for_status()
            case_id = str(response.json()["case_id"])
        gap_frames = round(gap_s * 1000 / 40)
        folder = work / "tablet"
        prefill(folder, case_id, gap_frames, time.time() - gap_s)
        timeline = Timeline()
        viewer = asyncio.create_task(
            watch(
                f"ws://127.0.0.1:{port}/ws/cases/{case_id}",
                issuer.mint("viewer", "specialist"),
                timeline,
                stop,
            )
        )
        client = build_client(
            record_path(RECORD), hub_url=base, unit_id=UNIT, buffer_dir=folder, token=crew
        )
        instrument(client, timeline)
        original_open = client._open_case

        async def open_case_timed(http: httpx.AsyncClient) -> None:
            await original_open(http)
            timed_put(client.buffer, timeline)

        client._open_case = open_case_timed  # type: ignore[method-assign]
        started = time.monotonic()
        running = asyncio.create_task(client.run(until=stop))
        async with asyncio.timeout(RUN_TIMEOUT_S):
            while client.status.link is not LinkState.UP:
                await asyncio.sleep(0.005)
            up = time.monotonic()
            cpu0 = cpu_seconds(hub.pid)
            # everything made before this connection is backlog: the gap plus the frames made
            # while connecting (the client sends those by backfill too)
            backlog_frames = gap_frames + client.status.frames_made
            while timeline.acked_seq < backlog_frames - 1:
                await asyncio.sleep(0.005)
            drained = time.monotonic()
            cpu1 = cpu_seconds(hub.pid)
            await asyncio.sleep(after_s)
        end = time.monotonic()
        made_final = client.status.frames_made
        backfilled = client.status.backfilled
        # let the last live frames' acks arrive, then stop
        deadline = time.monotonic() + 10.0
        while timeline.acked_seq < gap_frames + made_final - 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        lost = gap_frames + made_final - 1 - timeline.acked_seq
        stop.set()
        await running
        await viewer

        def latencies(table: dict[int, float], lo: float, hi: float) -> list[float]:
            return [
                table[s] - t
                for s, t in timeline.made.items()
                if lo <= t < hi and s in table and s >= gap_frames
            ]

        return BackfillResult(
            gap_s=gap_s,
            gap_frames=gap_frames,
            connect_s=round(up - started, 3),
            drain_s=round(drained - up, 3),
            backlog_frames=backlog_frames,
            rate_x=round(backlog_frames * 0.040 / (drained - up), 1),
            frames_backfilled=backfilled,
            live_ack_during_ms=_stats(latencies(timeline.acked, up, drained)),
            live_view_during_ms=_stats(latencies(timeline.viewed, up, drained)),
            live_ack_after_ms=_stats(latencies(timeline.acked, drained, end)),
            live_view_after_ms=_stats(latencies(timeline.viewed, drained, end)),
            hub_cpu_pct_during=round(100 * (cpu1 - cpu0) / (drained - up), 1),
            lost=lost,
        )
    finally:
        stop.set()
        await hub.stop()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gap", type=float, default=30.0, help="stream seconds buffered, s")
    parser.add_argument("--after", type=float, default=10.0, help="live time after backfill, s")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.gap, args.after))
    for key, value in asdict(result).items():
        print(f"{key}: {value}")
    if args.json is not None:
        args.json.write_text(json.dumps(asdict(result), indent=2))


if __name__ == "__main__":
    main()
