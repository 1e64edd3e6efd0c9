"""The runtime features the function library needs: Redis cooldowns, schedules, listening, stats."""

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from redis.asyncio import Redis

from runtime.config.cron import Cron, next_due
from runtime.config.keys import DEFAULT_NAMESPACE
from runtime.config.manifest import Command, parse
from runtime.core.cooldowns import SharedCooldowns
from runtime.core.schedule import Scheduler
from runtime.database.client import DatabaseClient
from runtime.database.service import DatabaseService
from runtime.wire.bus import Bus
from tests.conftest import Chat, MakeRuntime
from tests.fnkit import library

UTC = ZoneInfo("UTC")


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


# Cooldowns


async def test_cooldowns_hold_across_runtimes_in_redis(redis: Redis) -> None:
    name = "c" + uuid.uuid4().hex[:8]
    one, two = SharedCooldowns(redis), SharedCooldowns(redis)
    per_user = Command(name, cooldown=60)
    assert await one.remaining(per_user, "Amy", "chan") == 0
    assert 0 < await two.remaining(per_user, "amy", "chan") <= 60
    assert await two.remaining(per_user, "bob", "chan") == 0
    assert await two.remaining(per_user, "amy", "chan", rank=2) == 0  # moderators are exempt
    strict = Command(name + "s", cooldown=60, cooldown_per="channel", cooldown_exempt=None)
    assert await one.remaining(strict, "amy", "chan", rank=5) == 0
    assert await two.remaining(strict, "bob", "chan", rank=5) > 0  # same channel, nobody exempt
    assert await two.remaining(strict, "bob", "other") == 0
    everyone = Command(name + "g", cooldown=60, cooldown_per="global")
    assert await one.remaining(everyone, "amy", "a") == 0
    assert await two.remaining(everyone, "bob", "b") > 0


async def test_cooldowns_without_redis_use_memory() -> None:
    memory = SharedCooldowns()
    command = Command("x", cooldown=60, cooldown_per="channel")
    assert await memory.remaining(command, "amy", "chan") == 0
    assert await memory.remaining(command, "bob", "chan") > 0


def test_cooldown_object_and_number_forms() -> None:
    base = {"name": "x", "version": "1.0.0", "description": "d", "handler": "m:f"}
    f = parse(
        {
            **base,
            "commands": {
                "a": {"cooldown": 5},
                "b": {"cooldown": {"seconds": 9, "per": "global", "exempt_rank": None}},
            },
        }
    )
    a, b = f.commands["a"], f.commands["b"]
    assert (a.cooldown, a.cooldown_per, a.cooldown_exempt) == (5, "user", 2)
    assert (b.cooldown, b.cooldown_per, b.cooldown_exempt) == (9, "global", None)


# Schedules


def test_cron_next_times() -> None:
    wednesday_noon = datetime(2030, 1, 2, 12, 0, tzinfo=UTC)
    assert Cron.parse("0 20 * * fri").next_after(wednesday_noon) == datetime(
        2030, 1, 4, 20, 0, tzinfo=UTC
    )
    assert Cron.parse("*/15 * * * *").next_after(wednesday_noon) == datetime(
        2030, 1, 2, 12, 15, tzinfo=UTC
    )
    assert Cron.parse("0 9 1 * *").next_after(wednesday_noon) == datetime(
        2030, 2, 1, 9, 0, tzinfo=UTC
    )
    assert Cron.parse("30 8 * * mon-fri").next_after(wednesday_noon) == datetime(
        2030, 1, 3, 8, 30, tzinfo=UTC
    )
    for bad in ("0 20 * *", "61 * * * *", "0 0 * * funday", "*/0 * * * *"):
        with pytest.raises(ValueError):
            Cron.parse(bad)


def test_schedule_due_times_in_a_time_zone() -> None:
    f = parse(
        {
            "name": "x",
            "version": "1.0.0",
            "description": "d",
            "handler": "m:f",
            "schedules": [
                {"every": "30s"},
                {"name": "fri", "cron": "0 20 * * fri", "timezone": "Europe/London"},
            ],
        }
    )
    every, fri = f.schedules
    assert next_due(every, 1000.0) == 1020.0 and next_due(every, 1020.0) == 1050.0
    summer = datetime(2030, 7, 3, 12, 0, tzinfo=UTC).timestamp()  # London is UTC+1 in July
    assert datetime.fromtimestamp(next_due(fri, summer), UTC) == datetime(
        2030, 7, 5, 19, 0, tzinfo=UTC
    )


def test_bad_schedules_are_manifest_errors() -> None:
    from runtime.errors import ManifestError

    base = {"name": "x", "version": "1.0.0", "description": "d", "handler": "m:f"}
    for schedules, problem in (
        ([{"every": "soon"}], "schedules[0].every: 'soon' is not a duration"),
        (
            [{"cron": "0 20 * * fri", "timezone": "Mars/Base"}],
            "schedules[0].timezone: 'Mars/Base' is not a known time zone",
        ),
        (
            [{"every": "1m"}, {"every": "2m", "name": "schedule0"}],
            "schedules[1].name: 'schedule0' is already",
        ),
    ):
        with pytest.raises(ManifestError, match=problem.replace("[", r"\[").replace("]", r"\]")):
            parse({**base, "schedules": schedules})


