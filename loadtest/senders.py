"""Simulated ambulances for the ingest benchmark: the uplink protocol without the disk buffer.

A ``LightAmbulance`` speaks exactly what ``ambulink.ambulance_client`` speaks on the wire (POST
/api/cases, POST /api/uplink/offer, one ``RTCPeerConnection`` with the ordered data channel
``telemetry``; ``stream_open``, binary ECG frames from ``encode_ecg_frame``, ``vitals`` every 2 s
from the same ``VitalsSimulator``, ``heartbeat`` at 1 Hz), but keeps no SQLite buffer and no
per-client disk thread: the load generator shares the machine's two cores with the hub, and the
real client's per-frame fsync'd buffer write would cost the generator CPU the hub then lacks.
``WsAmbulance`` sends the same bytes at the same rate over one WebSocket to the echo peer.

Latency of a frame = arrival of the first ack covering its seq - the frame's creation time, where
creation is its due time on the monitor's schedule (block ``k`` at ``t0 + k * 40 ms``): any lag of
the generator's own event loop counts against the system, never in its favour.
"""

from __future__ import annotations

import asyncio
import json
import time
import zlib
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field
from functools import cache

import httpx
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from websockets.asyncio.client import ClientConnection, connect

from ambulink.ambulance_client.source import RecordReplay
from ambulink.ambulance_client.vitals import VitalsSimulator, heart_rate_track, vitals_message
from ambulink.protocol.ecg_frame import encode_ecg_frame
from ambulink.protocol.messages import Heartbeat, StreamOpen, Vitals, encode_message

BLOCK_MS = 40.0
VITALS_EVERY_S = 2.0
HEARTBEAT_EVERY_S = 1.0
STREAM_ID = 1
CONNECT_TIMEOUT_S = 20.0


@cache
def _replay(record: str) -> RecordReplay:
    return RecordReplay(record, block_ms=BLOCK_MS, loop=True)


@cache
def _hr_track(record: str) -> object:
    return heart_rate_track(record)


@dataclass
class LatencyLog:
    """Frames made and acked by one ambulance; latencies of the frames made in the window."""

    pending: deque[tuple[int, float]] = field(default_factory=deque)  # (seq, created)
    made: int = 0
    acked_seq: int = -1
    window: tuple[float, float] | None = None
    latencies: list[float] = field(default_factory=list)
    first_ack: asyncio.Event = field(default_factory=asyncio.Event)

    def frame_made(self, seq: int, created: float) -> None:
        self.pending.append((seq, created))
        self.made = seq + 1

    def ack(self, seq: int, now: float) -> None:
        self.first_ack.set()
        if seq <= self.acked_seq:
            return
        self.acked_seq = seq
        window = self.window
        while self.pending and self.pending[0][0] <= seq:
            _, created = self.pending.popleft()
            if window is not None and window[0] <= created < window[1]:
                self.latencies.append(now - created)

    @property
    def unacked(self) -> int:
        return self.made - (self.acked_seq + 1)


def _vitals(simulator: VitalsSimulator, case_id: str, t_s: float) -> Vitals:
    """The same vitals message the real client sends."""
    return vitals_message(simulator.sample(t_s), case_id, time.time())


