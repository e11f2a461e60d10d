"""The crew's tablet page in real headless Chromium (issue 8): a real hub, a real mosquitto, the
real ambulance client streaming the case's ECG, and a specialist on the consult room socket.

The status buttons publish the unit's status, which reaches the dispatch page (within the
issue's 2 s, measured from the tap to the dispatch page's DOM) and the broker (retained); the
case is started and closed from the page; the page shows the link and buffer as the hub sees
them, the case's alarms with who acknowledged them, and the room's advice and decisions.
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
import websockets
from playwright.async_api import Browser, Page

from ambulink.ambulance_client.source import RecordReplay
from ambulink.ambulance_client.uplink import AmbulanceClient, ClientSettings
from ambulink.data import record_path
from ambulink.protocol.telematics import topic
from tests.e2e.conftest import RunningHub, running_hub, within
from tests.servers import Mosquitto, mosquitto_fixture  # noqa: F401 (the mosquitto_server fixture)
from tests.web.browser import chromium, needs_chromium
from tests.web.test_dispatch import (
    SETUP_MS,
    Tablet,
    fleet_hub,
    open_dispatch,
    save_screenshot,
    wait_status,
)

pytestmark = needs_chromium


async def open_crew(browser: Browser, hub: RunningHub, unit_id: str) -> Page:
    """The crew page on a tablet-sized screen, signed in as ``unit_id``'s crew."""
    page = await browser.new_page(viewport={"width": 1280, "height": 800}, has_touch=True)
    token = hub.issuer.mint(f"crew-page-{unit_id}", "crew", unit=unit_id)
    await page.goto(f"{hub.url}/crew#token={token}")
    await page.wait_for_selector("#conn-hub[data-state='live']", timeout=SETUP_MS)
    return page


async def retained_status(broker: Mosquitto, unit_id: str) -> dict[str, Any]:
    """The broker's retained status of ``unit_id`` (read as the hub's user)."""
    async with aiomqtt.Client(
        "127.0.0.1",
        broker.port,
        username=Mosquitto.HUB_USER,
        password=broker.passwords[Mosquitto.HUB_USER],
        identifier="test-reader",
    ) as client:
        await client.subscribe(topic(unit_id, "status"), qos=1)
        async with asyncio.timeout(10):
            async for message in client.messages:
                data: dict[str, Any] = json.loads(bytes(message.payload))
                return data
    raise AssertionError("no retained status")


# -- Status buttons -----------------------------------------------------------------------------


async def status_scenario(
    data_dir: Path, broker: Mosquitto
) -> tuple[list[float], dict[str, Any], list[int]]:
    async with fleet_hub(data_dir / "hub", broker) as hub, chromium() as browser:
        crew = await open_crew(browser, hub, "amb-5")
        dispatch = await open_dispatch(browser, hub)
        await wait_status(dispatch, "amb-5", "available")
        sizes = await crew.evaluate(
            "[...document.querySelectorAll('#statuses button')]"
            ".map(b => Math.min(b.offsetWidth, b.offsetHeight))"
        )
        latencies = []
        for name in ("dispatched", "en_route", "on_scene"):
            started = time.monotonic()
            await crew.tap(f"#statuses button[data-status='{name}']")
            await wait_status(dispatch, "amb-5", name)
            latencies.append(time.monotonic() - started)
            await crew.wait_for_selector(
                f"#statuses button[data-status='{name}'][aria-pressed='true']"
            )
        return latencies, await retained_status(broker, "amb-5"), sizes


def test_the_crew_status_button_reaches_dispatch(
    tmp_path: Path, mosquitto_server: Mosquitto
) -> None:
    latencies, retained, sizes = asyncio.run(status_scenario(tmp_path, mosquitto_server))
    # Reported, not asserted: the 2 s delivery goal is measured by loadtest/fleet.py.
    print(f"crew tap -> dispatch DOM: {', '.join(f'{s * 1000:.0f} ms' for s in latencies)}")
    assert len(latencies) == 3  # every status reached the dispatch page
    # Published to the broker as the unit's retained status, like a unit's own report.
    assert retained["unit_id"] == "amb-5" and retained["status"] == "on_scene"
    assert len(sizes) == 7 and min(sizes) >= 56, f"touch targets {sizes} px"


# -- A case from start to close -----------------------------------------------------------------


@asynccontextmanager
async def specialist(
    hub: RunningHub, case_id: str
) -> AsyncIterator[tuple[Any, asyncio.Queue[dict[str, Any]]]]:
    """A specialist on the room socket; every message it gets goes into the returned queue."""
    url = hub.url.replace("http://", "ws://") + f"/ws/rooms/{case_id}"
    token = hub.issuer.mint("cardiologist-1", "specialist")
    received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    async with websockets.connect(url, origin=websockets.Origin(hub.url)) as socket:
        await socket.send(json.dumps({"type": "auth", "token": token}))

        async def read() -> None:
            async for text in socket:
                received.put_nowait(json.loads(text))

        reading = asyncio.create_task(read())
        try:
            yield socket, received
        finally:
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)


