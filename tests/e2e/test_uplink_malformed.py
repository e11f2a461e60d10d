"""Malformed input on the ``telemetry`` data channel gets an ``error`` message; the session keeps
going (DESIGN §3.2, §3.8). A raw aiortc peer plays the tablet, so it can send what the real
client never would."""

from __future__ import annotations

import asyncio
import struct
import time
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from ambulink.ambulance_client.source import RecordReplay
from ambulink.data import record_path
from ambulink.hub.uplink import FLOOD_LIMIT, UplinkSession
from ambulink.protocol.ecg_frame import encode_ecg_frame, frames_from_samples
from ambulink.protocol.messages import (
    Ack,
    ErrorMessage,
    Message,
    Missing,
    StreamOpen,
    decode_message,
    encode_message,
)
from tests.e2e.conftest import HubFactory, RunningHub, within

UNIT = "amb-5"
OVERSIZE = 70_000  # > the 64 KiB limit, < the data channel's 256 KiB max-message-size


class RawUplink:
    """A bare peer connection with a ``telemetry`` channel; collects what the hub says."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.channel = self.pc.createDataChannel("telemetry", ordered=True)
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.opened = asyncio.Event()
        self.channel.on("open", self.opened.set)
        self.channel.on("message", lambda data: self.inbox.put_nowait(decode_message(data)))

    async def connect(self, http: httpx.AsyncClient, token: str) -> None:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        local = self.pc.localDescription
        response = await http.post(
            "/api/uplink/offer",
            json={"sdp": local.sdp, "type": local.type},
            headers={"Authorization": f"Bearer {token}"},
        )
        response.raise_for_status()
        answer = response.json()
        await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
        await within(10, "the data channel open", self.opened.wait())

    async def next(
        self, kind: type[Ack] | type[ErrorMessage], *, skip: tuple[str, ...] = ("heartbeat",)
    ) -> Ack | ErrorMessage:
        """The hub's next message of ``kind`` (``skip`` types skipped); anything else fails."""
        while True:
            message = await within(5, f"a {kind.__name__} from the hub", self.inbox.get())
            if isinstance(message, kind):
                return message
            assert message.type in skip, f"expected {kind.__name__}, got {message!r}"

    async def next_missing(self) -> Missing:
        while True:
            message = await within(5, "a missing message from the hub", self.inbox.get())
            if isinstance(message, Missing):
                return message
            assert message.type in ("heartbeat", "error", "ack"), message


def with_crc(data: bytes) -> bytes:
    body = data[:-4]
    return body + struct.pack("<I", zlib.crc32(body))


@asynccontextmanager
async def raw_uplink(
    hub_factory: HubFactory, source: RecordReplay
) -> AsyncIterator[tuple[RunningHub, RawUplink, UplinkSession, str]]:
    """A hub, a case, and a raw uplink that has announced stream 1 of ``source``."""
    async with hub_factory() as hub, httpx.AsyncClient(base_url=hub.url, timeout=10.0) as http:
        token = hub.crew_token(UNIT)()
        response = await http.post(
            "/api/cases", json={"unit_id": UNIT}, headers={"Authorization": f"Bearer {token}"}
        )
        response.raise_for_status()
        case_id = response.json()["case_id"]
        uplink = RawUplink()
        try:
            await uplink.connect(http, token)
            (session,) = [s for s in hub.hub.uplinks if s.channel is not None]
            opened = StreamOpen(
                case_id=case_id,
                unit_id=UNIT,
                stream_id=1,
                fs=source.fs,
                leads=source.leads,
                gain=source.gain,
                started_at=time.time(),
            )
            uplink.channel.send(encode_message(opened))
            yield hub, uplink, session, case_id
        finally:
            await uplink.pc.close()


