"""The peer: a bare ``websockets`` ingest that acks every binary frame, without analysis.

``python -m loadtest.echo_process --port P`` serves ``ws://127.0.0.1:P/`` in its own process (so
its CPU is measured like the hub's), prints ``ready <pid> <port>`` and stops on SIGINT/SIGTERM.
For each binary message it reads the frame's ``seq`` from the header (bytes 8-16, little-endian
u64, see ``ambulink.protocol.ecg_frame``) of the message's last frame (a sender may pack
several) and answers ``{"type":"ack","seq":N}``. It stores
nothing, checks no CRC and parses no JSON: text messages (stream_open, vitals, heartbeats) are
read and dropped. It is the floor any WebSocket/TCP ingest in Python pays for the same bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import struct

from websockets.asyncio.server import ServerConnection, serve

_SEQ = struct.Struct("<Q")
SEQ_OFFSET = 8
_SIZE = struct.Struct("<BH")  # n_leads, n_samples
SIZE_OFFSET = 26
OVERHEAD = 40  # header and CRC bytes


async def handler(connection: ServerConnection) -> None:
    async for message in connection:
        if isinstance(message, bytes) and len(message) >= SEQ_OFFSET + _SEQ.size:
            last = _last_frame_at(message)  # several frames may share a message
            (seq,) = _SEQ.unpack_from(message, last + SEQ_OFFSET)
            await connection.send(f'{{"type":"ack","seq":{seq}}}')


def _last_frame_at(message: bytes) -> int:
    """Offset of the last frame in a message of frames back to back (header sizes only)."""
    offset = 0
    while True:
        n_leads, n_samples = _SIZE.unpack_from(message, offset + SIZE_OFFSET)
        end = offset + OVERHEAD + 2 * n_leads * n_samples
        if end >= len(message) or n_leads * n_samples == 0:
            return offset
        offset = end


async def run(port: int) -> None:
    async with serve(handler, "127.0.0.1", port, max_size=65536, compression=None) as server:
        print(f"ready {os.getpid()} {port}", flush=True)
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args.port))


if __name__ == "__main__":
    main()
