"""The live viewer page in real headless Chromium (Debian's, driven by Playwright)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ambulink.ambulance_client.source import RecordReplay
from ambulink.ambulance_client.uplink import AmbulanceClient, ClientSettings
from ambulink.data import record_path
from tests.e2e.conftest import poll_until, running_hub
from tests.web.browser import chromium, needs_chromium

UNIT = "amb-9"
PASSWORD = "viewer-test-password"

pytestmark = needs_chromium


async def viewer_scenario(data_dir: Path, screenshot: Path) -> tuple[str, int, str]:
    async with running_hub(data_dir / "hub", demo_password=PASSWORD) as hub:
        client = AmbulanceClient(
            ClientSettings(hub_url=hub.url, unit_id=UNIT, buffer_dir=data_dir / "tablet"),
            RecordReplay(record_path("mitdb/201"), block_ms=40.0),
            hub.crew_token(UNIT),
        )
        stop = asyncio.Event()
        running = asyncio.create_task(client.run(until=stop))
        try:
            await poll_until(lambda: client.status.acked_seq >= 25, 15, "the first second stored")
            async with chromium() as browser:
                page = await browser.new_page(viewport={"width": 1300, "height": 700})
                await page.goto(f"{hub.url}/viewer")
                await page.fill("#password", "wrong")
                await page.click("text=Sign in")
                await page.wait_for_selector("#login-error:has-text('wrong demo password')")
                await page.fill("#password", PASSWORD)
                await page.click("text=Sign in")
                await page.wait_for_selector("#cases:not([hidden])")
                await page.click("#open")
                await page.wait_for_selector("#status:has-text('live')")
                # A few seconds of waveform on the canvas: count dark trace pixels.
                count_ink = """() => {
                  const c = document.getElementById('ecg');
                  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                  let n = 0;
                  for (let i = 0; i < d.length; i += 4) if (d[i] < 80 && d[i+1] < 80) n++;
                  return n;
                }"""
                await page.wait_for_function(f"({count_ink})() > 2000", timeout=15_000)
                ink = int(await page.evaluate(count_ink))
                await page.wait_for_selector("#age:has-text('data age')")
                status = await page.inner_text("#status")
                age = await page.inner_text("#age")
                await page.screenshot(path=str(screenshot))
            return status, ink, age
        finally:
            stop.set()
            await asyncio.wait_for(running, 15)


def test_the_viewer_shows_a_live_case(tmp_path: Path) -> None:
    status, ink, age = asyncio.run(viewer_scenario(tmp_path, tmp_path / "viewer.png"))
    assert status == "live"
    assert ink > 2000, f"only {ink} trace pixels on the canvas"
    assert age.startswith("data age")
