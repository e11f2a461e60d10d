"""A tablet killed mid-write and restarted loses nothing (DESIGN §3.3).

The client runs in a subprocess (``runner.run_client``, buffer in ``tmp_path``) while the relay
is blacked out, so the hub acks nothing and every frame lives only in the disk buffer. It is
killed with SIGKILL at an arbitrary point of its 40 ms write cycle, restarted on the same buffer
directory (it resumes the case named in ``case.json``), and the blackout ends: every frame made
before the kill must end up in the hub's store, sample for sample.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
from pathlib import Path

import numpy as np

from ambulink.ambulance_client.buffer import FrameBuffer
from ambulink.ambulance_client.source import RecordReplay
from ambulink.data import record_path
from ambulink.protocol.ecg_frame import decode_ecg_frame
from tests.e2e.conftest import HubFactory, RunningHub, poll_until, source_samples, within

RECORD = "mitdb/100"
UNIT = "amb-2"
SPEED = 4.0
FRAMES_BEFORE_KILL = 150  # 6 s of stream, 1.5 s of wall time at 4x

CLIENT = """
import asyncio, os, sys
from pathlib import Path
from ambulink.ambulance_client.runner import run_client

record, hub_url, unit, buffer_dir, speed = sys.argv[1:6]
token = os.environ["AMBULINK_E2E_TOKEN"]
asyncio.run(run_client(record, hub_url=hub_url, unit_id=unit, buffer_dir=Path(buffer_dir),
                       token=lambda: token, speed=float(speed), vitals=False, loopback=True))
"""


async def start_client(hub: RunningHub, buffer_dir: Path, log: Path) -> asyncio.subprocess.Process:
    env = {**os.environ, "AMBULINK_E2E_TOKEN": hub.crew_token(UNIT)()}
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CLIENT,
            record_path(RECORD),
            hub.url,
            UNIT,
            str(buffer_dir),
            str(SPEED),
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )


def frames_buffered(buffer_dir: Path) -> int:
    """``next_seq`` of stream 1 in the client's buffer (read beside the running client)."""
    state = buffer_dir / "case.json"
    if not state.exists():
        return 0
    path = buffer_dir / f"{json.loads(state.read_text())['case_id']}.sqlite3"
    if not path.exists():
        return 0
    conn = sqlite3.connect(path, timeout=1.0)
    try:
        row = conn.execute("SELECT next_seq FROM streams WHERE stream_id = 1").fetchone()
    except sqlite3.OperationalError:  # the tables are not there yet
        return 0
    finally:
        conn.close()
    return 0 if row is None else int(row[0])


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGKILL)
    await within(10, "the client process ending", process.wait())


async def restart_scenario(hub_factory: HubFactory, tmp_path: Path) -> None:
    buffer_dir = tmp_path / "tablet"
    log = tmp_path / "client.log"
    source = RecordReplay(record_path(RECORD), block_ms=40.0, speed=SPEED)
    async with hub_factory() as hub:
        hub.network.blackout(True)
        first = await start_client(hub, buffer_dir, log)
        try:
            await poll_until(
                lambda: frames_buffered(buffer_dir) >= FRAMES_BEFORE_KILL,
                30,
                f"{FRAMES_BEFORE_KILL} frames in the client's buffer",
            )
        finally:
            await stop(first)  # SIGKILL, mid-write or not
        assert first.returncode == -signal.SIGKILL, log.read_text()
        case_id = json.loads((buffer_dir / "case.json").read_text())["case_id"]
        assert await hub.stream(case_id) is None, "the hub got data through the blackout"

        with FrameBuffer.open(buffer_dir / f"{case_id}.sqlite3") as buffer:
            made = buffer.next_seq(1)
            held = buffer.pending(1, -1, limit=made + 1)
        assert made >= FRAMES_BEFORE_KILL
        assert [seq for seq, _ in held] == list(range(made)), "the buffer lost frames"
        for seq, data in held[:: max(1, made // 20)]:
            frame = decode_ecg_frame(data)
            np.testing.assert_array_equal(frame.samples, source.block_at(seq).samples)

        second = await start_client(hub, buffer_dir, log)
        try:
            hub.network.blackout(False)
            last = source.block_at(made - 1)
            await hub.wait_contiguous(case_id, made - 1, 30)
            stored = await hub.hub.store.read_samples(case_id, 1)
        finally:
            await stop(second)
        assert [c.case_id for c in await hub.hub.store.list_cases()] == [case_id]
        assert stored.first_sample == 0
        end = last.first_sample + last.n_samples
        assert [g for g in stored.gaps if g[0] < end] == []
        np.testing.assert_array_equal(stored.samples[:end], source_samples(source, 0, made - 1))
        assert hub.network.counters.forwarded > 0 and hub.network.counters.strangers == 0
        print(f"\nrestart: {made} frames made before SIGKILL, all stored after the restart")


def test_client_killed_mid_write_resumes_from_its_buffer(
    hub_factory: HubFactory, tmp_path: Path
) -> None:
    asyncio.run(restart_scenario(hub_factory, tmp_path))
