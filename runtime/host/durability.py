"""`redis.fsync: always` promised of a Redis Rosey did not start: check that it keeps it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from runtime.errors import ConfigError

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("rosey.redis")


async def check_fsync(redis: Redis, fsync: str, source: str) -> None:
    """With `redis.fsync: always`, refuse a Redis whose append-only file is off or synced less
    often: an acknowledged write could then be lost on power loss, which the setting rules out.
    A Redis that does not let us read its configuration (managed services often refuse CONFIG)
    is taken on trust, with a warning saying so."""
    if fsync != "always":
        return
    try:
        found = {
            **await redis.config_get("appendonly"),
            **await redis.config_get("appendfsync"),
        }
    except Exception as e:  # redis-py raises a family per refusal; any means "cannot tell"
        log.warning(
            "redis.fsync is always but this Redis does not show its configuration (%s): "
            "make sure it runs with appendonly yes and appendfsync always",
            e,
        )
        return
    appendonly, appendfsync = found.get("appendonly", ""), found.get("appendfsync", "")
    if appendonly != "yes" or appendfsync != "always":
        raise ConfigError(
            source,
            "redis.fsync",
            f"is always, but this Redis runs with appendonly {appendonly or '?'} and "
            f"appendfsync {appendfsync or '?'}: set both (appendonly yes, appendfsync always) "
            "in its configuration, or use redis.fsync: everysec",
        )