class Ambulance(ABC):
    """One simulated ambulance: connects, then streams frames, vitals and heartbeats."""

    def __init__(self, unit_id: str, record: str) -> None:
        self.unit_id = unit_id
        self.record = record
        self.replay = _replay(record)
        track = _hr_track(record)
        assert callable(track)
        self.vitals = VitalsSimulator(track, seed=zlib.crc32(unit_id.encode()))
        self.case_id = f"lt-{unit_id}"
        self.log = LatencyLog()
        self.started_at = time.time()
        self.send_lag: list[float] = []  # generator lateness per frame in the window, s
        self.pack = 1  # frames per data-channel message

    def stream_open(self) -> StreamOpen:
        return StreamOpen(
            case_id=self.case_id,
            unit_id=self.unit_id,
            stream_id=STREAM_ID,
            fs=self.replay.fs,
            leads=list(self.replay.leads),
            gain=self.replay.gain,
            started_at=self.started_at,
        )

    def frame(self, k: int) -> bytes:
        return encode_ecg_frame(self.replay.frame_at(k, STREAM_ID))

    def on_text(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            return
        if isinstance(message, dict) and message.get("type") == "ack":
            self.log.ack(int(message["seq"]), time.monotonic())

    @abstractmethod
    async def connect(self) -> None: ...

    @abstractmethod
    async def send(self, data: bytes | str) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    async def stream(self, stop: asyncio.Event, phase_s: float) -> None:
        """Frames every 40 ms on a fixed schedule (no drift), vitals every 2 s, heartbeats 1 Hz,
        until ``stop`` is set."""
        period = BLOCK_MS / 1000.0
        t0 = time.monotonic() + phase_s
        frames_per_vitals = round(VITALS_EVERY_S / period)
        frames_per_beat = round(HEARTBEAT_EVERY_S / period)
        k = 0
        packed: list[bytes] = []
        while not stop.is_set():
            due = t0 + k * period
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
                if stop.is_set():
                    break
            data = self.frame(k)
            self.log.frame_made(k, due)
            window = self.log.window
            if window is not None and window[0] <= due < window[1]:
                self.send_lag.append(time.monotonic() - due)
            packed.append(data)
            if len(packed) >= self.pack:  # as the client's live pacing does
                await self.send(b"".join(packed))
                packed.clear()
            if k % frames_per_vitals == 0:
                t_s = k * period
                await self.send(encode_message(_vitals(self.vitals, self.case_id, t_s)))
            if k % frames_per_beat == 0:
                await self.send(encode_message(Heartbeat(sent_at=time.time(), seq=k)))
            k += 1
        if packed:  # frames made but still waiting for their pack: sent, not lost
            await self.send(b"".join(packed))


class LightAmbulance(Ambulance):
    """The real wire protocol over WebRTC to the hub (see the module docstring)."""

    def __init__(self, unit_id: str, record: str, http: httpx.AsyncClient, token: str) -> None:
        super().__init__(unit_id, record)
        self.http = http
        self.token = token
        self.pc: RTCPeerConnection | None = None
        self.channel: RTCDataChannel | None = None

    async def connect(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        response = await self.http.post(
            "/api/cases", json={"unit_id": self.unit_id}, headers=headers
        )
        response.raise_for_status()
        self.case_id = str(response.json()["case_id"])
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc = pc
        channel = pc.createDataChannel("telemetry", ordered=True)
        opened = asyncio.Event()
        channel.on("open", opened.set)

        @channel.on("message")
        def on_message(data: str | bytes) -> None:
            if isinstance(data, str):
                self.on_text(data)

        await pc.setLocalDescription(await pc.createOffer())
        response = await self.http.post(
            "/api/uplink/offer",
            json={"sdp": pc.localDescription.sdp, "type": pc.localDescription.type},
            headers=headers,
        )
        response.raise_for_status()
        answer = response.json()
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            await opened.wait()
            self.channel = channel
            await self.send(encode_message(self.stream_open()))
            await self.log.first_ack.wait()  # the hub has opened the stream

    async def send(self, data: bytes | str) -> None:
        channel = self.channel
        if channel is not None and channel.readyState == "open":
            channel.send(data)

    async def close(self) -> None:
        if self.pc is not None:
            await self.pc.close()


class WsAmbulance(Ambulance):
    """The same bytes at the same rate over one WebSocket to the echo peer."""

    def __init__(self, unit_id: str, record: str, url: str) -> None:
        super().__init__(unit_id, record)
        self.url = url
        self.ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        self.ws = await connect(self.url, max_size=65536, compression=None)
        self._reader = asyncio.create_task(self._read(self.ws))
        await self.send(encode_message(self.stream_open()))

    async def _read(self, ws: ClientConnection) -> None:
        async for message in ws:
            if isinstance(message, str):
                self.on_text(message)

    async def send(self, data: bytes | str) -> None:
        if self.ws is not None:
            await self.ws.send(data)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
