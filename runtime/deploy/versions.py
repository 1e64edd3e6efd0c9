"""Deployed bundles kept in Redis with their history, so every runtime converges on them."""

from __future__ import annotations

import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from runtime.config.keys import DEFAULT_PREFIX, Namespace
from runtime.core.bundle import Bundle
from runtime.errors import DeployError, StoreError

log = logging.getLogger("rosey.versions")


class Versions:
    """Under `<prefix>deploy:`, `current` maps name → bundle, `removed` holds the names removed
    since, and `history:<name>` lists the last `keep` bundles, newest first."""

    def __init__(self, redis: Redis, keys: Namespace, keep: int = 5) -> None:
        """`redis` is the process's client (decode_responses=True), closed by its owner."""
        self.redis, self.keys, self.keep = redis, keys, keep
        self._owned = False

    @classmethod
    def connect(cls, url: str, prefix: str = DEFAULT_PREFIX, keep: int = 5) -> Versions:
        """Versions with a client of its own (tests, bench); `close()` closes it."""
        versions = cls(Redis.from_url(url, decode_responses=True), Namespace(prefix), keep)
        versions._owned = True
        return versions

    async def close(self) -> None:
        """Closes the client if `connect` opened it; a shared one is its owner's to close."""
        if self._owned:
            await self.redis.aclose()

    def _key(self, *parts: str) -> str:
        return self.keys.join("deploy", *parts)

    async def save(self, bundle: Bundle) -> None:
        """Make `bundle` current and push it onto its history, in one transaction."""
        data = bundle.to_json()
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(self._key("current"), bundle.name, data)
                pipe.srem(self._key("removed"), bundle.name)
                history = self._key("history", bundle.name)
                pipe.lrem(history, 0, data)
                pipe.lpush(history, data)
                pipe.ltrim(history, 0, self.keep - 1)
                await pipe.execute()
        except RedisError as e:
            raise StoreError("save bundle", str(e)) from e

    async def current(self) -> dict[str, Bundle]:
        try:
            raw = await self.redis.hgetall(self._key("current"))
        except RedisError as e:
            raise StoreError("read bundles", str(e)) from e
        found: dict[str, Bundle] = {}
        for key, data in raw.items():
            name = str(key)
            try:
                found[name] = Bundle.from_json(data)
            except (DeployError, ValueError) as e:
                log.error("stored bundle of %s is unreadable: %s", name, e)
        return found

    async def removed(self) -> set[str]:
        try:
            return {str(m) for m in await self.redis.smembers(self._key("removed"))}
        except RedisError as e:
            raise StoreError("read removals", str(e)) from e

    async def history(self, name: str) -> list[Bundle]:
        try:
            raw = await self.redis.lrange(self._key("history", name), 0, -1)
        except RedisError as e:
            raise StoreError("read history", str(e)) from e
        return [Bundle.from_json(item) for item in raw]

    async def find(self, name: str, version: str | None = None, hash: str | None = None) -> Bundle:
        """A bundle from the history: by hash, by version, or (neither) the one to roll back to:
        the one before current, or, after `rosey remove`, the removed one itself (the newest)."""
        history = await self.history(name)
        if hash:
            match = [b for b in history if b.hash == hash]
        elif version:
            match = [b for b in history if b.version == version]
        elif await self.is_current(name):
            match = history[1:2]
        else:
            match = history[:1]
        if not match:
            kept = ", ".join(b.version for b in history) or "none"
            if version:
                wanted = f"no version {version}"
            elif hash:
                wanted = f"no bundle {hash}"
            else:
                wanted = "no earlier version" if history else "no deployed version"
            raise DeployError(name, f"{wanted} in the history (kept: {kept})")
        return match[0]

    async def is_current(self, name: str) -> bool:
        """Whether a deployed bundle of `name` is current (deployed and not removed since)."""
        try:
            return bool(await self.redis.hexists(self._key("current"), name))
        except RedisError as e:
            raise StoreError("read bundles", str(e)) from e

    async def remove(self, name: str) -> None:
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hdel(self._key("current"), name)
                pipe.sadd(self._key("removed"), name)
                await pipe.execute()
        except RedisError as e:
            raise StoreError("remove bundle", str(e)) from e

    async def generation(self) -> int:
        """The deployment generation: how many deploys, rollbacks and removals there have been."""
        try:
            return int(await self.redis.get(self._key("generation")) or 0)
        except RedisError as e:
            raise StoreError("read the deployment generation", str(e)) from e

    async def next_generation(self) -> int:
        """Count one more deploy, rollback or removal; the generation its announcement carries."""
        try:
            return int(await self.redis.incr(self._key("generation")))
        except RedisError as e:
            raise StoreError("count the deployment generation", str(e)) from e
