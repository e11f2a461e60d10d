"""A TCP relay on loopback that delays what it forwards: WAN latency and a model of loss.

``ImpairedTcpRelay(target_port, one_way_s=0.075, loss=0.05, seed=1)`` listens on a free
127.0.0.1 port and forwards every connection to ``127.0.0.1:target_port``. Each direction of
each connection holds every chunk it reads for ``one_way_s`` before writing it on.

TCP cannot lose data, so "loss" is modelled as what a lost segment costs a TCP stream: with
probability ``loss`` (per chunk read, per direction, from one seeded ``random.Random``) the chunk
is held for an extra retransmission timeout drawn uniformly from ``rto_s`` (default 200-300 ms,
Linux's minimum RTO is 200 ms). Chunks keep their order, so a held chunk also holds every chunk
behind it (head-of-line blocking, as in TCP). What this does not model: fast retransmit after
duplicate acks (shorter than an RTO, but only for streams with data behind the loss), the
congestion window shrinking, and loss bursts. A chunk is one ``read()`` of up to 64 KiB, which
on loopback is usually one WebSocket message.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass

LOOPBACK = "127.0.0.1"
CHUNK_BYTES = 65536


@dataclass
class RelayCounters:
    connections: int = 0
    chunks: int = 0
    lost_chunks: int = 0  # chunks given an extra retransmission delay
    bytes: int = 0


class ImpairedTcpRelay:
    """See the module docstring. ``async with ImpairedTcpRelay(...) as relay: relay.port``."""

    def __init__(
        self,
        target_port: int,
        *,
        one_way_s: float,
        loss: float,
        rto_s: tuple[float, float] = (0.2, 0.3),
        seed: int = 1,
        counters: RelayCounters | None = None,
    ) -> None:
        if one_way_s < 0 or not 0 <= loss < 1:
            raise ValueError(f"one_way_s must be >= 0 and 0 <= loss < 1, got {one_way_s}, {loss}")
        self.target_port = target_port
        self.one_way_s = one_way_s
        self.loss = loss
        self.rto_s = rto_s
        self.counters = counters if counters is not None else RelayCounters()
        self._random = random.Random(seed)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def __aenter__(self) -> ImpairedTcpRelay:
        self._server = await asyncio.start_server(self._accept, LOOPBACK, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):
                await self._server.wait_closed()

    def _delay(self) -> float:
        self.counters.chunks += 1
        if self.loss and self._random.random() < self.loss:
            self.counters.lost_chunks += 1
            return self.one_way_s + self._random.uniform(*self.rto_s)
        return self.one_way_s

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.counters.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(LOOPBACK, self.target_port)
        except OSError:
            writer.close()
            self._tasks.discard(task)
            return
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        except asyncio.CancelledError:
            pass  # the relay is closing (asyncio would log a cancelled connection callback)
        finally:
            for w in (writer, up_writer):
                w.close()
            self._tasks.discard(task)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One direction: read, stamp each chunk with its release time (in order), write."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def release() -> None:
            while True:
                at, data = await queue.get()
                if not data:
                    writer.write_eof() if writer.can_write_eof() else writer.close()
                    return
                wait = at - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()

        releasing = asyncio.create_task(release())
        last = 0.0
        try:
            while True:
                try:
                    data = await reader.read(CHUNK_BYTES)
                except ConnectionError:
                    data = b""
                self.counters.bytes += len(data)
                last = max(last, loop.time() + (self._delay() if data else self.one_way_s))
                queue.put_nowait((last, data))
                if not data:
                    break
            await releasing
        except ConnectionError:
            pass
        finally:
            releasing.cancel()
            await asyncio.gather(releasing, return_exceptions=True)
