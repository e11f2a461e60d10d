"""The impairment proxy itself: the uplink really goes through it, and a lossy, slow link (5 %
loss, 30 ms each way, seeded) still delivers every frame exactly, by SCTP retransmission."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np

from ambulink.ambulance_client.source import RecordReplay
from ambulink.ambulance_client.uplink import AmbulanceClient, ClientSettings
from ambulink.data import record_path
from tests.e2e.conftest import HubFactory, source_samples, within
from tests.impairment import RelayCounters, host_candidate_port, replace_host_port

SDP = (
    "v=0\r\nm=application 43711 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 127.0.0.1\r\n"
    "a=candidate:16572de6 1 udp 2130706431 127.0.0.1 43711 typ host\r\na=end-of-candidates\r\n"
)


def test_sdp_rewrite_moves_the_host_candidate() -> None:
    assert host_candidate_port(SDP) == 43711
    moved = replace_host_port(SDP, 43711, 50000)
    assert host_candidate_port(moved) == 50000
    assert "m=application 50000 " in moved and "43711" not in moved


async def lossy_scenario(hub_factory: HubFactory, tmp_path: Path) -> tuple[RelayCounters, float]:
    source = RecordReplay(
        record_path("mitdb/100"), block_ms=40.0, speed=4.0, loop=False, start_s=1795.0
    )
    assert source.n_blocks is not None
    last_seq = source.n_blocks - 1
    async with hub_factory() as hub:
        hub.network.loss_pct = 5.0
        hub.network.delay_ms = 30.0
        settings = ClientSettings(hub_url=hub.url, unit_id="amb-4", buffer_dir=tmp_path / "tablet")
        client = AmbulanceClient(settings, source, hub.crew_token("amb-4"))
        stop = asyncio.Event()
        started = time.monotonic()
        running = asyncio.create_task(client.run(until=stop))
        try:
            await within(30, "every frame acked over a lossy link", client.wait_acked(last_seq))
            elapsed = time.monotonic() - started
            assert client.case_id is not None
            stored = await hub.hub.store.read_samples(client.case_id, 1)
        finally:
            stop.set()
            await within(10, "the client stopping", running)
        assert stored.gaps == [] and stored.first_sample == 0
        np.testing.assert_array_equal(stored.samples, source_samples(source, 0, last_seq))
        # Every stored sample crossed the relay (frames are packed several to a message).
        assert hub.network.counters.bytes_to_hub > stored.samples.nbytes
        return hub.network.counters, elapsed


def test_lossy_slow_link_still_delivers_every_frame(
    hub_factory: HubFactory, tmp_path: Path
) -> None:
    counters, elapsed = asyncio.run(lossy_scenario(hub_factory, tmp_path))
    print(f"\nlossy link: {counters}, all acked after {elapsed:.1f} s")
    assert counters.to_hub > 30 and counters.to_client > 30  # the uplink went through it
    assert counters.dropped_loss > 0 and counters.delayed > 0
    assert counters.strangers == 0 and counters.dropped_blackout == 0
