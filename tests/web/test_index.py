"""The hub's front page: a link to every browser app, each of which the hub serves."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx

from tests.e2e.conftest import running_hub


async def front_page_and_links(data_dir: Path) -> tuple[httpx.Response, dict[str, int]]:
    async with (
        running_hub(data_dir) as hub,
        httpx.AsyncClient(base_url=hub.url, timeout=10.0) as http,
    ):
        front = await http.get("/")
        links = re.findall(r'href="(/[a-z]+)"', front.text)
        return front, {link: (await http.get(link)).status_code for link in links}


def test_the_front_page_links_every_browser_app(tmp_path: Path) -> None:
    front, links = asyncio.run(front_page_and_links(tmp_path / "hub"))
    assert front.status_code == 200
    assert front.headers["content-type"].startswith("text/html")
    assert set(links) == {"/consult", "/dispatch", "/crew", "/viewer"}
    assert all(status == 200 for status in links.values()), links
