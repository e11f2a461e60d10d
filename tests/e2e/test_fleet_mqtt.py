"""Fleet end to end: a real hub, a real mosquitto, real tablets, /ws/fleet over real sockets.

The 2 s bound from status to the dispatch page is asserted by the browser test; here, that it
arrives. Dead zone: the client's uplink is really cut, its buffer fills, data age rises, then
the buffer drains and data age recovers.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import websockets

from ambulink.ambulance_client.runner import build_client, run_client
from ambulink.ambulance_client.telematics import (
    ChannelTransport,
    DeadZone,
    RouteSimulator,
    TelematicsRunner,
    mqtt_transport,
)
from ambulink.ambulance_client.uplink import AmbulanceClient, LinkState
from ambulink.data import record_path
from ambulink.hub.fleet import Fleet
from ambulink.hub.fleet_region import DEFAULT_FLEET
from ambulink.protocol.telematics import topic
from tests.e2e.conftest import RunningHub, running_hub, within
from tests.servers import Mosquitto, mosquitto_fixture  # noqa: F401 (a fixture)

TIMEOUT_S = 15.0


class FleetSocket:
    """A /ws/fleet client: the snapshot, then every message, read on demand."""

    def __init__(self, socket: Any) -> None:
        self.socket = socket
        self.snapshot: dict[str, Any] = {}

    async def next(self, what: str, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        async def read() -> dict[str, Any]:
            while True:
                message: dict[str, Any] = json.loads(await self.socket.recv())
                if match(message):
                    return message

        result: dict[str, Any] = await within(TIMEOUT_S, what, read())
        return result

    async def unit(self, unit_id: str, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        message = await self.next(
            f"an update of {unit_id}",
            lambda m: m["type"] == "unit" and m["unit"]["unit_id"] == unit_id and check(m["unit"]),
        )
        unit: dict[str, Any] = message["unit"]
        return unit


@asynccontextmanager
async def fleet_socket(hub: RunningHub, token: str) -> AsyncIterator[FleetSocket]:
    url = hub.url.replace("http://", "ws://") + "/ws/fleet"
    async with websockets.connect(url) as socket:
        await socket.send(json.dumps({"type": "auth", "token": token}))
        fleet = FleetSocket(socket)
        fleet.snapshot = await fleet.next("the fleet snapshot", lambda m: m["type"] == "fleet")
        yield fleet


async def broker_message(broker: Mosquitto, name: str, what: str) -> aiomqtt.Message:
    """The next message on topic ``name``, read as the hub's MQTT user."""
    async with aiomqtt.Client(
        "127.0.0.1",
        broker.port,
        username="hub",
        password=broker.passwords["hub"],
        identifier="test-reader",
    ) as reader:
        await reader.subscribe(name, qos=1)
        message: aiomqtt.Message = await within(TIMEOUT_S, what, anext(reader.messages))
        return message


def status(unit_id: str, name: str, seq: int) -> bytes:
    return json.dumps(
        {"v": 1, "unit_id": unit_id, "status": name, "case_id": None, "destination": None}
        | {"at": time.time(), "seq": seq}
    ).encode()