async def first(
    received: asyncio.Queue[dict[str, Any]], what: str, match: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The next message for which ``match`` is true (earlier ones are dropped)."""

    async def wait() -> dict[str, Any]:
        while not match(message := await received.get()):
            pass
        return message

    result: dict[str, Any] = await within(SETUP_MS / 1000, what, wait())
    return result


async def case_scenario(data_dir: Path, broker: Mosquitto, screenshot: Path) -> dict[str, Any]:
    async with fleet_hub(data_dir / "hub", broker) as hub, chromium() as browser:
        page = await open_crew(browser, hub, "amb-6")
        await page.tap("#start-case")
        await page.wait_for_function("window.ambulinkCrew.caseId() !== null", timeout=SETUP_MS)
        case_id: str = await page.evaluate("window.ambulinkCrew.caseId()")
        # The tablet agent streams this case's ECG; the hub ties the case to the unit.
        client = AmbulanceClient(
            ClientSettings(
                hub_url=hub.url, unit_id="amb-6", buffer_dir=data_dir / "tablet", case_id=case_id
            ),
            RecordReplay(record_path("mitdb/100"), block_ms=40.0),
            hub.crew_token("amb-6"),
        )
        stop = asyncio.Event()
        running = asyncio.create_task(client.run(until=stop))
        try:
            tablet = Tablet(broker, "amb-6")
            async with tablet.client() as mqtt:
                await tablet.link(mqtt, 95.0, 1.2, buffered_frames=42)
            await page.wait_for_selector(
                "#link [data-key='buffered'] b:text-is('42')", timeout=SETUP_MS
            )
            await page.wait_for_function(
                f"window.ambulinkCrew.unit()?.case_id === '{case_id}'", timeout=SETUP_MS
            )
            age = "document.querySelector(\"#link [data-key='data-age']\").dataset.age"
            await page.wait_for_function(f"{age} !== '' && +{age} < 3", timeout=SETUP_MS)
            await page.wait_for_selector("#conn-room[data-state='live']", timeout=SETUP_MS)
            async with specialist(hub, case_id) as (socket, received):
                await first(received, "the specialist joining", lambda m: m["type"] == "joined")
                advice = "Aspirin 300 mg chewed, heparin per protocol"
                await socket.send(
                    json.dumps({"type": "action", "action": "advice", "text": advice})
                )
                await socket.send(
                    json.dumps({"type": "action", "action": "activate_cath_lab", "text": "lab 2"})
                )
                await page.wait_for_selector(
                    f"#advice li.advice:has-text('{advice}')", timeout=SETUP_MS
                )
                await page.wait_for_selector("#advice li.decision:has-text('ACTIVATE CATH LAB')")
                # A dead zone: NO SIGNAL for the case; the specialist acknowledges it.
                hub.network.blackout(True)
                alarm = await first(
                    received,
                    "NO SIGNAL for the specialist",
                    lambda m: m["type"] == "alarm" and m["alarm"]["kind"] == "no_signal",
                )
                alarm_id = alarm["alarm"]["alarm_id"]
                row = f"#alarms li[data-alarm-id='{alarm_id}']"
                await page.wait_for_selector(f"{row} button.ack", timeout=SETUP_MS)
                await socket.send(json.dumps({"type": "alarm_ack", "alarm_id": alarm_id}))
                await page.wait_for_selector(
                    f"{row} .acks:has-text('acknowledged by')", timeout=SETUP_MS
                )
                acks = await page.inner_text(f"{row} .acks")
                stale = await page.evaluate(f"+{age}")
                hub.network.blackout(False)
                await page.wait_for_function(f"+{age} < 3", timeout=45_000)
                await page.screenshot(path=str(screenshot))
            consult = await page.get_attribute("#consult", "href")
            # The crew ends the stream, then closes the case on the page.
            stop.set()
            await within(15, "the ambulance client stopping", running)
            await page.tap("#close-case")
            await page.tap("#confirm-close")
            await page.wait_for_function("window.ambulinkCrew.caseId() === null", timeout=SETUP_MS)
            assert hub.hub.fleet is not None
            return {
                "case_id": case_id,
                "acks": acks,
                "stale_age": stale,
                "consult": consult,
                "notice": await page.inner_text("#notice"),
                "hub_case": hub.hub.fleet.fleet.units["amb-6"].case_id,
            }
        finally:
            hub.network.blackout(False)
            stop.set()
            await within(15, "the ambulance client stopping", running)


def test_the_crew_page_runs_a_case(tmp_path: Path, mosquitto_server: Mosquitto) -> None:
    screenshot = tmp_path / "crew.png"
    seen = asyncio.run(case_scenario(tmp_path, mosquitto_server, screenshot))
    assert "acknowledged by specialist:cardiologist-1" in seen["acks"]
    assert seen["stale_age"] > 3
    assert str(seen["consult"]).startswith(f"/consult?case={seen['case_id']}#token=")
    assert seen["notice"] == f"case {seen['case_id'][:8]} closed"
    assert seen["hub_case"] is None
    save_screenshot(screenshot, "crew.png")


ALARM_ORDER = """async (alarms) => {
  const { renderAlarms } = await import("/web/crew/panels.js");
  const list = document.createElement("ul");
  renderAlarms(list, alarms, () => true);
  return [...list.querySelectorAll("li")].map((li) => li.dataset.alarmId);
}"""


def crew_alarm(
    alarm_id: str, priority: str, phase: str, raised_at: float, acked: bool
) -> dict[str, Any]:
    return {
        "alarm_id": alarm_id, "kind": "vt", "priority": priority, "phase": phase,
        "raised_at": raised_at, "onset_at": 1_700_000_000.0,
        "acks": [["crew:tablet-amb-1", "crew", raised_at + 5]] if acked else [],
    }  # fmt: skip


async def alarm_order_scenario(data_dir: Path, alarms: list[dict[str, Any]]) -> list[str]:
    async with running_hub(data_dir / "hub") as hub, chromium() as browser:
        page = await browser.new_page()
        await page.goto(f"{hub.url}/healthz")  # any page of the hub's origin can import modules
        order: list[str] = await page.evaluate(ALARM_ORDER, alarms)
        return order


def test_the_crew_sees_the_alarms_to_act_on_first(tmp_path: Path) -> None:
    # Raised at the same second, as a STEMI and its "not delivered" are: newest-first put the
    # cleared low-priority one on top.
    alarms = [
        crew_alarm("low-cleared", "low", "cleared", 10.0, acked=False),
        crew_alarm("medium", "medium", "active", 10.0, acked=False),
        crew_alarm("high-acked", "high", "active", 12.0, acked=True),
        crew_alarm("high", "high", "active", 5.0, acked=False),
        crew_alarm("high-newer", "high", "active", 8.0, acked=False),
        crew_alarm("high-latched", "high", "cleared", 6.0, acked=False),  # VT over, not acked
    ]
    order = asyncio.run(alarm_order_scenario(tmp_path, alarms))
    assert order == ["high-newer", "high-latched", "high", "medium", "high-acked", "low-cleared"]


ALARM_TITLES = """async (alarms) => {
  const { renderAlarms } = await import("/web/crew/panels.js");
  const { alarmTitle, analysisNotice } = await import("/web/js/alarm_text.js");
  const list = document.createElement("ul");
  renderAlarms(list, alarms, () => true);
  return {
    crew: [...list.querySelectorAll("li b")].map((b) => b.textContent),
    titles: alarms.map(alarmTitle),
    notices: [
      { kind: "analysis_lead", lead: "V1", backup: true },
      { kind: "analysis_lead", lead: "MLII", backup: false },
      { kind: "episode_start", label: "VT", delayed: true },
      { kind: "quality", lead: "V1" },
    ].map(analysisNotice),
  };
}"""


def test_lead_off_alarms_name_the_leads_and_a_lead_change_is_announced(tmp_path: Path) -> None:
    alarms = [
        {**crew_alarm("off", "medium", "active", 10.0, acked=False), "kind": "lead_off",
         "evidence": {"lead": "V1", "leads": ["MLII", "V1"]}},
        {**crew_alarm("vt", "high", "active", 11.0, acked=False)},
        {**crew_alarm("old", "medium", "cleared", 9.0, acked=True), "kind": "lead_off",
         "evidence": {"lead": "II"}},  # raised before alarms listed every lead
    ]  # fmt: skip

    async def scenario() -> dict[str, list[str | None]]:
        async with running_hub(tmp_path / "hub") as hub, chromium() as browser:
            page = await browser.new_page()
            await page.goto(f"{hub.url}/healthz")
            seen: dict[str, list[str | None]] = await page.evaluate(ALARM_TITLES, alarms)
            return seen

    seen = asyncio.run(scenario())
    assert seen["titles"] == ["Lead off: MLII, V1", "VT", "Lead off: II"]
    assert seen["crew"] == ["VT", "Lead off: MLII, V1", "Lead off: II (cleared)"]
    # the consult page's notices when the analysis moves to the backup lead and back
    assert seen["notices"] == [
        "analysis lead off: heart rate and rhythm now from V1",
        "heart rate and rhythm from MLII again",
        "VT started (from backfill)",
        None,
    ]
