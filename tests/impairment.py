"""A controllable impairment proxy for the WebRTC uplink, on loopback (CI has no netem).

``ImpairedNetwork`` owns the knobs (``blackout(on)``, ``loss_pct``, ``delay_ms``; per packet,
both directions, drawn from a seeded ``random.Random``) and the counters. Each uplink connection
attempt gets its own ``UdpRelay``: two UDP sockets on 127.0.0.1, one that the client takes for
the hub and one that the hub takes for the client.

``RelayedSignalling`` puts the relays in the path. It is ASGI middleware in front of the hub
app, so it works for a client in this process and for one in a subprocess alike (an httpx
transport could only reach the former). On ``POST /api/uplink/offer`` it opens a relay, rewrites
the client's ``127.0.0.1 <port> typ host`` candidate in the offer to the relay's hub-facing
port, and the hub's candidate in the answer to the relay's client-facing port. Each side then
only ever hears from the relay, at the address it was told: no peer-reflexive candidate appears
and no packet can take a direct path around the relay (the tests check the counters).

Each connection attempt has its own relay ports, so a reconnection uses a new 5-tuple, as when
a tablet's source port changes on a new network.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, cast

from ambulink.hub.serving import KeepLifespanState

LOOPBACK = "127.0.0.1"
OFFER_PATH = "/api/uplink/offer"
_HOST_CANDIDATE = re.compile(
    r"^(a=candidate:\S+ \d+ udp \d+ )127\.0\.0\.1 (\d+)( typ host.*)$", re.MULTILINE
)

Address = tuple[str, int]
Scope = MutableMapping[str, Any]
AsgiMessage = MutableMapping[str, Any]
Receive = Callable[[], Any]
Send = Callable[[AsgiMessage], Any]
AsgiApp = Callable[[Scope, Receive, Send], Any]


@dataclass
class RelayCounters:
    """Packets (and bytes) the relays forwarded or dropped, per direction."""

    to_hub: int = 0
    to_client: int = 0
    bytes_to_hub: int = 0
    bytes_to_client: int = 0
    dropped_blackout: int = 0
    dropped_loss: int = 0
    delayed: int = 0
    strangers: int = 0  # packets from an address the relay was not told about (dropped)

    @property
    def forwarded(self) -> int:
        return self.to_hub + self.to_client


class SdpError(ValueError):
    """An SDP without exactly one loopback host candidate: the relay cannot sit in its path."""


def host_candidate_port(sdp: str) -> int:
    """The port of the only ``127.0.0.1 ... typ host`` candidate in ``sdp``."""
    ports = {int(m.group(2)) for m in _HOST_CANDIDATE.finditer(sdp)}
    if len(ports) != 1:
        raise SdpError(f"expected one 127.0.0.1 host candidate port in the SDP, got {ports}")
    other = [
        line
        for line in sdp.splitlines()
        if line.startswith("a=candidate:") and LOOPBACK not in line
    ]
    if other:
        raise SdpError(f"the SDP offers non-loopback candidates: {other}")
    return ports.pop()


def replace_host_port(sdp: str, old: int, new: int) -> str:
    """``sdp`` with its loopback host candidate (and the m-line default) moved to port ``new``."""

    def candidate(m: re.Match[str]) -> str:
        return f"{m.group(1)}{LOOPBACK} {new if int(m.group(2)) == old else m.group(2)}{m.group(3)}"

    sdp = _HOST_CANDIDATE.sub(candidate, sdp)
    return re.sub(rf"^(m=\S+ ){old}( )", rf"\g<1>{new}\g<2>", sdp, flags=re.MULTILINE)


class _Socket(asyncio.DatagramProtocol):
    def __init__(self, on_packet: Callable[[bytes, Address], None]) -> None:
        self._on_packet = on_packet
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport (3.11).
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self._on_packet(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable once a closed peer connection's socket is gone: UDP shrugs.
        pass

    def send(self, data: bytes, addr: Address) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, addr)

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


@dataclass(eq=False)
class UdpRelay:
    """One connection attempt's relay: client ⇄ ``client_side`` … ``hub_side`` ⇄ hub."""

    network: ImpairedNetwork
    client_addr: Address
    hub_addr: Address | None = None
    counters: RelayCounters = field(default_factory=RelayCounters)

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self.client_side = _Socket(self._from_client)
        self.hub_side = _Socket(self._from_hub)
        await loop.create_datagram_endpoint(lambda: self.client_side, local_addr=(LOOPBACK, 0))
        await loop.create_datagram_endpoint(lambda: self.hub_side, local_addr=(LOOPBACK, 0))

    def close(self) -> None:
        self.client_side.close()
        self.hub_side.close()

    def _from_client(self, data: bytes, addr: Address) -> None:
        if addr != self.client_addr or self.hub_addr is None:
            self.count("strangers")
            return
        hub_addr = self.hub_addr
        if self.network.admit(self, len(data), to_hub=True):
            self.network.later(lambda: self.hub_side.send(data, hub_addr))

    def _from_hub(self, data: bytes, addr: Address) -> None:
        if self.hub_addr is None:
            self.hub_addr = addr  # the hub checked before its answer reached us
        elif addr != self.hub_addr:
            self.count("strangers")
            return
        if self.network.admit(self, len(data), to_hub=False):
            self.network.later(lambda: self.client_side.send(data, self.client_addr))

    def count(self, name: str, n: int = 1) -> None:
        for counters in (self.counters, self.network.counters):
            setattr(counters, name, getattr(counters, name) + n)


