"""The room's members for ``loadtest.alarm_delivery``: N WebSocket clients in their own process.

``python -m loadtest.alarm_members --port P --path /ws/cases/ID --tokens T1,T2,...
[--one-way-ms 75 --loss 0.05 --seed 1] [--stats FILE]``

Each client connects to ``ws://127.0.0.1:P<path>`` (through an ``ImpairedTcpRelay`` when a delay
or loss is given), sends ``{"type": "auth", "token": ...}``, waits for ``{"type": "ready"}`` and
then answers every ``{"type": "alarm", ...}`` message at once with ``{"type": "receipt",
"alarm_id": ...}``, as a member's screen does when it shows an alarm. Once every client is
ready it prints ``ready <pid> <port>``; it stops on SIGINT and then writes the relay's counters
to ``--stats`` (JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
from dataclasses import asdict
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from loadtest.tcp_relay import ImpairedTcpRelay, RelayCounters

READY_TIMEOUT_S = 20.0


async def member(url: str, token: str, ready: asyncio.Event, stop: asyncio.Event) -> None:
    """One member until ``stop``; then a normal close (1000)."""
    async with connect(url, max_size=2**22, compression=None, open_timeout=10) as ws:
        await ws.send(json.dumps({"type": "auth", "token": token}))
        answering = asyncio.create_task(answer(ws, ready))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait([answering, stopping], return_when=asyncio.FIRST_COMPLETED)
        for task in (answering, stopping):
            task.cancel()
        await asyncio.gather(stopping, return_exceptions=True)
        if answering.done() and not answering.cancelled():
            answering.result()  # the server closed or refused us: say why
        await asyncio.gather(answering, return_exceptions=True)


async def answer(ws: ClientConnection, ready: asyncio.Event) -> None:
    async for raw in ws:
        message = json.loads(raw)
        kind = message.get("type")
        if kind == "alarm":
            alarm_id = message["alarm"]["alarm_id"]
            await ws.send(json.dumps({"type": "receipt", "alarm_id": alarm_id}))
        elif kind == "ready":
            ready.set()
        elif kind == "error":
            raise RuntimeError(f"the server refused a member: {message}")


async def run(
    port: int,
    path: str,
    tokens: list[str],
    *,
    one_way_s: float,
    loss: float,
    seed: int,
    counters: RelayCounters,
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        target = port
        if one_way_s > 0 or loss > 0:
            relay = await stack.enter_async_context(
                ImpairedTcpRelay(port, one_way_s=one_way_s, loss=loss, seed=seed, counters=counters)
            )
            target = relay.port
        url = f"ws://127.0.0.1:{target}{path}"
        readies = [asyncio.Event() for _ in tokens]
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
        members = [
            asyncio.create_task(member(url, t, r, stop))
            for t, r in zip(tokens, readies, strict=True)
        ]
        waiting = asyncio.gather(*(r.wait() for r in readies))
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                first: list[asyncio.Future[Any]] = [waiting, *members]
                done, _ = await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()  # a member that ended before it was ready: its error
                if not waiting.done():
                    raise RuntimeError("a member's connection closed before it was ready")
            print(f"ready {os.getpid()} {port}", flush=True)
            await asyncio.gather(*members)  # until SIGINT: each member closes normally
        finally:
            waiting.cancel()
            for task in members:
                task.cancel()
            await asyncio.gather(*members, return_exceptions=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--tokens", required=True, help="comma-separated, one per member")
    parser.add_argument("--one-way-ms", type=float, default=0.0)
    parser.add_argument("--loss", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--stats", type=Path, default=None)
    args = parser.parse_args(argv)
    counters = RelayCounters()
    run_members = run(
        args.port,
        args.path,
        args.tokens.split(","),
        one_way_s=args.one_way_ms / 1000,
        loss=args.loss,
        seed=args.seed,
        counters=counters,
    )
    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        asyncio.run(run_members)
    if args.stats is not None:
        args.stats.write_text(json.dumps(asdict(counters)))


if __name__ == "__main__":
    main()
