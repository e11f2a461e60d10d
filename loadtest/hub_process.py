"""A hub in its own process, so that its CPU can be read from ``/proc/<pid>/stat``.

``python -m loadtest.hub_process --port P --data-dir D [--secret S]`` runs the real
``create_app`` under uvicorn on 127.0.0.1 with WebRTC ICE restricted to loopback, prints one
line ``ready <pid> <port>`` on stdout once it serves, and stops on SIGINT/SIGTERM.

For the load test it adds one read-only route in front of the app, ``GET /loadtest/stats``:
the live uplinks' frame counters and the analysis backlog (ECG batches stored but not yet fed
to their stream's analyzer). It reads the hub's state through the lifespan state and the
ingest's private stream table, which is acceptable in a benchmark and nowhere else.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

import uvicorn
from starlette.types import Receive, Scope, Send

from ambulink.hub.app import create_app
from ambulink.hub.serving import KeepLifespanState
from ambulink.hub.settings import HubSettings

DEFAULT_SECRET = "loadtest-secret-loadtest-secret-0123"
STATS_PATH = "/loadtest/stats"


class StatsWrapper(KeepLifespanState):
    """Passes everything to the hub app; answers ``GET /loadtest/stats`` itself."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == STATS_PATH:
            body = json.dumps(self.stats()).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await super().__call__(scope, receive, send)

    def stats(self) -> dict[str, object]:
        hub = self.state.get("hub")
        if hub is None:
            return {"ready": False}
        streams = getattr(hub.ingest, "_streams", {})
        backlog_batches = sum(s.queue.qsize() for s in streams.values())
        waiting_frames = sum(len(s.waiting) for s in streams.values())
        return {
            "ready": True,
            "pid": os.getpid(),
            "threads": {t.name: t.native_id for t in threading.enumerate()},
            "uplinks": len(hub.uplinks),
            "frames": sum(u.counters.frames for u in hub.uplinks),
            "bad_frames": sum(u.counters.bad_frames for u in hub.uplinks),
            "acks": sum(u.counters.acks for u in hub.uplinks),
            "streams": len(streams),
            "analysis_backlog_batches": backlog_batches,
            "analysis_waiting_frames": waiting_frames,
            "analysed_seq": {
                f"{case}/{stream}": s.next_seq - 1 for (case, stream), s in streams.items()
            },
        }


async def serve(port: int, data_dir: Path, secret: str) -> None:
    settings = HubSettings(
        port=port,
        data_dir=data_dir,
        token_secret=secret,
        ice_host_addresses=("127.0.0.1",),
        allowed_origins=(f"http://127.0.0.1:{port}",),
    )
    await serve_app(StatsWrapper(create_app(settings)), port)


async def serve_app(app: Any, port: int) -> None:
    """Serve ``app`` on 127.0.0.1:``port``; print ``ready <pid> <port>`` once it listens (the
    parent waits for that line), then serve until stopped."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            await serving
            raise SystemExit("the hub did not start")
        await asyncio.sleep(0.05)
    print(f"ready {os.getpid()} {port}", flush=True)
    await serving


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--secret", default=DEFAULT_SECRET)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, args.data_dir, args.secret))
    sys.exit(0)


if __name__ == "__main__":
    main()
