import asyncio
import sqlite3
from pathlib import Path

import pytest

from ambulink.hub.audit import AuditBroken, AuditLog


def test_the_chain_verifies_survives_reopening_and_catches_tampering(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"

    async def scenario() -> tuple[int, int]:
        log = await AuditLog(path, clock=lambda: 1000.0).open()
        await log.append("specialist:d1", "view", "case-1")
        await log.append("specialist:d1", "ack", "alarm-1")
        await log.append("crew:c1", "ack", "alarm-1", "alarm_rejected")
        first = await log.verify()
        await log.close()
        reopened = await AuditLog(path).open()
        await reopened.append("dispatch:x", "denied", "case-2", "forbidden")
        second = await reopened.verify()
        records = await reopened.records()
        assert [r.action for r in records] == ["view", "ack", "ack", "denied"]
        assert records[2].outcome == "alarm_rejected"
        assert records[3].prev == records[2].digest
        await reopened.close()
        return first, second

    assert asyncio.run(scenario()) == (3, 4)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE audit SET actor = 'someone-else' WHERE seq = 2")

    async def verify() -> None:
        log = await AuditLog(path).open()
        try:
            await log.verify()
        finally:
            await log.close()

    with pytest.raises(AuditBroken, match="record 2"):
        asyncio.run(verify())