class ImpairedNetwork:
    """The knobs every relay applies, per packet and both ways, and the totals they count."""

    def __init__(self, *, seed: int = 0) -> None:
        self.loss_pct = 0.0
        self.delay_ms = 0.0
        self.counters = RelayCounters()
        self.relays: list[UdpRelay] = []
        self._blackout = False
        self._rng = random.Random(seed)

    @property
    def blacked_out(self) -> bool:
        return self._blackout

    def blackout(self, on: bool) -> None:
        """Drop every packet both ways (nothing is closed: a silent blackhole) while ``on``."""
        self._blackout = on

    async def open_relay(self, client_addr: Address) -> UdpRelay:
        relay = UdpRelay(self, client_addr)
        await relay.open()
        self.relays.append(relay)
        return relay

    def close(self) -> None:
        for relay in self.relays:
            relay.close()

    def admit(self, relay: UdpRelay, size: int, *, to_hub: bool) -> bool:
        """Decide one packet's fate (and count it): True to forward it."""
        if self._blackout:
            relay.count("dropped_blackout")
            return False
        if self.loss_pct > 0 and self._rng.random() * 100.0 < self.loss_pct:
            relay.count("dropped_loss")
            return False
        if to_hub:
            relay.count("to_hub")
            relay.count("bytes_to_hub", size)
        else:
            relay.count("to_client")
            relay.count("bytes_to_client", size)
        return True

    def later(self, send: Callable[[], None]) -> None:
        if self.delay_ms <= 0:
            send()
            return
        self.counters.delayed += 1
        asyncio.get_running_loop().call_later(self.delay_ms / 1000.0, send)


class RelayedSignalling(KeepLifespanState):
    """ASGI middleware: routes every uplink offer through a fresh ``UdpRelay`` of ``network``.

    It also keeps the lifespan state (``state["hub"]`` is the running ``Hub``) for the tests.
    """

    def __init__(self, app: AsgiApp, network: ImpairedNetwork) -> None:
        super().__init__(app)
        self.network = network

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (
            scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == OFFER_PATH
        ):
            await super().__call__(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        try:
            offer = json.loads(body)
            client_port = host_candidate_port(offer["sdp"])
        except (ValueError, KeyError, TypeError):
            relay = None  # not an offer we can relay: let the hub refuse it as it would
        else:
            relay = await self.network.open_relay((LOOPBACK, client_port))
            offer["sdp"] = replace_host_port(offer["sdp"], client_port, relay.hub_side.port)
            body = json.dumps(offer).encode()
        await self.app(_with_length(scope, len(body)), _replay(body, receive), _Answer(send, relay))


def _with_length(scope: Scope, length: int) -> Scope:
    headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
    return {**scope, "headers": [*headers, (b"content-length", str(length).encode())]}


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> AsgiMessage:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        message: AsgiMessage = await receive()
        return message

    return replay


class _Answer:
    """Collects the hub's response; on 200 points the answer's candidate at the relay."""

    def __init__(self, send: Send, relay: UdpRelay | None) -> None:
        self._send = send
        self._relay = relay
        self._start: AsgiMessage | None = None
        self._body = b""

    async def __call__(self, message: AsgiMessage) -> None:
        if message["type"] == "http.response.start":
            self._start = message
            return
        if message["type"] != "http.response.body" or self._start is None:
            await self._send(message)
            return
        self._body += message.get("body", b"")
        if message.get("more_body", False):
            return
        body = self._body
        if self._relay is not None and self._start["status"] == 200:
            answer = json.loads(body)
            hub_port = host_candidate_port(answer["sdp"])
            self._relay.hub_addr = (LOOPBACK, hub_port)
            answer["sdp"] = replace_host_port(answer["sdp"], hub_port, self._relay.client_side.port)
            body = json.dumps(answer).encode()
        headers = [(k, v) for k, v in self._start["headers"] if k.lower() != b"content-length"]
        await self._send(
            {**self._start, "headers": [*headers, (b"content-length", b"%d" % len(body))]}
        )
        await self._send({"type": "http.response.body", "body": body, "more_body": False})
