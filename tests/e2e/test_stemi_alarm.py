"""An acute MI 12-lead streamed by the real client raises a STEMI alarm with its 12-lead image."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import httpx
from PIL import Image

from ambulink.ambulance_client.source import RecordReplay
from ambulink.ambulance_client.uplink import AmbulanceClient, ClientSettings
from ambulink.data import record_path
from tests.e2e.conftest import HubFactory, poll_until

UNIT = "amb-3"


async def stemi_scenario(hub_factory: HubFactory, buffer_dir: Path) -> tuple[dict, Image.Image]:  # type: ignore[type-arg]
    async with hub_factory() as hub:
        client = AmbulanceClient(
            ClientSettings(hub_url=hub.url, unit_id=UNIT, buffer_dir=buffer_dir),
            RecordReplay(record_path("ptbdb/s0010_re"), block_ms=40.0, speed=2.0),
            hub.crew_token(UNIT),
        )
        stop = asyncio.Event()
        running = asyncio.create_task(client.run(until=stop))
        try:
            await poll_until(lambda: client.case_id is not None, 10, "a case")
            case_id = client.case_id
            assert case_id is not None

            def stemi() -> list:  # type: ignore[type-arg]
                return [a for a in hub.hub.alarms.ledger.active(case_id) if a.kind.value == "stemi"]

            await poll_until(lambda: bool(stemi()), 30, "a STEMI alarm")
            (alarm,) = stemi()
            evidence = dict(alarm.evidence or {})
            token = hub.issuer.mint("cardiologist", "specialist")
            async with httpx.AsyncClient(base_url=hub.url, timeout=20.0) as http:
                response = await http.get(
                    f"/api/cases/{case_id}/streams/{evidence['stream_id']}/evidence.png",
                    params={"start": evidence["start"], "end": evidence["end"]},
                    headers={"Authorization": f"Bearer {token}"},
                )
                response.raise_for_status()
                assert response.headers["content-type"] == "image/png"
                bad = await http.get(
                    f"/api/cases/{case_id}/streams/1/evidence.png",
                    params={"start": 10, "end": 5},
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert bad.status_code == 400 and "evidence must be" in bad.text
            return {"priority": alarm.priority.value, **evidence}, Image.open(
                io.BytesIO(response.content)
            )
        finally:
            stop.set()
            await asyncio.wait_for(running, 15)


def test_an_acute_mi_stream_raises_stemi_with_a_12_lead_image(
    hub_factory: HubFactory, tmp_path: Path
) -> None:
    alarm, image = asyncio.run(stemi_scenario(hub_factory, tmp_path / "tablet"))
    assert alarm["priority"] == "medium"
    assert alarm["territories"] and alarm["reasons"]
    assert alarm["end"] - alarm["start"] == 10 * 1000  # a 10 s window at 1000 Hz
    assert image.size == (1350, 1025)  # the 3x4 + rhythm strip page at 5 px/mm
