"""Media forwarding benchmark (issue 7): passthrough SFU against aiortc's ``MediaRelay``.

``python -m loadtest.media_forwarding [--seconds S] [--warmup S] [--scenarios ...]``

A forwarder runs in its own process (its CPU read from ``/proc``): ``passthrough`` is the hub's
own code (``ambulink.rooms.media_offer.answer_member_offer`` and ``MediaRouter``), ``relay`` is
aiortc's recipe (decode each publisher once, ``MediaRelay`` to every viewer, one VP8 encoder per
viewer). This process runs the members on loopback:

- publishers send 640x480 at 30 fps VP8, pre-encoded once (1 Mbit/s, a keyframe every second)
  with a number drawn in each picture, so publishing costs no encoder here; each publisher
  remembers when it sent each number;
- one probe viewer decodes what it receives and reads the numbers: end-to-end latency per frame
  (sent by the publisher -> decoded by the probe). The same path without a forwarder
  (publisher -> probe directly) is measured too; hub-added latency = forwarded - direct p50;
- the other viewers take the encoded frames without decoding (the hub's receiver tap), counted.

Scenarios: ``1x7`` (one publisher, 7 viewers, both forwarders) and ``8x7`` (a full room: 8
publishers, each seen by 7 viewers = 56 forwarded streams; passthrough, and relay only with
``--full-room-relay``: 56 encoders at 640x480@30 is far beyond this machine). Audio is left
out: the figure of merit is video streams per core. Prints a Markdown table (and JSON with
``--json``). Bounded: warm-up + measurement per scenario and forwarder.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError

from ambulink.ambulance_client.media import draw_counter, read_counter
from ambulink.rooms.encoded import tap_receiver
from ambulink.rooms.media_offer import answer_member_offer, plan_offer
from ambulink.rooms.media_room import MediaRouter
from ambulink.rtc import restrict_ice_hosts
from loadtest.procs import ServerProcess, cpu_seconds, free_port

WIDTH, HEIGHT, FPS = 640, 480, 30
LOOP_FRAMES = 90  # 3 s of pictures, replayed (numbers repeat every 3 s: latency is far less)
BITRATE = 1_000_000
NUMBER_BASE = 1000  # publisher p draws p * 1000 + frame index: the probe knows the source
CONNECT_TIMEOUT_S = 30.0
TIME_BASE = fractions.Fraction(1, 90_000)


def config() -> RTCConfiguration:
    return RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


def pin_vp8(transceiver: RTCRtpTransceiver) -> None:
    codecs = RTCRtpSender.getCapabilities("video").codecs
    transceiver.setCodecPreferences([c for c in codecs if c.mimeType in ("video/VP8", "video/rtx")])


# -- forwarder process ------------------------------------------------------------------------


async def serve(mode: str, port: int) -> None:
    """Answer offers (one JSON line per TCP connection) until SIGINT/SIGTERM."""
    restrict_ice_hosts(("127.0.0.1",))
    router = MediaRouter()
    relay = MediaRelay()
    sources: dict[str, MediaStreamTrack] = {}
    pcs: list[RTCPeerConnection] = []

    async def relay_answer(member: str, sdp: str, slots: list[str]) -> RTCSessionDescription:
        pc = RTCPeerConnection(config())
        pcs.append(pc)
        wanted = iter(slots)
        for section in plan_offer(sdp):
            if section.publish:
                transceiver = pc.addTransceiver("video", direction="recvonly")
            else:
                source = sources[next(wanted)]
                transceiver = pc.addTransceiver(relay.subscribe(source), direction="sendonly")
            pin_vp8(transceiver)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            sources[member] = track

        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return pc.localDescription

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = json.loads(await reader.readline())
        if mode == "passthrough":
            answer = await answer_member_offer(
                router, "bench", request["member"], "specialist", True, request["sdp"]
            )
        else:
            answer = await relay_answer(request["member"], request["sdp"], request["slots"])
        writer.write((json.dumps({"sdp": answer.sdp, "type": answer.type}) + "\n").encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(f"ready {os.getpid()} {port}", flush=True)
    await stop.wait()
    server.close()
    await router.close()
    for pc in pcs:
        await pc.close()


# -- members (this process) -------------------------------------------------------------------


def encode_loop(publisher: int) -> list[av.Packet[Any]]:
    """``LOOP_FRAMES`` numbered 640x480 pictures of colour bars, VP8, a keyframe every second."""
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    codec.time_base = fractions.Fraction(1, FPS)
    codec.bit_rate = BITRATE
    codec.gop_size = FPS
    codec.options = {"lag-in-frames": "0", "deadline": "realtime", "cpu-used": "8"}
    base = np.repeat(np.linspace(0, 255, WIDTH, dtype=np.uint8)[None, :, None], HEIGHT, 0)
    base = np.repeat(base, 3, axis=2)
    packets: list[av.Packet[Any]] = []
    for i in range(LOOP_FRAMES):
        image = base.copy()
        band = (i * 8) % HEIGHT
        image[band : band + 8] = 255 - image[band : band + 8]
        draw_counter(image, publisher * NUMBER_BASE + i, scale=6)
        picture = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        picture.pts = i
        packets.extend(codec.encode(picture))
    return packets


class ReplayTrack(MediaStreamTrack):
    """Pre-encoded VP8 packets at ``FPS``; ``sent_at[number]`` = when that picture left."""

    kind = "video"

    def __init__(self, publisher: int, packets: list[av.Packet[Any]]) -> None:
        super().__init__()
        self.publisher = publisher
        self.packets = [bytes(p) for p in packets]
        self.sent_at: dict[int, float] = {}
        self._k = 0
        self._start: float | None = None

    async def recv(self) -> av.Packet[Any]:
        if self._start is None:
            self._start = time.perf_counter()
        due = self._start + self._k / FPS
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        index = self._k % len(self.packets)
        packet = av.Packet(self.packets[index])
        packet.pts = self._k * (90_000 // FPS)
        packet.time_base = TIME_BASE
        self.sent_at[self.publisher * NUMBER_BASE + index] = time.perf_counter()
        self._k += 1
        return packet


@dataclass
class Members:
    publishers: list[ReplayTrack] = field(default_factory=list)
    pcs: list[RTCPeerConnection] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    measuring: bool = False
    sink_frames: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def sent_at(self, number: int) -> float | None:
        publisher = number // NUMBER_BASE
        if publisher >= len(self.publishers):
            return None
        return self.publishers[publisher].sent_at.get(number)

    async def probe_reader(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                arrived = time.perf_counter()
                assert isinstance(frame, av.VideoFrame)
                number = read_counter(frame.to_ndarray(format="gray"), scale=6)
                if number is None or not self.measuring:
                    continue
                sent = self.sent_at(number)
                if sent is not None and 0 <= arrived - sent < 3.0:
                    self.latencies_ms.append((arrived - sent) * 1000)
        except MediaStreamError:
            return

    def sink_frame(self, _: object) -> None:
        if self.measuring:
            self.sink_frames += 1

    async def close(self) -> None:
        for pc in self.pcs:
            await pc.close()
        for task in self.tasks:
            task.cancel()


async def offer_to(port: int, pc: RTCPeerConnection, member: str, slots: list[str]) -> None:
    await pc.setLocalDescription(await pc.createOffer())
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = {"member": member, "sdp": pc.localDescription.sdp, "slots": slots}
    writer.write((json.dumps(request) + "\n").encode())
    await writer.drain()
    reply = json.loads(await reader.readline())
    writer.close()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=reply["sdp"], type=reply["type"]))


def publisher_pc(members: Members, track: ReplayTrack) -> RTCPeerConnection:
    pc = RTCPeerConnection(config())
    pin_vp8(pc.addTransceiver(track, direction="sendonly"))
    pc.createDataChannel("room-media")
    members.pcs.append(pc)
    return pc


def viewer_pc(members: Members, slots: int, probe: bool) -> RTCPeerConnection:
    pc = RTCPeerConnection(config())
    for _ in range(slots):
        pin_vp8(pc.addTransceiver("video", direction="recvonly"))
    pc.createDataChannel("room-media")

    decoding: list[MediaStreamTrack] = []

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        # The probe decodes one slot: decoding all 7 at 640x480 would make this process, not
        # the forwarder, the bottleneck of the full room on a 2-core machine.
        if probe and not decoding:
            decoding.append(track)
            task = asyncio.ensure_future(members.probe_reader(track))
            members.tasks.add(task)
        else:
            receiver = next(r for r in pc.getReceivers() if r.track is track)
            tap_receiver(receiver, members.sink_frame)

    members.pcs.append(pc)
    return pc


async def wait_connected(pcs: list[RTCPeerConnection]) -> None:
    async with asyncio.timeout(CONNECT_TIMEOUT_S):
        while any(pc.connectionState != "connected" for pc in pcs):
            await asyncio.sleep(0.1)


@dataclass
class Result:
    scenario: str
    forwarder: str
    streams: int
    seconds: float
    cpu_share: float  # forwarder CPU seconds per wall second (1.0 = one core)
    delivered_fps: float  # per forwarded stream, at the non-decoding viewers
    p50_ms: float
    p99_ms: float
    frames_measured: int

    @property
    def streams_per_core(self) -> float:
        return self.streams / self.cpu_share if self.cpu_share > 0 else float("inf")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return float(np.percentile(np.array(values), q))


async def run_direct(packets: list[av.Packet[Any]], seconds: float, warmup: float) -> Result:
    """Publisher -> probe with no forwarder: the path the forwarders add to."""
    members = Members()
    track = ReplayTrack(0, packets)
    members.publishers.append(track)
    pub = RTCPeerConnection(config())
    pin_vp8(pub.addTransceiver(track, direction="sendonly"))
    members.pcs.append(pub)
    probe = viewer_pc(members, 1, probe=True)
    try:
        await pub.setLocalDescription(await pub.createOffer())
        await probe.setRemoteDescription(pub.localDescription)
        await probe.setLocalDescription(await probe.createAnswer())
        await pub.setRemoteDescription(probe.localDescription)
        await wait_connected(members.pcs)
        await asyncio.sleep(warmup)
        members.measuring = True
        await asyncio.sleep(seconds)
        members.measuring = False
    finally:
        await members.close()
    lat = members.latencies_ms
    return Result(
        "1x1",
        "direct (no forwarder)",
        1,
        seconds,
        0.0,
        FPS,
        percentile(lat, 50),
        percentile(lat, 99),
        len(lat),
    )


async def run_forwarded(
    mode: str,
    publishers: int,
    viewers: int,
    packets: list[list[av.Packet[Any]]],
    seconds: float,
    warmup: float,
) -> Result:
    port = free_port()
    server = await ServerProcess.start("loadtest.media_forwarding", port, "--serve", mode)
    members = Members()
    try:
        names = [f"specialist:pub{p}" for p in range(publishers)]
        pubs = []
        for p in range(publishers):
            track = ReplayTrack(p, packets[p])
            members.publishers.append(track)
            pubs.append(publisher_pc(members, track))
            await offer_to(port, pubs[-1], names[p], [])
        await wait_connected(pubs)
        # Viewer v sees every publisher but one in the full room (its own), all in 1xN.
        viewer_pcs = []
        for v in range(viewers):
            seen = [n for i, n in enumerate(names) if publishers == 1 or i != v % publishers]
            seen = seen[: min(len(seen), 7)]
            pc = viewer_pc(members, len(seen), probe=(v == 0))
            viewer_pcs.append(pc)
            await offer_to(port, pc, f"specialist:view{v}", seen)
        await wait_connected(viewer_pcs)
        streams = sum(len(pc.getTransceivers()) for pc in viewer_pcs)
        await asyncio.sleep(warmup)
        members.measuring = True
        cpu0, wall0 = cpu_seconds(server.pid), time.perf_counter()
        await asyncio.sleep(seconds)
        cpu1, wall1 = cpu_seconds(server.pid), time.perf_counter()
        members.measuring = False
    finally:
        await members.close()
        await server.stop()
    wall = wall1 - wall0
    sinks = streams - 1
    lat = members.latencies_ms
    return Result(
        f"{publishers}x{min(viewers, 7)}",
        mode,
        streams,
        wall,
        (cpu1 - cpu0) / wall,
        members.sink_frames / wall / max(sinks, 1),
        percentile(lat, 50),
        percentile(lat, 99),
        len(lat),
    )


def table(results: list[Result], direct_p50: float) -> str:
    lines = [
        "| scenario | forwarder | streams | forwarder CPU (cores) | streams per core | "
        "delivered fps per stream | e2e p50 ms | e2e p99 ms | hub-added p50 ms | "
        "hub-added p99 ms | frames |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.scenario} | {r.forwarder} | {r.streams} | {r.cpu_share:.3f} | "
            f"{r.streams_per_core:.0f} | {r.delivered_fps:.1f} | {r.p50_ms:.1f} | "
            f"{r.p99_ms:.1f} | {r.p50_ms - direct_p50:.1f} | {r.p99_ms - direct_p50:.1f} | "
            f"{r.frames_measured} |"
        )
    return "\n".join(lines)


async def bench(args: argparse.Namespace) -> list[Result]:
    restrict_ice_hosts(("127.0.0.1",))
    loops = await asyncio.to_thread(lambda: [encode_loop(p) for p in range(8)])
    results = [await run_direct(loops[0], args.seconds, args.warmup)]
    if "1x7" in args.scenarios:
        for mode in ("passthrough", "relay"):
            results.append(await run_forwarded(mode, 1, 7, loops, args.seconds, args.warmup))
    if "8x7" in args.scenarios:
        modes = ["passthrough", "relay"] if args.full_room_relay else ["passthrough"]
        for mode in modes:
            results.append(await run_forwarded(mode, 8, 8, loops, args.seconds, args.warmup))
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.media_forwarding",
        description="Forwarded video streams per core and hub-added latency: the passthrough "
        "SFU against aiortc's MediaRelay re-encoding, in the same run (loopback).",
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="measured time per run")
    parser.add_argument("--warmup", type=float, default=5.0, help="time before measuring")
    parser.add_argument(
        "--scenarios",
        nargs="+",
        default=["1x7", "8x7"],
        choices=["1x7", "8x7"],
        help="1x7: one publisher to 7 viewers; 8x7: a full room (8 publishers, 56 streams)",
    )
    parser.add_argument(
        "--full-room-relay", action="store_true", help="also run MediaRelay for the full room"
    )
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument("--serve", choices=["passthrough", "relay"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(serve(args.serve, args.port))
        return
    results = asyncio.run(bench(args))
    direct = results[0].p50_ms
    print(table(results, direct))
    by = {(r.scenario, r.forwarder): r for r in results}
    if ("1x7", "passthrough") in by and ("1x7", "relay") in by:
        ours, peer = by[("1x7", "passthrough")], by[("1x7", "relay")]
        print(
            f"\n1x7 passthrough / MediaRelay: streams per core x"
            f"{ours.streams_per_core / peer.streams_per_core:.1f}, CPU x"
            f"{peer.cpu_share / ours.cpu_share:.1f} less, e2e p99 {ours.p99_ms:.0f} vs "
            f"{peer.p99_ms:.0f} ms"
        )
    if args.json:
        with open(args.json, "w") as out:
            json.dump(
                [r.__dict__ | {"streams_per_core": r.streams_per_core} for r in results],
                out,
                indent=2,
            )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
