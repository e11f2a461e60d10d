"""POST /api/token/refresh on a real hub: pages renew their short-lived token during a consult."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from tests.e2e.conftest import running_hub


async def refresh_scenario(data_dir: Path) -> None:
    async with (
        running_hub(data_dir) as hub,
        httpx.AsyncClient(base_url=hub.url, timeout=10.0) as http,
    ):
        token = hub.crew_token("amb-3")()
        reply = await http.post("/api/token/refresh", headers={"Authorization": f"Bearer {token}"})
        assert reply.status_code == 200, reply.text
        renewed = reply.json()["token"]
        grant = hub.hub.tokens.verify(renewed)
        assert (grant.sub, grant.role, grant.unit) == ("tablet-amb-3", "crew", "amb-3")
        # The renewed token works where the old one did: the unit's crew opens a case.
        created = await http.post(
            "/api/cases",
            json={"unit_id": "amb-3"},
            headers={"Authorization": f"Bearer {renewed}"},
        )
        assert created.status_code == 201, created.text
        # A sign-in from more than 12 h ago is not renewed; no token is not renewed either.
        stale = hub.issuer.mint(
            "tablet-amb-3", "crew", unit="amb-3", signed_in_at=time.time() - 12 * 3600 - 1
        )
        refused = await http.post(
            "/api/token/refresh", headers={"Authorization": f"Bearer {stale}"}
        )
        assert refused.status_code == 401 and "sign in again" in refused.text
        assert (await http.post("/api/token/refresh")).status_code == 401


def test_a_token_is_renewed_with_its_claims_until_the_session_ends(tmp_path: Path) -> None:
    asyncio.run(refresh_scenario(tmp_path / "hub"))
