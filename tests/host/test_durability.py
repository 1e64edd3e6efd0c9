"""`redis.fsync`: the embedded redis-server runs with it; a configured Redis must already."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.asyncio import Redis

from runtime.errors import ConfigError
from runtime.host.durability import check_fsync
from runtime.host.servers import EmbeddedRedis
from tests.clitools import rosey


async def _fsync_of(url: str) -> dict[str, str]:
    client = Redis.from_url(url, decode_responses=True)
    try:
        return {
            **await client.config_get("appendonly"),
            **await client.config_get("appendfsync"),
        }
    finally:
        await client.aclose()


async def test_embedded_redis_runs_with_the_fsync_asked_for(tmp_path: Path) -> None:
    for fsync in ("always", "everysec"):
        server = EmbeddedRedis(tmp_path / fsync, fsync=fsync)
        url = server.start()
        try:
            assert await _fsync_of(url) == {"appendonly": "yes", "appendfsync": fsync}
            client = Redis.from_url(url)
            try:
                await check_fsync(client, "always", "rosey.yaml")  # passes only for always
            except ConfigError as e:
                refused: ConfigError | None = e
            else:
                refused = None
            finally:
                await client.aclose()
        finally:
            server.stop()
        assert (refused is None) == (fsync == "always")


async def test_a_redis_that_syncs_less_often_is_refused(redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    try:
        with pytest.raises(ConfigError) as info:
            await check_fsync(client, "always", "rosey.yaml")
        await check_fsync(client, "everysec", "rosey.yaml")  # nothing to check
    finally:
        await client.aclose()
    assert info.value.key == "redis.fsync"
    assert "appendfsync everysec" in str(info.value)


def test_rosey_run_refuses_redis_without_always(project: Path, redis_url: str) -> None:
    (project / "rosey.yaml").write_text(f"redis:\n  url: {redis_url}\n  fsync: always\n")
    result = rosey(project, "run", stdin="!roll 2d6\n")
    assert result.returncode == 1, result.stdout
    assert "redis.fsync: is always, but this Redis runs with appendonly yes and appendfsync" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


def test_rosey_run_embedded_with_always_answers(project: Path) -> None:
    (project / "rosey.yaml").write_text("redis:\n  fsync: always\n")
    result = rosey(project, "run", stdin="!roll 2d6\n")
    assert result.returncode == 0, result.stderr
    assert "rosey: console rolled 2d6: [" in result.stdout


def test_fsync_takes_only_known_values(project: Path) -> None:
    (project / "rosey.yaml").write_text("redis:\n  fsync: sometimes\n")
    result = rosey(project, "run", stdin="")
    assert result.returncode != 0
    assert "redis.fsync: expected one of everysec, always, got 'sometimes'" in result.stderr
