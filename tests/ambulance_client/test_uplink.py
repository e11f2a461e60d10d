"""The ambulance client without a hub: production into the disk buffer goes on, and ends cleanly
when a replay without loop runs out. Over real WebRTC: tests/e2e/test_uplink_*.py."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from ambulink.ambulance_client.backoff import Backoff
from ambulink.ambulance_client.source import RecordReplay
from ambulink.ambulance_client.uplink import AmbulanceClient, ClientSettings, LinkState
from ambulink.data import record_path
from ambulink.protocol.ecg_frame import decode_ecg_frame


async def _replay_to_the_end(folder: Path) -> tuple[AmbulanceClient, list[tuple[int, bytes]]]:
    with socket.socket() as closed_port:  # bound, never listening: connections are refused
        closed_port.bind(("127.0.0.1", 0))
        port = closed_port.getsockname()[1]
        source = RecordReplay(
            record_path("mitdb/100"), block_ms=40.0, speed=50.0, loop=False, start_s=1803.0
        )
        settings = ClientSettings(
            hub_url=f"http://127.0.0.1:{port}",
            unit_id="amb-1",
            buffer_dir=folder,
            case_id="case-1",
        )
        client = AmbulanceClient(
            settings, source, lambda: "no-token", backoff=Backoff(base_s=0.05, cap_s=0.1)
        )
        stop = asyncio.Event()
        running = asyncio.create_task(client.run(until=stop))
        try:
            async with asyncio.timeout(10):
                await client.produced.wait()
                await client.wait_link(LinkState.UNREACHABLE)
            assert client.status.frames_made == source.n_blocks
            held = client.buffer.pending(1, -1, limit=1000)
        finally:
            stop.set()
            async with asyncio.timeout(10):
                await running  # raises if production failed at the end of the record
        return client, held


def test_a_finite_replay_ends_without_ending_the_client(tmp_path: Path) -> None:
    client, held = asyncio.run(_replay_to_the_end(tmp_path))
    source = client.source
    assert source.n_blocks is not None and source.n_blocks > 50
    assert client.status.frames_made == source.n_blocks
    assert [seq for seq, _ in held] == list(range(source.n_blocks))  # unacked: all kept
    last = decode_ecg_frame(held[-1][1])
    assert last.first_sample + last.n_samples == source.n_samples
    assert client.status.connections == 0


def test_closing_the_peer_connection_is_not_cut_short_by_a_cancellation() -> None:
    # aioice closes only the sockets it has registered: a close or an ICE gathering cut short
    # by the client stopping would leave UDP sockets open, once per reconnect.
    from ambulink.ambulance_client.uplink import _uninterrupted

    async def scenario() -> list[str]:
        steps: list[str] = []
        started, release = asyncio.Event(), asyncio.Event()

        async def close() -> str:
            steps.append("closing")
            started.set()
            await release.wait()
            steps.append("closed")
            return "done"

        waiting = asyncio.create_task(_uninterrupted(close()))
        await started.wait()
        waiting.cancel()  # the client stops while the close is under way
        release.set()
        try:
            await waiting
        except asyncio.CancelledError:
            steps.append("cancelled after")
        return steps

    assert asyncio.run(scenario()) == ["closing", "closed", "cancelled after"]
