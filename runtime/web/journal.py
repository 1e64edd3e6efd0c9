"""The deploy journal: every deploy, rollback and removal of any runtime, with when and by whom.

Versions (runtime/deploy/versions.py) keep the bundles, not who shipped them or when. Every
runtime that handles a deploy announces it on `rosey.deploy.apply` (signed, with its deployment
generation); each console hears those announcements and writes one entry per generation into a
Redis hash, so the journal covers every runtime for as long as any console runs. "By" is the
console and the address of the browser for what a console did, else the holder of the deploy
token (`rosey deploy`, `rosey rollback`, `rosey remove` or another console)."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from redis.asyncio import Redis
from redis.exceptions import RedisError

from runtime.config.keys import Namespace
from runtime.constants import DEPLOY_APPLY
from runtime.deploy.versions import Versions
from runtime.errors import RoseyError
from runtime.wire.bus import Bus

log = logging.getLogger("rosey.console")

KEEP = 500  # journal entries kept
CLAIM = 30.0  # seconds a console's claim on the next deploy of a function lasts
TOKEN_HOLDER = "deploy token (rosey CLI)"


class Journal:
    """Writes the announcements it hears on `rosey.deploy.apply` and reads them back."""

    def __init__(
        self,
        bus: Bus,
        redis: Redis | None,
        keys: Namespace,
        versions: Versions | None,
        notify: Callable[[dict[str, Any]], None] = lambda entry: None,
    ) -> None:
        self.bus, self.redis, self.versions, self.notify = bus, redis, versions, notify
        self.key = keys.join("console", "deploys")
        self.claims: dict[str, tuple[str, str, float]] = {}  # name → (by, action, until)
        self._sub: Subscription | None = None

    async def start(self) -> None:
        self._sub = await self.bus.nc.subscribe(DEPLOY_APPLY, cb=self._heard)

    async def stop(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    def claim(self, name: str, by: str, action: str) -> None:
        """The next announcement about `name` is this console's doing (`action` by `by`)."""
        self.claims[name] = (by, action, time.monotonic() + CLAIM)

    def unclaim(self, name: str) -> None:
        """The console's request about `name` failed: nothing will be announced for it."""
        self.claims.pop(name, None)

    async def _heard(self, msg: Msg) -> None:
        try:
            payload = json.loads(msg.data)
            name, generation = str(payload["name"]), int(payload["generation"])
            action = "remove" if payload.get("action") == "remove" else "deploy"
        except (ValueError, KeyError, TypeError):
            return
        by, ours = TOKEN_HOLDER, False
        claim = self.claims.pop(name, None)
        if claim is not None and claim[2] > time.monotonic():
            by, action, ours = claim[0], claim[1], True
        entry = {
            "generation": generation,
            "name": name,
            "action": action,
            "hash": str(payload.get("hash") or ""),
            "version": await self._version(name, payload.get("hash")),
            "by": by,
            "runtime": str(payload.get("origin", "")),
            "time": float(payload.get("issued") or time.time()),
        }
        await self._write(entry, ours)
        self.notify(entry)

    async def _version(self, name: str, bundle_hash: Any) -> str:
        if not bundle_hash or self.versions is None:
            return ""
        try:
            return (await self.versions.find(name, hash=str(bundle_hash))).version
        except RoseyError:
            return ""

    async def _write(self, entry: dict[str, Any], ours: bool) -> None:
        """One field per generation: several consoles hear the same announcement; the one that
        did it knows who, so it overwrites, and the others write only what is not there."""
        if self.redis is None:
            return
        field, data = str(entry["generation"]), json.dumps(entry)
        try:
            if ours:
                await self.redis.hset(self.key, field, data)
            else:
                await self.redis.hsetnx(self.key, field, data)
            if await self.redis.hlen(self.key) > KEEP + 50:
                fields = sorted(int(f) for f in await self.redis.hkeys(self.key))
                await self.redis.hdel(self.key, *[str(f) for f in fields[:-KEEP]])
        except (RedisError, OSError) as e:
            log.warning("deploy journal not written: %s", e)

    async def entries(self, name: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The newest entries first (of `name` only, if given)."""
        if self.redis is None:
            return []
        try:
            raw = await self.redis.hgetall(self.key)
        except (RedisError, OSError) as e:
            log.warning("deploy journal not read: %s", e)
            return []
        found = []
        for data in raw.values():
            with contextlib.suppress(ValueError, TypeError):
                entry = json.loads(data)
                if name is None or entry.get("name") == name:
                    found.append(entry)
        found.sort(key=lambda e: e.get("generation", 0), reverse=True)
        return found[:limit]

    async def by_hash(self, name: str) -> dict[str, dict[str, Any]]:
        """The latest deploy of each bundle hash of `name`."""
        found: dict[str, dict[str, Any]] = {}
        for entry in await self.entries(name, KEEP):
            if entry.get("hash"):
                found.setdefault(entry["hash"], entry)
        return found
