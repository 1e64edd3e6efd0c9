"""Cooldown checks cost one Redis script call; `cooldowns: local` costs none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from runtime.config.keys import Namespace
from runtime.config.manifest import Command
from runtime.config.settings import Settings
from runtime.config.settings import load as load_settings
from runtime.core.cooldowns import SharedCooldowns
from runtime.core.runtime import Runtime, Wiring
from runtime.errors import ConfigError
from runtime.host.servers import free_port
from runtime.wire.bus import Bus


def calls(monkeypatch: pytest.MonkeyPatch, redis: Redis) -> list[str]:
    """The commands `redis` sends from now on (script calls as EVALSHA or EVAL)."""
    sent: list[str] = []
    execute = redis.execute_command

    async def counted(*args: Any, **options: Any) -> Any:
        sent.append(str(args[0]).upper())
        return await execute(*args, **options)

    monkeypatch.setattr(redis, "execute_command", counted)
    return sent


async def test_a_check_is_one_script_call(
    redis: Redis, keys: Namespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    cooldowns = SharedCooldowns(redis, keys)
    command = Command("roll", cooldown=30)
    assert await cooldowns.remaining(command, "amy", "chan", token="first") == 0
    assert await cooldowns.release(command, "amy", "chan", 0, "first")  # both scripts loaded
    sent = calls(monkeypatch, redis)
    assert await cooldowns.remaining(command, "amy", "chan", token="second") == 0
    left = await cooldowns.remaining(command, "AMY", "chan", token="third")
    assert 29 < left <= 30
    assert sent == ["EVALSHA", "EVALSHA"]  # one call each, booked or not: not SET then PTTL
    assert await cooldowns.release(command, "amy", "chan", 0, "second")
    assert sent == ["EVALSHA", "EVALSHA", "EVALSHA"]
    assert await cooldowns.remaining(command, "amy", "chan", token="fourth") == 0


async def test_scripts_survive_a_flushed_script_cache(redis: Redis, keys: Namespace) -> None:
    cooldowns = SharedCooldowns(redis, keys)
    command = Command("roll", cooldown=30)
    assert await cooldowns.remaining(command, "amy", "chan", token="a") == 0
    await redis.script_flush()  # as after a Redis restart: EVALSHA answers NOSCRIPT
    assert await cooldowns.remaining(command, "amy", "chan", token="b") > 0
    await redis.script_flush()
    assert await cooldowns.release(command, "amy", "chan", 0, "a")


async def test_a_key_without_expiry_holds_no_one_back(redis: Redis, keys: Namespace) -> None:
    await redis.set(keys.join("cooldown", "roll", "amy"), "not ours")
    command = Command("roll", cooldown=30)
    assert await SharedCooldowns(redis, keys).remaining(command, "amy", "chan") == 0


async def test_local_cooldowns_never_touch_redis(
    redis: Redis, keys: Namespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = calls(monkeypatch, redis)
    cooldowns = SharedCooldowns(redis, keys, mode="local")
    command = Command("roll", cooldown=30, cooldown_per="channel")
    assert await cooldowns.remaining(command, "amy", "chan", token="a") == 0
    assert 29 < await cooldowns.remaining(command, "bob", "chan", token="b") <= 30
    assert not await cooldowns.release(command, "bob", "chan", 0, "b")
    assert await cooldowns.release(command, "amy", "chan", 0, "a")
    assert sent == []
    assert await redis.exists(keys.join("cooldown", "roll", "#chan")) == 0


async def test_an_unreachable_redis_falls_back_to_memory(keys: Namespace) -> None:
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", decode_responses=True)
    try:
        cooldowns = SharedCooldowns(dead, keys)
        command = Command("roll", cooldown=30)
        assert await cooldowns.remaining(command, "amy", "chan", token="a") == 0
        assert await cooldowns.remaining(command, "amy", "chan", token="b") > 0
        assert await cooldowns.release(command, "amy", "chan", 0, "a")
    finally:
        await dead.aclose()


async def test_the_setting_chooses_where_the_runtime_keeps_them(
    redis: Redis, keys: Namespace, bus: Bus
) -> None:
    wiring = Wiring(redis=redis, keys=keys)
    shared = Runtime(Settings(), bus, [], wiring=wiring)
    local = Runtime(Settings(cooldowns="local"), bus, [], wiring=wiring)
    assert shared.router is not None and shared.router.cooldowns.redis is redis
    assert local.router is not None and local.router.cooldowns.redis is None


def test_the_setting_takes_shared_or_local(tmp_path: Path) -> None:
    path = tmp_path / "rosey.yaml"
    path.write_text("cooldowns: local\n")
    assert load_settings(path, environ={}).cooldowns == "local"
    assert load_settings(None, environ={}).cooldowns == "shared"
    path.write_text("cooldowns: everywhere\n")
    with pytest.raises(ConfigError, match="expected one of shared, local, got 'everywhere'"):
        load_settings(path, environ={})


@pytest.mark.parametrize("mode", ["shared", "local"])
async def test_a_command_delivered_again_is_not_held_back_by_its_own_booking(
    redis: Redis, keys: Namespace, mode: str
) -> None:
    """Durable delivery gives a command whose runtime died to another: the booking that the first
    delivery made under the command's id must not refuse the second (a stranger still waits)."""
    cooldowns = SharedCooldowns(redis, keys, mode=mode)
    command = Command(name="addquote", cooldown=30)
    assert await cooldowns.remaining(command, "ann", token="ROSEY_CHAT-7") == 0
    again = await cooldowns.remaining(command, "ann", token="ROSEY_CHAT-7")
    other = await cooldowns.remaining(command, "ann", token="ROSEY_CHAT-8")
    assert again == 0
    assert 29 < other <= 30
