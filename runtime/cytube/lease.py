"""One connector per channel across processes: a lease in Redis with a time to live.

Taken with `SET key token NX PX ttl`, kept by a compare-and-extend script every third of the TTL,
and given back by a compare-and-delete script. A holder that dies stops renewing, so the lease
lapses after at most one TTL and a standby process takes it. Redis rather than NATS because the
core NATS server Rosey embeds has no key-value store (that needs JetStream), and Redis is already
the database. Without Redis the lease is local to the process.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from runtime.config.keys import Namespace
from runtime.errors import ConnectorError

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


class RedisLease:
    """The lease `key`, held for `ttl` seconds at a time, on the process's Redis client (which
    its owner closes)."""

    def __init__(self, redis: Redis, key: str, ttl: float, channel: str = "") -> None:
        self.redis, self.key, self.channel = redis, key, channel or key
        self.ttl_ms = max(1, int(ttl * 1000))
        self.token = new_token()

    def _error(self, operation: str, e: Exception) -> ConnectorError:
        return ConnectorError(self.channel, f"lease {operation} in Redis failed: {e}", fatal=False)

    async def acquire(self) -> bool:
        try:
            return bool(await self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms))
        except RedisError as e:
            raise self._error("acquire", e) from e

    async def renew(self) -> bool:
        try:
            result = await self.redis.eval(_RENEW, 1, self.key, self.token, self.ttl_ms)
        except RedisError as e:
            raise self._error("renewal", e) from e
        return bool(result)

    async def release(self) -> None:
        try:
            await self.redis.eval(_RELEASE, 1, self.key, self.token)
        except RedisError as e:
            raise self._error("release", e) from e

    async def holder(self) -> str | None:
        try:
            value = await self.redis.get(self.key)
        except RedisError as e:
            raise self._error("lookup", e) from e
        return str(value) if value is not None else None


def make_lease(
    redis: Redis | None, keys: Namespace, server: str, channel: str, ttl: float
) -> Lease:
    """The lease of the CyTube server's channel under `keys`, or a local one without Redis."""
    if redis is None:
        return LocalLease()
    key = keys.join("lease", "cytube", f"{server}/{channel.lower()}")
    return RedisLease(redis, key, ttl, channel)