def test_status_over_mqtt_reaches_dispatch_and_rest_status_goes_to_the_broker(
    tmp_path: Path, mosquitto_server: Mosquitto
) -> None:
    broker = mosquitto_server

    async def scenario() -> None:
        async with running_hub(tmp_path / "hub", mqtt_url=broker.url("hub")) as hub:
            fleet = hub.hub.fleet
            assert fleet is not None and fleet.mqtt is not None
            await within(TIMEOUT_S, "the hub's MQTT session", fleet.mqtt.connected.wait())
            dispatch_token = hub.issuer.mint("dispatcher-1", "dispatch")
            async with (
                fleet_socket(hub, dispatch_token) as dispatch,
                fleet_socket(hub, hub.crew_token("amb-2")()) as crew,
            ):
                assert len(dispatch.snapshot["units"]) == 13
                assert len(dispatch.snapshot["hospitals"]) == 15
                assert [u["unit_id"] for u in crew.snapshot["units"]] == ["amb-2"]
                # The tablet's own MQTT transport, with the unit's credentials.
                async with mqtt_transport(broker.url("amb-1"), "amb-1") as unit:
                    report = json.loads(status("amb-1", "en_route", 1))
                    assert await unit.send("status", report)
                    seen = await dispatch.unit("amb-1", lambda u: u["status"] == "en_route")
                assert seen["status_history"][-1]["status"] == "en_route"

                # Dispatch sets amb-2's status over REST: same path, the crew sees it, and the
                # broker holds it retained for whoever subscribes next.
                async with httpx.AsyncClient(base_url=hub.url) as http:
                    response = await http.post(
                        "/api/units/amb-2/status",
                        json={"status": "dispatched", "destination": "h-central"},
                        headers={"Authorization": f"Bearer {dispatch_token}"},
                    )
                    assert response.status_code == 200, response.text
                    assert response.json()["destination"] == "h-central"
                    refused = await http.post(
                        "/api/units/amb-2/status",
                        json={"status": "dispatched"},
                        headers={"Authorization": f"Bearer {hub.crew_token('amb-1')()}"},
                    )
                    assert refused.status_code == 403
                await crew.unit("amb-2", lambda u: u["status"] == "dispatched")
                message = await broker_message(broker, topic("amb-2", "status"), "the status")
                assert message.retain
                assert isinstance(message.payload, bytes)
                assert json.loads(message.payload)["status"] == "dispatched"

    asyncio.run(scenario())


def client_options(hub: RunningHub, tmp_path: Path, unit_id: str) -> dict[str, Any]:
    """``build_client`` / ``run_client`` arguments of a ``unit_id`` tablet replaying mitdb 100
    without vitals, buffering under ``tmp_path``."""
    return {
        "record": str(record_path("mitdb/100")),
        "hub_url": hub.url,
        "unit_id": unit_id,
        "buffer_dir": tmp_path / unit_id,
        "token": hub.crew_token(unit_id),
        "vitals": False,
    }


@asynccontextmanager
async def uplinked_client(
    hub: RunningHub, tmp_path: Path, unit_id: str
) -> AsyncIterator[AmbulanceClient]:
    """A client of ``unit_id`` replaying mitdb 100, its uplink up; stopped on leaving."""
    client = build_client(**client_options(hub, tmp_path, unit_id))
    stop = asyncio.Event()
    running = asyncio.create_task(client.run(until=stop))
    try:
        await within(TIMEOUT_S, "the uplink", client.wait_link(LinkState.UP))
        yield client
    finally:
        stop.set()
        await within(TIMEOUT_S, "the client stopping", running)


