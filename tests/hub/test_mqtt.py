"""The hub's MQTT adapter against a real mosquitto (tests/servers.py): ACL, persistent session
across broker restarts, de-duplication and refused telematics."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiomqtt

from ambulink.hub.bus_memory import InMemoryBus
from ambulink.hub.fleet import Fleet
from ambulink.hub.fleet_region import DEFAULT_FLEET
from ambulink.hub.fleet_service import FLEET_TOPIC, FleetService
from ambulink.hub.mqtt import FleetMqtt, fleet_mqtt
from ambulink.protocol.telematics import topic
from tests.servers import Mosquitto, mosquitto_fixture  # noqa: F401 (a fixture)

TIMEOUT_S = 10.0


@dataclass
class HubSide:
    service: FleetService
    bus: InMemoryBus
    cursor: str = "0"

    async def unit_update(self, unit_id: str, **expected: object) -> dict[str, Any]:
        """The next published update of ``unit_id`` whose fields match ``expected``."""
        async with asyncio.timeout(TIMEOUT_S):
            while True:
                entries = await self.bus.read(FLEET_TOPIC, after=self.cursor, block_ms=500)
                for entry_id, fields in entries:
                    self.cursor = entry_id
                    unit = json.loads(fields["json"]).get("unit")
                    matches = unit and all(unit.get(k) == v for k, v in expected.items())
                    if matches and unit["unit_id"] == unit_id:
                        return dict(unit)


@asynccontextmanager
async def fleet_service() -> AsyncIterator[HubSide]:
    bus = InMemoryBus()
    service = FleetService(Fleet(DEFAULT_FLEET), bus)
    async with service.running():
        yield HubSide(service, bus)


@asynccontextmanager
async def hub_mqtt(broker: Mosquitto, side: HubSide) -> AsyncIterator[FleetMqtt]:
    async with fleet_mqtt(broker.url("hub"), side.service.apply) as link:
        async with asyncio.timeout(TIMEOUT_S):
            await link.connected.wait()
        yield link


def unit_client(broker: Mosquitto, user: str, password: str | None = None) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1",
        broker.port,
        username=user,
        password=password or broker.passwords[user],
        identifier=f"tablet-{user}",
        clean_session=False,
    )


def status(unit_id: str, name: str, seq: int, at: float | None = None) -> bytes:
    data = {"v": 1, "unit_id": unit_id, "status": name, "case_id": None, "destination": None}
    return json.dumps({**data, "at": at if at is not None else time.time(), "seq": seq}).encode()


def position(unit_id: str, lat: float, lon: float, **changes: object) -> bytes:
    data = {"v": 1, "unit_id": unit_id, "lat": lat, "lon": lon, "speed_mps": 10.0}
    data |= {"heading_deg": 90.0, "accuracy_m": 5.0, "at": time.time()}
    return json.dumps(data | changes).encode()


def test_a_status_published_by_a_unit_reaches_the_fleet(mosquitto_server: Mosquitto) -> None:
    async def scenario() -> None:
        async with (
            fleet_service() as side,
            hub_mqtt(mosquitto_server, side),
            unit_client(mosquitto_server, "amb-1") as unit,
        ):
            await unit.publish(
                topic("amb-1", "status"), status("amb-1", "en_route", 1), qos=1, retain=True
            )
            update = await side.unit_update("amb-1", status="en_route")
            assert [h["status"] for h in update["status_history"]] == ["en_route"]

    asyncio.run(scenario())


def test_a_unit_cannot_publish_as_another_unit(mosquitto_server: Mosquitto) -> None:
    async def scenario() -> None:
        async with fleet_service() as side, hub_mqtt(mosquitto_server, side) as link:
            async with unit_client(mosquitto_server, "amb-2") as intruder:
                # MQTT 3.1.1 has no refusal code: the broker acks and drops the publish, so we
                # check that nothing arrives before a later message from the same unit.
                await intruder.publish(
                    topic("amb-1", "status"), status("amb-1", "out_of_service", 1), qos=1
                )
                await intruder.publish(
                    topic("amb-2", "status"), status("amb-2", "dispatched", 1), qos=1
                )
                await side.unit_update("amb-2", status="dispatched")  # sent after the intruder's
            assert side.service.fleet.unit("amb-1").status == "available"
            assert link.counters.received == 1  # the broker never passed the forged one on

    asyncio.run(scenario())


def test_no_qos1_status_is_lost_across_broker_restarts(mosquitto_server: Mosquitto) -> None:
    async def scenario() -> None:
        broker = mosquitto_server
        async with fleet_service() as side:
            # The hub's session and subscription exist from here on.
            async with hub_mqtt(broker, side), unit_client(broker, "amb-3") as unit:
                await unit.publish(
                    topic("amb-3", "status"), status("amb-3", "dispatched", 1), qos=1
                )
                await side.unit_update("amb-3", status="dispatched")
            # The hub is away: published "just before" the broker restarts, kept by the
            # broker's persistence for the hub's session.
            async with unit_client(broker, "amb-3") as unit:
                await unit.publish(topic("amb-3", "status"), status("amb-3", "en_route", 2), qos=1)
            broker.restart()
            async with hub_mqtt(broker, side) as link:
                await side.unit_update("amb-3", status="en_route")
                # Restart the broker under a connected hub: it reconnects by itself
                # (backoff), resubscribes, and gets what the unit published meanwhile.
                broker.restart()
                async with unit_client(broker, "amb-3") as unit:
                    await unit.publish(
                        topic("amb-3", "status"), status("amb-3", "on_scene", 3), qos=1
                    )
                update = await side.unit_update("amb-3", status="on_scene")
                assert link.counters.connections >= 2
            history = [h["status"] for h in update["status_history"]]
            assert history == ["dispatched", "en_route", "on_scene"]

    asyncio.run(scenario())


def test_a_redelivered_report_is_applied_once(mosquitto_server: Mosquitto) -> None:
    async def scenario() -> None:
        async with fleet_service() as side, hub_mqtt(mosquitto_server, side) as link:
            async with unit_client(mosquitto_server, "amb-4") as unit:
                payload = status("amb-4", "transporting", 7)
                await unit.publish(topic("amb-4", "status"), payload, qos=1)
                await unit.publish(topic("amb-4", "status"), payload, qos=1)  # as a redelivery
                await unit.publish(
                    topic("amb-4", "status"), status("amb-4", "at_hospital", 8), qos=1
                )
                update = await side.unit_update("amb-4", status="at_hospital")
            assert link.counters.redelivered == 1
            assert [h["status"] for h in update["status_history"]] == [
                "transporting",
                "at_hospital",
            ]

    asyncio.run(scenario())


def test_bad_telematics_are_refused_and_counted_and_the_unit_keeps_its_place(
    mosquitto_server: Mosquitto,
) -> None:
    async def scenario() -> None:
        async with fleet_service() as side, hub_mqtt(mosquitto_server, side):
            where = topic("amb-5", "position")
            async with unit_client(mosquitto_server, "amb-5") as unit:
                await unit.publish(where, position("amb-5", 52.1, 5.1), qos=1)
                await side.unit_update("amb-5", rejected=0)
                for bad in (
                    position("amb-5", 91.0, 5.1),  # lat > 90
                    position("amb-5", 52.1, 5.1, speed_mps=-1.0),
                    position("amb-5", 52.1, 5.1, at=time.time() + 3600),  # the future
                    position("amb-5", 40.0, -3.7),  # Madrid a second later: a jump
                    b"\xff not json",
                ):
                    await unit.publish(where, bad, qos=1)
                await unit.publish(
                    where, position("amb-5", 52.1001, 5.1001, at=time.time() + 1), qos=1
                )
                update = await side.unit_update("amb-5", rejected=5)
            async with unit_client(mosquitto_server, "hub") as hub_user:  # may write any unit
                await hub_user.publish(topic("amb-99", "status"), status("amb-99", "available", 1))
                await hub_user.publish(topic("amb-5", "status"), status("amb-5", "dispatched", 1))
                await side.unit_update("amb-5", status="dispatched")
            pos = update["position"]
            assert isinstance(pos, dict) and (pos["lat"], pos["lon"]) == (52.1001, 5.1001)
            assert side.service.fleet.unknown_rejected == 1
            assert side.service.counters.rejected == 6

    asyncio.run(scenario())
