"""A 30 s uplink outage over real WebRTC on loopback loses no sample (DESIGN §3.3).

A real record (MIT-BIH 100, its last 44 s) is replayed at 2x real time through the real client,
the impairment relay and a real hub. After 10 s of stream the relay blacks out for 30 s of
stream time (15 s of wall time at 2x; the hub's and the client's heartbeat timers run on wall
time, so both see a 15 s silence, well past their 3 s limits). The client declares the hub
unreachable and reconnects with a new peer connection (new relay, new ports) once the blackout
ends; the hub's WFDB export must then equal the source record sample for sample.

The negative case shows this test can fail: the same scenario with a buffer that forgets its
frames when the outage starts (as a client without the disk buffer would) leaves a gap exactly
where the outage was, and the positive check rejects it.
"""

from __future__ import annotations

import asyncio
import io
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
import wfdb
from numpy.typing import NDArray

from ambulink.ambulance_client.buffer import FrameBuffer
from ambulink.ambulance_client.source import RecordReplay
from ambulink.ambulance_client.uplink import AmbulanceClient, ClientSettings, LinkState
from ambulink.data import record_path
from tests.e2e.conftest import HubFactory, poll_until, source_samples, within

RECORD = "mitdb/100"
SPEED = 2.0  # x real time
BLOCK_S = 0.040
STREAM_S = 44.0  # the replay: the record's last 44 s, then the source ends
BEFORE_S = 10.0  # stream seconds before the outage
OUTAGE_S = 30.0  # stream seconds of outage (15 s of wall time at 2x)
BACKFILL_BAR_S = 10.0  # DESIGN §5: backfill of a 30 s gap in <= 10 s
WFDB_INVALID = -32768


class AmnesicBuffer(FrameBuffer):
    """The disk buffer, until ``forget`` is set: then it offers nothing to backfill."""

    forget = False

    def pending(
        self, stream_id: int, after_seq: int = -1, limit: int = 500
    ) -> list[tuple[int, bytes]]:
        return [] if self.forget else super().pending(stream_id, after_seq, limit)


@dataclass
class OutageRun:
    source: RecordReplay
    last_seq: int  # N: the source's last block
    outage_first_seq: int  # first frame made during the blackout
    outage_last_seq: int  # last frame made before the blackout ended
    outage_stream_s: float
    outage_wall_s: float
    connections: int
    lift_to_up_s: float
    backfill_s: float | None  # link up again -> hub acks the last frame of the gap
    gap_last_seq: int
    exported: NDArray[np.int16]  # the hub's WFDB export, ADC units, (n, leads)
    stored_gaps: list[tuple[int, int]]
    acked_seq: int
    client_ports: set[int]  # the client's UDP ports that carried traffic (one per connection)


async def export_wfdb(base_url: str, token: str, case_id: str, folder: Path) -> NDArray[np.int16]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10.0) as http:
        response = await http.get(
            f"/api/cases/{case_id}/streams/1/wfdb", headers={"Authorization": f"Bearer {token}"}
        )
    response.raise_for_status()
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        archive.extractall(folder)
    (header,) = folder.glob("*.hea")
    record = wfdb.rdrecord(str(header.with_suffix("")), physical=False)
    return np.asarray(record.d_signal, dtype=np.int16)