def test_without_a_broker_the_data_channel_gives_the_same_unit_state(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with (
            running_hub(tmp_path / "hub") as hub,
            uplinked_client(hub, tmp_path, "amb-3") as client,
        ):
            route = RouteSimulator([(52.09, 5.12), (52.10, 5.15)])
            sent: list[tuple[str, dict[str, Any]]] = []

            class Recorded(ChannelTransport):
                async def send(self, kind: str, data: dict[str, Any]) -> bool:
                    sent.append((kind, data))
                    return await super().send(kind, data)

            runner = TelematicsRunner("amb-3", route, Recorded(client), client=client)
            async with fleet_socket(hub, hub.issuer.mint("d", "dispatch")) as dispatch:
                await runner.tick(30.0)
                await runner.tick(30.0)  # same place: simulated time runs no faster
                unit = await dispatch.unit(
                    "amb-3",
                    lambda u: u["link"] is not None and u["position"]["at"] == sent[-2][1]["at"],
                )
            # The same payloads applied to a fresh model, as MQTT would deliver them.
            model = Fleet(DEFAULT_FLEET)
            for kind, data in sent:
                model.apply("amb-3", kind, data, time.time())
            expected = model.unit_json("amb-3", time.time())
            for key in ("status", "status_history", "position", "link", "rejected"):
                assert unit[key] == expected[key], key
            assert unit["rejected"] == 0
            assert unit["status"] == "en_route" and unit["case_id"] == client.case_id

    asyncio.run(scenario())


def test_dead_zone_data_age_rises_then_recovers(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with (
            running_hub(tmp_path / "hub") as hub,
            uplinked_client(hub, tmp_path, "amb-4") as client,
        ):
            # A 6.9 km road east; the dead zone (500 m) sits in its middle (t ~ 245 s).
            # Simulated time jumps ahead of the wall clock here, so the fleet refuses the
            # positions as jumps (counted): only link and data age matter in this test.
            route = RouteSimulator(
                [(52.0, 5.0), (52.0, 5.1)], dead_zone=DeadZone(52.0, 5.05, 500.0)
            )
            runner = TelematicsRunner("amb-4", route, ChannelTransport(client), client=client)
            async with fleet_socket(hub, hub.issuer.mint("d", "dispatch")) as dispatch:
                await runner.tick(100.0)
                fresh = await dispatch.unit(
                    "amb-4",
                    lambda u: (
                        u["link"] is not None
                        and u["data_age_s"] is not None
                        and u["data_age_s"] < 2
                    ),
                )
                assert fresh["link"]["radio"] == "LTE"
                point = await runner.tick(245.0)  # into the dead zone: the uplink is cut
                assert point.in_dead_zone and client.link_cut
                stale = await dispatch.unit(
                    "amb-4", lambda u: u["data_age_s"] is not None and u["data_age_s"] > 5
                )
                assert stale["link"]["radio"] == "LTE"  # the last report that got through
                buffered = client.status.made_seq - client.status.acked_seq
                assert buffered > 100  # > 4 s of 40 ms frames wait on the tablet's disk
                left = time.monotonic()
                await runner.tick(400.0)  # out again: the client reconnects, backfills
                assert not client.link_cut
                await within(
                    TIMEOUT_S, "the reconnection", client.wait_link(LinkState.UP, since=left)
                )
                recovered = await dispatch.unit(
                    "amb-4", lambda u: u["data_age_s"] is not None and u["data_age_s"] < 2
                )
                assert recovered["data_age_s"] < stale["data_age_s"]
                await within(
                    TIMEOUT_S, "the buffer draining", client.wait_acked(client.status.made_seq)
                )
                await runner.tick(401.0)
                drained = await dispatch.unit(
                    "amb-4", lambda u: u["link"]["buffered_frames"] < buffered / 4
                )
                assert drained["data_age_s"] < 2

    asyncio.run(scenario())


def test_the_client_command_reports_its_route_over_the_channel_or_mqtt(
    tmp_path: Path, mosquitto_server: Mosquitto
) -> None:
    # `ambulink client --route LAT,LON [--mqtt URL]`: run_client drives a simulated route from
    # there; one unit reports inside its uplink, another to the broker with its credentials
    broker = mosquitto_server
    start = (52.09, 5.12)

    async def scenario() -> None:
        async with running_hub(tmp_path / "hub", mqtt_url=broker.url("hub")) as hub:
            fleet = hub.hub.fleet
            assert fleet is not None and fleet.mqtt is not None
            await within(TIMEOUT_S, "the hub's MQTT session", fleet.mqtt.connected.wait())
            stop = asyncio.Event()
            clients = [
                run_client(
                    **client_options(hub, tmp_path, unit_id),
                    loopback=True,
                    route_from=start,
                    mqtt_url=mqtt_url,
                    until=stop,
                )
                for unit_id, mqtt_url in (("amb-4", None), ("amb-5", broker.url("amb-5")))
            ]
            running = [asyncio.create_task(c) for c in clients]
            try:
                async with fleet_socket(hub, hub.issuer.mint("d", "dispatch")) as dispatch:
                    for unit_id in ("amb-4", "amb-5"):
                        unit = await dispatch.unit(
                            unit_id,
                            lambda u: u["position"] is not None and u["link"] is not None,
                        )
                        position = unit["position"]
                        assert abs(position["lat"] - start[0]) < 0.06, position
                        assert abs(position["lon"] - start[1]) < 0.1, position
                        assert unit["status"] in ("en_route", "on_scene", "transporting")
                        assert unit["rejected"] == 0
                # amb-5's reports really went through the broker
                message = await broker_message(broker, topic("amb-5", "position"), "a position")
                assert isinstance(message.payload, bytes)
                assert json.loads(message.payload)["unit_id"] == "amb-5"
            finally:
                stop.set()
                await within(TIMEOUT_S, "the clients stopping", asyncio.gather(*running))

    asyncio.run(scenario())
