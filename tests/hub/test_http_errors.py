"""Errors a real hub sends: one JSON shape, ``{"error": {"code", "message"}}``, for requests
FastAPI cannot validate as for the hub's own refusals, so every page shows the message."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import running_hub

PASSWORD = "errors-demo"


async def login_replies(data_dir: Path) -> list[tuple[int, Any]]:
    async with (
        running_hub(data_dir, demo_password=PASSWORD) as hub,
        httpx.AsyncClient(base_url=hub.url, timeout=10.0) as http,
    ):
        bodies: list[Any] = [
            {"password": PASSWORD, "name": "Dr Who"},  # a space in the name
            {"password": PASSWORD, "role": "surgeon"},  # not a role
            {"password": PASSWORD, "role": "crew"},  # valid JSON, refused by the hub
            [1, 2],  # not an object
        ]
        replies = []
        for body in bodies:
            reply = await http.post("/api/demo/login", json=body)
            replies.append((reply.status_code, reply.json()))
        return replies


def test_invalid_requests_get_the_hubs_error_shape_naming_the_field(tmp_path: Path) -> None:
    name, role, crew, not_object = asyncio.run(login_replies(tmp_path / "hub"))
    assert name[0] == 422 and name[1]["error"]["code"] == "invalid_request"
    assert name[1]["error"]["message"].startswith("name: String should match pattern")
    assert role[0] == 422 and role[1]["error"]["message"].startswith("role: ")
    assert "'crew'" in role[1]["error"]["message"]  # says what would do
    assert crew[0] == 400 and crew[1]["error"]["code"] == "config_error"
    assert "unit" in crew[1]["error"]["message"]
    assert not_object[0] == 422 and "error" in not_object[1]
