"""End-to-end fixtures: a real hub in this process (uvicorn on a free loopback port), the
impairment proxy in the path of every uplink, and helpers that await conditions under timeouts.

Tests are synchronous and call ``asyncio.run`` themselves; the hub, the relays and in-process
clients then share that one event loop. WebRTC stays on loopback (``ice_host_addresses``).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from ambulink.ambulance_client.media import MediaChoice
from ambulink.ambulance_client.source import RecordReplay
from ambulink.ambulance_client.uplink import AmbulanceClient, ClientSettings
from ambulink.data import record_path
from ambulink.hub.app import Hub, create_app
from ambulink.hub.serving import bind_loopback, serving
from ambulink.hub.settings import HubSettings
from ambulink.hub.store_types import StreamInfo
from ambulink.hub.tokens import TokenIssuer
from tests.impairment import ImpairedNetwork, RelayedSignalling

POLL_S = 0.05


async def poll_until(
    condition: Callable[[], bool], timeout_s: float, what: str, every_s: float = POLL_S
) -> float:
    """Check ``condition`` every ``every_s`` until true (returns the monotonic time it was
    seen true); ``TimeoutError`` naming ``what`` after ``timeout_s``. Only where no event exists."""
    try:
        async with asyncio.timeout(timeout_s):
            while not condition():
                await asyncio.sleep(every_s)
    except TimeoutError:
        raise TimeoutError(f"{what}: not within {timeout_s} s") from None
    return time.monotonic()


async def within(timeout_s: float, what: str, awaitable: Awaitable[Any]) -> Any:
    """``await awaitable`` under a timeout whose error names ``what``."""
    try:
        async with asyncio.timeout(timeout_s):
            return await awaitable
    except TimeoutError:
        raise TimeoutError(f"{what}: not within {timeout_s} s") from None


@dataclass
class RunningHub:
    """A hub serving on ``url``, with every uplink relayed through ``network``."""

    url: str
    hub: Hub
    network: ImpairedNetwork
    issuer: TokenIssuer
    data_dir: Path

    def crew_token(self, unit_id: str) -> Callable[[], str]:
        return lambda: self.issuer.mint(f"tablet-{unit_id}", "crew", unit=unit_id)

    def camera_client(
        self, unit_id: str, buffer_dir: Path, record: str = "mitdb/100"
    ) -> AmbulanceClient:
        """The real tablet agent replaying ``record`` in 40 ms frames, with the numbered test
        pattern as its camera and a tone as its microphone."""
        return AmbulanceClient(
            ClientSettings(hub_url=self.url, unit_id=unit_id, buffer_dir=buffer_dir),
            RecordReplay(record_path(record), block_ms=40.0),
            self.crew_token(unit_id),
            media=MediaChoice(camera="test", mic="tone"),
        )

    async def stream(self, case_id: str, stream_id: int = 1) -> StreamInfo | None:
        for info in await self.hub.store.list_streams(case_id):
            if info.stream_id == stream_id:
                return info
        return None

    async def wait_contiguous(
        self, case_id: str, seq: int, timeout_s: float, stream_id: int = 1
    ) -> None:
        """Until the store holds every seq from 0 to ``seq`` (what the hub would ack)."""

        async def wait() -> None:
            while True:
                info = await self.stream(case_id, stream_id)
                if info is not None and info.contiguous_seq >= seq:
                    return
                await asyncio.sleep(POLL_S)

        await within(timeout_s, f"the hub storing case {case_id} seqs 0..{seq}", wait())

    async def wait_stored_through(
        self, case_id: str, end_sample: int, timeout_s: float, stream_id: int = 1
    ) -> None:
        """Until the store holds stream samples up to ``end_sample`` (exclusive; gaps below it
        allowed). Reads the samples themselves rather than trusting the store's bookkeeping."""

        async def wait() -> None:
            while True:
                if await self.stream(case_id, stream_id) is not None:
                    stored = await self.hub.store.read_samples(case_id, stream_id)
                    if stored.first_sample + len(stored.samples) >= end_sample:
                        return
                await asyncio.sleep(POLL_S)

        await within(timeout_s, f"the hub storing case {case_id} to sample {end_sample}", wait())


@asynccontextmanager
async def running_hub(
    data_dir: Path,
    *,
    seed: int = 0,
    demo_password: str | None = None,
    mqtt_url: str | None = None,
) -> AsyncIterator[RunningHub]:
    """Start a hub on a free 127.0.0.1 port (the socket stays bound: no race for the port)."""
    secret = secrets.token_urlsafe(32)
    sock, port = bind_loopback()
    settings = HubSettings(
        port=port,
        data_dir=data_dir,
        token_secret=secret,
        ice_host_addresses=("127.0.0.1",),
        allowed_origins=(f"http://127.0.0.1:{port}",),
        demo_password=demo_password,
        mqtt_url=mqtt_url,
    )
    network = ImpairedNetwork(seed=seed)
    app = RelayedSignalling(create_app(settings), network)
    try:
        async with serving(app, sock):
            yield RunningHub(
                f"http://127.0.0.1:{port}",
                app.state["hub"],
                network,
                TokenIssuer(secret),
                data_dir,
            )
    finally:
        network.close()


HubFactory = Callable[[], AbstractAsyncContextManager[RunningHub]]


@pytest.fixture
def hub_factory(tmp_path: Path) -> HubFactory:
    """``async with hub_factory() as hub:`` inside the test's ``asyncio.run`` (one event loop
    for the hub, its relays and in-process clients); started and stopped per test."""
    return lambda: running_hub(tmp_path / "hub")


def source_samples(source: RecordReplay, first_block: int, last_block: int) -> NDArray[np.int16]:
    """The samples of blocks ``first_block..last_block`` (inclusive), as the client made them."""
    return np.concatenate([source.block_at(k).samples for k in range(first_block, last_block + 1)])
