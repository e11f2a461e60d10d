"""Fixtures for hub tests: a real redis-server for the whole run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import start_redis


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a redis-server started for this test run (skips when redis is not installed)."""
    server, url = start_redis()
    try:
        yield url
    finally:
        server.stop()