async def outage_scenario(hub_factory: HubFactory, tmp_path: Path, *, backfill: bool) -> OutageRun:
    whole = RecordReplay(record_path(RECORD), loop=False)
    length_s = whole.n_samples / whole.fs
    source = RecordReplay(
        record_path(RECORD),
        block_ms=BLOCK_S * 1000,
        speed=SPEED,
        loop=False,
        start_s=length_s - STREAM_S,
    )
    assert source.n_blocks is not None
    last_seq = source.n_blocks - 1
    async with hub_factory() as hub:
        settings = ClientSettings(hub_url=hub.url, unit_id="amb-7", buffer_dir=tmp_path / "tablet")
        client = AmbulanceClient(
            settings, source, hub.crew_token("amb-7"), open_buffer=AmnesicBuffer.open
        )
        stop = asyncio.Event()
        running = asyncio.create_task(client.run(until=stop))
        try:
            await within(20, "first ack of 10 s of stream", client.wait_acked(249))
            assert client.status.connections == 1
            assert hub.network.counters.to_hub > 0 and hub.network.counters.to_client > 0

            buffer = client.buffer
            assert isinstance(buffer, AmnesicBuffer)
            buffer.forget = not backfill
            hub.network.blackout(True)
            t_black = time.monotonic()
            outage_first = client.status.frames_made
            outage_frames = round(OUTAGE_S / BLOCK_S)
            await poll_until(
                lambda: client.status.frames_made >= outage_first + outage_frames,
                OUTAGE_S / SPEED + 5,
                "30 s of stream made during the blackout",
            )
            assert client.status.link is not LinkState.UP, "the client missed the outage"
            hub.network.blackout(False)
            t_lift = time.monotonic()
            outage_last = client.status.frames_made - 1

            def up_again() -> float | None:
                ups = [t for t, s in client.status.history if s == "up" and t >= t_lift]
                return ups[0] if ups else None

            # Worst case: an attempt begun in the blackout waits out its 10 s connect timeout, then
            # a backoff of up to 5 s.
            await poll_until(lambda: up_again() is not None, 25, "the link up again")
            t_up = up_again()
            assert t_up is not None
            gap_last = client.status.frames_made - 1  # every frame made before the link was up
            backfill_s = None
            if backfill:
                await within(15, "backfill of the gap", client.wait_acked(gap_last))
                backfill_s = time.monotonic() - t_up
            assert client.case_id is not None
            end = source.block_at(last_seq).first_sample + source.block_at(last_seq).n_samples
            # Without backfill only frames made after the link came back can still arrive; if
            # the replay ended before that (a slow reconnect), there is nothing more to wait for.
            if backfill or last_seq > gap_last:
                await hub.wait_stored_through(client.case_id, end, timeout_s=STREAM_S / SPEED)
            if backfill:
                await within(10, "the ack of the last frame", client.wait_acked(last_seq))
            exported = await export_wfdb(
                hub.url, hub.crew_token("amb-7")(), client.case_id, tmp_path / "export"
            )
            stored = await hub.hub.store.read_samples(client.case_id, 1)
            assert hub.network.counters.strangers == 0, "packets from unexpected addresses"
            return OutageRun(
                source=source,
                last_seq=last_seq,
                outage_first_seq=outage_first,
                outage_last_seq=outage_last,
                outage_stream_s=(outage_last + 1 - outage_first) * BLOCK_S,
                outage_wall_s=t_lift - t_black,
                connections=client.status.connections,
                lift_to_up_s=t_up - t_lift,
                backfill_s=backfill_s,
                gap_last_seq=gap_last,
                exported=exported,
                stored_gaps=stored.gaps,
                acked_seq=client.status.acked_seq,
                client_ports={
                    r.client_addr[1] for r in hub.network.relays if r.counters.to_hub > 0
                },
            )
        finally:
            stop.set()
            await within(10, "the client stopping", running)


def assert_equals_source(run: OutageRun) -> None:
    """The export holds blocks 0..N of the source, sample for sample, with no gap."""
    expected = source_samples(run.source, 0, run.last_seq)
    missing = np.flatnonzero((run.exported == WFDB_INVALID).any(axis=1))
    assert missing.size == 0, (
        f"gap: {missing.size} samples missing, stream samples {missing[0]}..{missing[-1]}"
    )
    assert run.stored_gaps == []
    assert run.exported.shape == expected.shape
    np.testing.assert_array_equal(run.exported, expected)


@pytest.mark.parametrize("backfill", [True, False], ids=["disk-buffer", "buffer-forgets"])
def test_30_s_outage_loses_no_sample(
    hub_factory: HubFactory, tmp_path: Path, backfill: bool
) -> None:
    run = asyncio.run(outage_scenario(hub_factory, tmp_path, backfill=backfill))
    print(
        f"\noutage: {run.outage_stream_s:.1f} s of stream ({run.outage_wall_s:.1f} s wall at "
        f"{SPEED:g}x), seqs {run.outage_first_seq}..{run.outage_last_seq}; link up "
        f"{run.lift_to_up_s:.2f} s after the blackout ended; connections {run.connections}; "
        f"backfill to seq {run.gap_last_seq}: "
        + (
            "-"
            if run.backfill_s is None
            else f"{run.backfill_s:.2f} s after link up "
            f"({run.lift_to_up_s + run.backfill_s:.2f} s after the blackout ended)"
        )
    )
    assert run.outage_stream_s >= OUTAGE_S
    assert run.connections >= 2, "the client never made a new peer connection"
    assert len(run.client_ports) >= 2, "the new connection kept the old source port"
    if backfill:
        assert_equals_source(run)
        assert run.backfill_s is not None and run.backfill_s <= BACKFILL_BAR_S
        assert run.acked_seq == run.last_seq
    else:
        # Without backfill the outage's frames never reach the hub: a hole where the outage was
        # (frames made after the link came back are stored past it), or, when the replay ended
        # before the link came back, a stream that stops at the outage.
        first = run.source.block_at(run.outage_first_seq).first_sample
        outage_end = run.source.block_at(run.outage_last_seq).first_sample
        # (The hole may begin a few frames early: frames waiting to share a message when the
        # blackout began were sent into it.)
        hole = any(a < outage_end and b > first for a, b in run.stored_gaps)
        stopped = len(run.exported) <= outage_end
        assert hole or stopped, "the outage's frames reached the hub without backfill"
        if hole:
            with pytest.raises(AssertionError, match="gap"):
                assert_equals_source(run)
        assert run.acked_seq < run.outage_first_seq
