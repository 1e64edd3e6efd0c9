"""One connector per channel across processes: a lease in Redis with a time to live.

Taken with `SET key token NX PX ttl`, kept by a compare-and-extend script every third of the TTL,
and given back by a compare-and-delete script. A holder that dies stops renewing, so the lease
lapses after at most one TTL and a standby process takes it. Redis rather than NATS because the
core NATS server Rosey embeds has no key-value store (that needs JetStream), and Redis is already
the database. Without a Redis URL the lease is local to the process.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from runtime.errors import ConnectorError

KEY_PREFIX = "rosey:lease:cytube:"

# Extend only while the lease is still ours: a holder that was paused past its TTL must not
# extend a lease another process has taken since.
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


class Lease(Protocol):
    token: str

    async def acquire(self) -> bool: ...

    async def renew(self) -> bool: ...

    async def release(self) -> None: ...

    async def holder(self) -> str | None: ...

    async def close(self) -> None: ...


def new_token() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LocalLease:
    """Always held: for a single process, when no Redis is configured."""

    def __init__(self) -> None:
        self.token = new_token()

    async def acquire(self) -> bool:
        return True

    async def renew(self) -> bool:
        return True

    async def release(self) -> None:
        return None

    async def holder(self) -> str | None:
        return self.token

    async def close(self) -> None:
        return None


class RedisLease:
    """The lease `key` in the Redis at `url`, held for `ttl` seconds at a time."""

    def __init__(self, url: str, key: str, ttl: float, channel: str = "") -> None:
        self.url, self.key, self.channel = url, key, channel or key
        self.ttl_ms = max(1, int(ttl * 1000))
        self.token = new_token()
        self._redis: aioredis.Redis | None = None

    def _client(self) -> aioredis.Redis:
        if self._redis is None:
            self._redis = aioredis.Redis.from_url(
                self.url, decode_responses=True, socket_timeout=5, socket_connect_timeout=5
            )
        return self._redis

    def _error(self, operation: str, e: Exception) -> ConnectorError:
        return ConnectorError(self.channel, f"lease {operation} in Redis failed: {e}", fatal=False)

    async def acquire(self) -> bool:
        try:
            return bool(await self._client().set(self.key, self.token, nx=True, px=self.ttl_ms))
        except RedisError as e:
            raise self._error("acquire", e) from e

    async def renew(self) -> bool:
        try:
            result = await self._client().eval(_RENEW, 1, self.key, self.token, self.ttl_ms)
        except RedisError as e:
            raise self._error("renewal", e) from e
        return bool(result)

    async def release(self) -> None:
        try:
            await self._client().eval(_RELEASE, 1, self.key, self.token)
        except RedisError as e:
            raise self._error("release", e) from e

    async def holder(self) -> str | None:
        try:
            value = await self._client().get(self.key)
        except RedisError as e:
            raise self._error("lookup", e) from e
        return str(value) if value is not None else None

    async def close(self) -> None:
        client, self._redis = self._redis, None
        if client is not None:
            await client.aclose()


def make_lease(redis_url: str | None, server: str, channel: str, ttl: float) -> Lease:
    """A Redis lease named after the CyTube server and channel, or a local one without Redis."""
    if not redis_url:
        return LocalLease()
    return RedisLease(redis_url, f"{KEY_PREFIX}{server}/{channel.lower()}", ttl, channel)
