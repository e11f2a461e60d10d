"""The hub's MQTT side of the fleet (aiomqtt): units' reports in, REST status changes out.

The hub connects with a fixed client id and ``clean_session=False``, so the broker keeps its
subscription and queues QoS 1 reports while the hub is away (broker or hub restart); it
subscribes to ``ambulink/v1/units/+/+`` at QoS 1 on every connection anyway (a broker restarted
without persistence has forgotten it). When the connection drops it reconnects with jittered
exponential backoff. A redelivered QoS 1 report is dropped by its (unit, kind, seq or at) key.
Everything that arrives goes to ``FleetService.apply``, like reports from the data channel.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiomqtt

from ambulink.ambulance_client.backoff import Backoff
from ambulink.errors import ConfigError, ProtocolError
from ambulink.protocol.telematics import SUBSCRIPTION, parse_mqtt_url, parse_topic, topic

logger = logging.getLogger(__name__)

DEDUP_KEYS = 50_000
MAX_PENDING_OUT = 1000
CLIENT_ID = "ambulink-hub"

Apply = Callable[[str, str, bytes], Awaitable[bool]]


@dataclass
class MqttCounters:
    connections: int = 0
    received: int = 0
    redelivered: int = 0
    published: int = 0


class FleetMqtt:
    """One persistent MQTT session of the hub; ``run()`` until cancelled."""

    def __init__(
        self,
        url: str,
        apply: Apply,
        *,
        client_id: str = CLIENT_ID,
        backoff: Backoff | None = None,
    ) -> None:
        try:
            self.target = parse_mqtt_url(url)
        except ProtocolError as exc:
            raise ConfigError(f"AMBULINK_MQTT_URL: {exc}") from None
        self._apply = apply
        self._client_id = client_id
        self._backoff = backoff or Backoff(base_s=0.1, cap_s=2.0)
        self._client: aiomqtt.Client | None = None
        self._seen: OrderedDict[tuple[str, str, object], None] = OrderedDict()
        self._out: deque[tuple[str, bytes]] = deque(maxlen=MAX_PENDING_OUT)
        self.counters = MqttCounters()
        self.connected = asyncio.Event()

    async def publish_status(self, unit_id: str, payload: bytes) -> None:
        """Publish a status (retained, QoS 1) as the unit's; queued while disconnected."""
        self._out.append((topic(unit_id, "status"), payload))
        if self._client is not None:
            await self._flush(self._client)

    async def _flush(self, client: aiomqtt.Client) -> None:
        while self._out:
            name, payload = self._out[0]
            await client.publish(name, payload, qos=1, retain=True)
            self._out.popleft()
            self.counters.published += 1

    async def run(self) -> None:
        failures = 0
        t = self.target
        while True:
            try:
                async with aiomqtt.Client(
                    t.host,
                    t.port,
                    username=t.username,
                    password=t.password,
                    identifier=self._client_id,
                    clean_session=False,
                    keepalive=10,
                    timeout=5.0,
                ) as client:
                    await client.subscribe(SUBSCRIPTION, qos=1)
                    self._client = client
                    self.counters.connections += 1
                    failures = 0
                    self.connected.set()
                    logger.info("fleet MQTT connected to %s:%d", t.host, t.port)
                    await self._flush(client)
                    async for message in client.messages:
                        await self._receive(message.topic.value, message.payload)
            except aiomqtt.MqttError as exc:
                logger.warning("fleet MQTT connection lost: %s", type(exc).__name__)
            finally:
                self._client = None
                self.connected.clear()
            failures += 1
            await asyncio.sleep(self._backoff.delay(failures))

    async def _receive(self, name: str, payload: object) -> None:
        self.counters.received += 1
        try:
            unit_id, kind = parse_topic(name)
        except ProtocolError:
            logger.info("ignored a message on an unexpected topic")
            return
        data = payload if isinstance(payload, bytes) else str(payload).encode()
        key = _dedup_key(unit_id, kind, data)
        if key is not None:
            if key in self._seen:
                self.counters.redelivered += 1
                return
            self._seen[key] = None
            if len(self._seen) > DEDUP_KEYS:
                self._seen.popitem(last=False)
        await self._apply(unit_id, kind, data)


def _dedup_key(unit_id: str, kind: str, payload: bytes) -> tuple[str, str, object] | None:
    """(unit, kind, seq) for a status, (unit, kind, at) otherwise; None when unreadable (the
    fleet then refuses and counts it)."""
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    mark = (data.get("seq"), data.get("at")) if kind == "status" else data.get("at")
    return unit_id, kind, json.dumps(mark)


@asynccontextmanager
async def fleet_mqtt(url: str, apply: Apply) -> AsyncIterator[FleetMqtt]:
    """Run a ``FleetMqtt`` for the lifetime of the block."""
    link = FleetMqtt(url, apply)
    task = asyncio.create_task(link.run())
    try:
        yield link
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
