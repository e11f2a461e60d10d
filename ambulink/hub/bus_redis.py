"""The bus on Redis Streams (``AMBULINK_REDIS_URL``), shared by hub processes (DESIGN §3.7).

The only module that imports redis: every redis error leaves it as ``BusError`` (Redis refused
the request) or ``BusUnavailable`` (Redis could not be reached), naming the server without
credentials.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import redis.asyncio
import redis.exceptions

from ambulink.errors import ConfigError
from ambulink.hub.bus import BusError, BusUnavailable, Entry, parse_entry_id, redact_url


class RedisBus:
    """``Bus`` on a Redis server; stream ``s`` is the key ``key_prefix + s``."""

    def __init__(self, client: redis.asyncio.Redis, url: str, key_prefix: str = "ambulink:"):
        self._redis = client
        self._where = redact_url(url)
        self._prefix = key_prefix

    @classmethod
    async def connect(cls, url: str, *, key_prefix: str = "ambulink:") -> RedisBus:
        """Connect to ``url`` (``redis://`` or ``rediss://``) and check the server answers."""
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(
                f"the Redis bus URL must start with redis:// or rediss://, got {redact_url(url)!r}"
            )
        try:
            client = redis.asyncio.Redis.from_url(url)
        except ValueError as exc:
            raise ConfigError(f"the Redis bus URL {redact_url(url)!r} is invalid: {exc}") from exc
        bus = cls(client, url, key_prefix)
        try:
            with bus._errors("connect to"):
                await client.ping()
        except BusError:
            await client.aclose()
            raise
        return bus

    async def close(self) -> None:
        await self._redis.aclose()

    async def append(
        self, stream: str, fields: dict[str, bytes | str], maxlen: int | None = None
    ) -> str:
        if not fields:
            raise BusError(f"an entry needs at least one field; got none for stream {stream}")
        if maxlen is not None and maxlen < 0:
            raise BusError(f"maxlen must be >= 0, got {maxlen}")
        with self._errors(f"append to stream {stream} on"):
            entry_id = await self._redis.xadd(
                self._key(stream),
                dict(fields),  # type: ignore[arg-type]  # redis-py's Dict is invariant
                maxlen=maxlen,
                approximate=False,  # exact, as the in-memory bus; the contract says maxlen
            )
        return _text(entry_id)

    async def read(
        self, stream: str, after: str = "0", count: int = 100, block_ms: int | None = None
    ) -> list[Entry]:
        _check(count, block_ms)
        if after != "$":
            parse_entry_id(after)
        with self._errors(f"read stream {stream} from"):
            reply = await self._redis.xread({self._key(stream): after}, count, block_ms)
        return _entries(reply)

    async def create_group(self, stream: str, group: str, start: str = "0") -> None:
        if start != "$":
            parse_entry_id(start)
        try:
            with self._errors(f"create group {group} of stream {stream} on"):
                await self._redis.xgroup_create(self._key(stream), group, start, mkstream=True)
        except BusError as exc:
            if not isinstance(exc.__cause__, redis.exceptions.ResponseError) or (
                "BUSYGROUP" not in str(exc.__cause__)
            ):
                raise

    async def read_group(
        self,
        stream: str,
        group: str,
        consumer: str,
        count: int = 100,
        block_ms: int | None = None,
    ) -> list[Entry]:
        _check(count, block_ms)
        with self._errors(f"read group {group} of stream {stream} from"):
            reply = await self._redis.xreadgroup(
                group, consumer, {self._key(stream): ">"}, count, block_ms
            )
        return _entries(reply)

    async def ack(self, stream: str, group: str, *ids: str) -> int:
        for entry_id in ids:
            parse_entry_id(entry_id)
        if not ids:
            return 0
        with self._errors(f"ack entries of group {group} of stream {stream} on"):
            return int(await self._redis.xack(self._key(stream), group, *ids))

    async def autoclaim(
        self, stream: str, group: str, consumer: str, min_idle_ms: int, count: int = 100
    ) -> list[Entry]:
        _check(count, None)
        claimed: list[Entry] = []
        cursor = "0-0"
        while len(claimed) < count:
            with self._errors(f"claim entries of group {group} of stream {stream} on"):
                reply = await self._redis.xautoclaim(
                    self._key(stream),
                    group,
                    consumer,
                    min_idle_ms,
                    cursor,
                    count=count - len(claimed),
                )
            claimed += _entry_list(reply[1])
            cursor = _text(reply[0])
            if cursor == "0-0":  # the whole pending list was scanned
                break
        return claimed

    # ---- helpers ---------------------------------------------------------------------------

    def _key(self, stream: str) -> str:
        return self._prefix + stream

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except (redis.exceptions.ResponseError, redis.exceptions.DataError) as exc:
            raise BusError(f"the Redis bus at {self._where} refused to {action} it: {exc}") from exc
        except redis.exceptions.RedisError as exc:
            raise BusUnavailable(
                f"could not {action} the Redis bus at {self._where}: {exc}"
            ) from exc


def _check(count: int, block_ms: int | None) -> None:
    if count < 1:
        raise BusError(f"count must be >= 1, got {count}")
    if block_ms is not None and block_ms < 0:
        raise BusError(f"block_ms must be >= 0 or None, got {block_ms}")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entries(reply: Any) -> list[Entry]:
    """XREAD/XREADGROUP replies for one stream, RESP2 (list of pairs) or RESP3 (dict)."""
    if not reply:
        return []
    streams = reply.values() if isinstance(reply, Mapping) else (pair[1] for pair in reply)
    return [entry for entries in streams for entry in _entry_list(entries)]


def _entry_list(entries: Sequence[Any]) -> list[Entry]:
    out: list[Entry] = []
    for entry_id, fields in entries:
        if fields is None:  # Redis 6.2 lists trimmed pending entries with nil fields
            continue
        if not isinstance(fields, Mapping):  # an unparsed flat [field, value, ...] list
            fields = dict(zip(fields[::2], fields[1::2], strict=True))
        out.append((_text(entry_id), {_text(k): bytes(v) for k, v in fields.items()}))
    return out