async def test_one_runtime_claims_each_due_time(redis: Redis) -> None:
    f = parse(
        {
            "name": "s" + uuid.uuid4().hex[:8],
            "version": "1.0.0",
            "description": "d",
            "handler": "m:f",
            "schedules": [{"every": "30s"}],
        }
    )

    async def never(*_: Any) -> None:
        raise AssertionError

    spec = f.schedules[0]
    runtimes = [Scheduler(f, never, redis) for _ in range(3)]
    claims = [await s.claim(spec, 1020.0) for s in runtimes]
    assert claims.count(True) == 1
    assert await runtimes[0].claim(spec, 1050.0)
    assert await Scheduler(f, never, None).claim(spec, 1020.0)  # alone without Redis


TICKER = {
    "ticker": """\
    name: ticker
    version: "1.0.0"
    description: Says tick.
    handler: ticker:tick
    schedules:
      - {every: 1s}
    """
}


async def test_schedule_fires_the_handler_and_follows_swaps(
    make_runtime: MakeRuntime, chat: Chat, redis: Redis
) -> None:
    code = {"ticker.py": "def tick(event, ctx):\n    return f'{event.kind} {event.command} v1'\n"}
    runtime = await make_runtime(TICKER, code, redis=redis)
    assert (await chat.lines(1))[0] == "schedule schedule0 v1"
    folder = runtime.settings.functions_dir
    (folder / "ticker.py").write_text("def tick(event, ctx):\n    return 'v2'\n")
    new = parse({**_yaml(TICKER["ticker"]), "version": "2.0.0"})
    await runtime.swap(new, folder)
    old_count = len(chat.sent)
    while "v2" not in [p["message"] for _, p in chat.sent[old_count:]]:
        await chat.lines(len(chat.sent) + 1)
    assert list(runtime.schedules.running) == ["ticker"]
    await runtime.remove("ticker")
    assert runtime.schedules.running == {}


def _yaml(text: str) -> Any:
    import textwrap

    import yaml

    return yaml.safe_load(textwrap.dedent(text))


# Listening (trivia through NATS and the database) and stats


async def test_trivia_reads_plain_chat_while_a_question_is_open(
    make_runtime: MakeRuntime, chat: Chat, database: DatabaseService, bus: Bus
) -> None:
    manifests, code = library("trivia")
    manifests["trivia"] = manifests["trivia"].replace(
        "default_questions: 5", "default_questions: 1"
    )
    runtime = await make_runtime(
        manifests, code, db=lambda f: DatabaseClient(bus, f.name, f.collections)
    )
    await chat.say("!trivia start 1 science")
    lines = await chat.lines(2)
    assert lines[0] == "Trivia about science: 1 questions, answer in chat!"
    question = lines[1].split("]: ", 1)[1]
    from functions import trivia

    answer = next(q["answers"][0] for q in trivia.questions() if q["question"] == question)
    assert runtime.listening.active("trivia")
    await chat.say("not it", user="bob")
    await chat.say(answer.lower() + "!", user="cy")
    lines = await chat.lines(4)
    assert lines[2].startswith(f"cy got it: {answer} (+")
    assert lines[3].startswith("Trivia over! Scores: cy ")
    assert not runtime.listening.active("trivia")


async def test_stats_counts_commands_and_users(
    make_runtime: MakeRuntime, chat: Chat, tmp_path: Path
) -> None:
    manifests, code = library("stats", "dice")
    await make_runtime(manifests, code)
    await chat.say("!roll 2d6", user="amy")
    await chat.say("!flip", user="amy")
    await chat.lines(2)
    await chat.say("!roll", user="bob")
    await chat.lines(3)
    await chat.say("!stats", user="bob")
    line = (await chat.lines(4))[3]
    assert line.startswith("Served 3 commands in ")
    assert line.endswith("most used !roll; top users: amy (2), bob (1).")


async def test_8ball_cooldown_answers_with_how_long_to_wait(
    make_runtime: MakeRuntime, chat: Chat, redis: Redis
) -> None:
    await redis.delete(DEFAULT_NAMESPACE.join("cooldown", "8ball", "alice"))
    manifests, code = library("eightball")
    await make_runtime(manifests, code, redis=redis)
    await chat.say("!8ball will it?")
    await chat.say("!8ball again?")
    lines = await chat.lines(2)
    assert lines[0].startswith("alice: 🎱") or lines[1].startswith("alice: 🎱")
    assert any(line.startswith("alice: !8ball is cooling down, try again in ") for line in lines)
    await chat.say("!8ball mods?", user="mod", rank=2)
    await chat.say("!8ball mods again?", user="mod", rank=2)
    lines = await chat.lines(4)
    assert [line.startswith("mod: 🎱") for line in lines[2:]] == [True, True]
