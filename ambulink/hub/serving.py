"""Run an ASGI app under uvicorn on a bound loopback socket, inside the caller's event loop.

For in-process hubs (end-to-end tests, load tests): the socket is bound before the app is
built, so the app's settings can name the port (allowed origins) and no other process can take
the port between choosing and serving it.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from ambulink.errors import AmbulinkError

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 15.0
_POLL_S = 0.05


class KeepLifespanState:
    """ASGI wrapper passing everything to ``app`` and keeping its lifespan state (the hub app
    puts the running ``Hub`` at ``state["hub"]``), for callers that drive the hub in process.
    Subclasses that answer some requests themselves call ``super().__call__`` for the rest."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.state: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            self.state = scope.setdefault("state", {})
        await self.app(scope, receive, send)


def bind_loopback() -> tuple[socket.socket, int]:
    """A TCP socket bound to a free 127.0.0.1 port, and that port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock, int(sock.getsockname()[1])


@asynccontextmanager
async def serving(app: ASGIApp, sock: socket.socket) -> AsyncIterator[uvicorn.Server]:
    """Serve ``app`` on ``sock`` (lifespan on) from when it has started until the block ends;
    then stop the server and close the socket."""
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", log_config=None, lifespan="on")
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            while not server.started:
                if task.done():
                    task.result()
                    raise AmbulinkError("the server stopped while starting")
                await asyncio.sleep(_POLL_S)
        yield server
    finally:
        server.should_exit = True
        try:
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await task
        finally:
            sock.close()