async def malformed_scenario(hub_factory: HubFactory) -> None:
    source = RecordReplay(record_path("mitdb/100"), block_ms=40.0)
    block = source.block_at(0)
    good = encode_ecg_frame(source.frame_at(0, 1))
    bad_crc = good[:-1] + bytes([good[-1] ^ 0xFF])
    bad_version = with_crc(good[:2] + bytes([9]) + good[3:])
    one_lead = encode_ecg_frame(
        frames_from_samples(
            block.samples[:, :1],
            stream_id=1,
            fs=source.fs,
            gain=source.gain,
            first_sample=0,
            first_seq=0,
            frame_samples=block.n_samples,
        )[0]
    )
    other_stream = encode_ecg_frame(source.frame_at(0, 7))
    bad_inputs: list[tuple[str | bytes, str, str]] = [  # (data, error code, words in message)
        (bad_crc, "bad_frame", "CRC"),
        (bad_version, "bad_frame", "version"),
        (b"AL" + bytes(OVERSIZE), "bad_frame", "limit"),
        ("{not json", "protocol_error", "not valid JSON"),
        ('{"type": "teleport", "v": 1}', "protocol_error", "unknown message type"),
        (
            '{"type": "heartbeat", "v": 1, "pad": "' + "x" * OVERSIZE + '"}',
            "protocol_error",
            "limit",
        ),
        (one_lead, "bad_frame", "opened with 2 leads"),  # valid frame, wrong shape for stream
        (other_stream, "no_stream", "stream_open for stream 7"),
    ]
    async with raw_uplink(hub_factory, source) as (hub, uplink, session, case_id):
        assert await uplink.next(Ack) == Ack(case_id=case_id, stream_id=1, seq=-1)

        for data, code, words in bad_inputs:
            uplink.channel.send(data)
            error = await uplink.next(ErrorMessage)
            assert isinstance(error, ErrorMessage)
            assert (error.code, words in error.message) == (code, True), error
        # A well-formed message the hub does not take from a tablet.
        uplink.channel.send(encode_message(Ack(case_id=case_id, stream_id=1, seq=5)))
        error = await uplink.next(ErrorMessage)
        assert isinstance(error, ErrorMessage) and error.code == "unexpected"
        assert (session.counters.bad_frames, session.counters.bad_messages) == (4, 3)

        # The session still works: a valid frame is stored and acked.
        uplink.channel.send(good)
        assert await uplink.next(Ack) == Ack(case_id=case_id, stream_id=1, seq=0)
        stored = await hub.hub.store.read_samples(case_id, 1)
        assert stored.gaps == [] and stored.first_sample == 0
        np.testing.assert_array_equal(stored.samples, block.samples)
        assert not session.closed.is_set()


def test_malformed_input_gets_errors_and_the_session_goes_on(
    hub_factory: HubFactory, tmp_path: Path
) -> None:
    asyncio.run(malformed_scenario(hub_factory))


async def rerequest_and_flood_scenario(hub_factory: HubFactory) -> None:
    source = RecordReplay(record_path("mitdb/100"), block_ms=40.0)
    frames = [source.frame_at(k, 1) for k in range(3)]
    good = [encode_ecg_frame(f) for f in frames]
    async with raw_uplink(hub_factory, source) as (hub, uplink, session, case_id):
        await uplink.next(Ack)
        # Frame 1 is damaged on the way: the hub asks for it again once it sees frame 2.
        uplink.channel.send(good[0])
        uplink.channel.send(good[1][:-1] + bytes([good[1][-1] ^ 0xFF]))
        uplink.channel.send(good[2])
        missing = await uplink.next_missing()
        assert (missing.stream_id, missing.ranges) == (1, [(1, 1)])
        uplink.channel.send(good[1])
        while (ack := await uplink.next(Ack, skip=("heartbeat", "error", "missing"))).seq < 2:
            pass
        assert isinstance(ack, Ack) and ack.seq == 2
        # A flood of malformed input ends this connection; the hub goes on.
        for _ in range(FLOOD_LIMIT + 1):
            uplink.channel.send(b"junk")
        await within(5, "the flooding uplink closed", session.closed.wait())
        stored = await hub.hub.store.read_samples(case_id, 1)
        assert stored.gaps == [] and len(stored.samples) == sum(f.n_samples for f in frames)


def test_a_damaged_frame_is_requested_again_and_a_flood_is_cut_off(
    hub_factory: HubFactory,
) -> None:
    asyncio.run(rerequest_and_flood_scenario(hub_factory))
