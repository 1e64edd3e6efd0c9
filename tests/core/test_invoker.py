import json
import logging
from typing import Any

import pytest

from runtime.wire.bus import Bus
from tests.conftest import Chat, MakeRuntime, wait_for

CODE = {
    "work.py": """\
    import asyncio
    import threading
    import time

    RELEASE = threading.Event()

    async def ok(event, ctx):
        return "ok " + event.text

    def boom(event, ctx):
        raise RuntimeError("secret internal detail")

    async def hang(event, ctx):
        await asyncio.sleep(3600)  # hangs on purpose: outlives the timeout

    def block(event, ctx):
        RELEASE.wait(10)
        return "too late"

    async def lines(event, ctx):
        await ctx.reply("first")
        return ["second", "third\\nfourth"]

    def sync_ctx(event, ctx):
        ctx.send_chat("from a thread")
        ctx.send_pm(event.user, "psst")
        return None

    async def answer(event, ctx):
        if event.kind == "request":
            return {"sum": event.payload["a"] + event.payload["b"]}
        return f"{event.kind} {event.command}"

    async def greet(event, ctx):
        await ctx.send_chat(f"welcome {event.user} ({ctx.config['greeting']})")

    async def nothing(event, ctx):
        return None

    async def slow(event, ctx):
        await asyncio.sleep(0.3)  # long enough for two calls to overlap
        return "slow done"

    def dbless(event, ctx):
        return ctx.db.get("x", 1)
    """
}

MANIFEST = {
    "work": """\
    name: work
    version: "1.2.0"
    description: Test function.
    handler: work:answer
    timeout: 0.5
    concurrency: 2
    config: {greeting: hi}
    commands:
      ok: {handler: "work:ok"}
      boom: {handler: "work:boom"}
      hang: {handler: "work:hang"}
      block: {handler: "work:block"}
      lines: {handler: "work:lines"}
      syncctx: {handler: "work:sync_ctx"}
      nothing: {handler: "work:nothing"}
      slow: {handler: "work:slow"}
      dbless: {handler: "work:dbless"}
      answer: {}
    subjects:
      - subject: cytube.user.join
        handler: work:greet
    """
}


async def test_exception_gives_one_short_line_and_logs_traceback(
    make_runtime: MakeRuntime, chat: Chat, caplog: pytest.LogCaptureFixture
) -> None:
    await make_runtime(MANIFEST, CODE)
    with caplog.at_level(logging.ERROR):
        await chat.say("!boom")
        assert await chat.lines(1) == ["Sorry, boom failed."]
    record = next(r for r in caplog.records if r.name == "rosey.fn.work")
    assert "work 1.2.0 failed: RuntimeError: secret internal detail" in record.getMessage()
    assert record.exc_info is not None
    assert "secret" not in " ".join(await chat.lines(1))


async def test_failure_does_not_affect_other_commands(
    make_runtime: MakeRuntime, chat: Chat
) -> None:
    await make_runtime(MANIFEST, CODE)
    await chat.say("!boom")
    await chat.say("!ok still")
    assert sorted(await chat.lines(2)) == ["Sorry, boom failed.", "ok still"]


async def test_async_timeout_is_cancelled_and_reported(
    make_runtime: MakeRuntime, chat: Chat
) -> None:
    runtime = await make_runtime(MANIFEST, CODE)
    await chat.say("!hang")
    assert await chat.lines(1) == ["Sorry, hang took too long."]
    assert runtime.invokers["work"].in_flight == 0
    await chat.say("!ok after")
    assert (await chat.lines(2))[1] == "ok after"


async def test_blocking_sync_handler_does_not_block_the_loop(
    make_runtime: MakeRuntime, chat: Chat
) -> None:
    runtime = await make_runtime(MANIFEST, CODE)
    module = next(iter(runtime.invokers["work"].code.handlers.values())).__globals__
    await chat.say("!block")
    await chat.say("!ok meanwhile")
    lines = await chat.lines(2)
    assert lines == ["ok meanwhile", "Sorry, block took too long."]
    # The thread still holds its slot until it returns; its late result is discarded.
    assert runtime.invokers["work"].in_flight == 1
    module["RELEASE"].set()
    await wait_for(lambda: runtime.invokers["work"].in_flight == 0)
    assert len(await chat.settle(runtime)) == 2


async def test_concurrency_limit_queues_then_answers_busy(
    make_runtime: MakeRuntime, chat: Chat
) -> None:
    runtime = await make_runtime(MANIFEST, CODE)
    # concurrency 2 and a wait queue of 4 per slot: 2 run, 8 wait, the rest are told at once.
    for _ in range(12):
        await chat.say("!hang")
    first = await chat.lines(2)
    assert first == ["work is busy, try again in a moment."] * 2
    assert runtime.invokers["work"].in_flight == 2
    assert runtime.invokers["work"].waiting == 8
    lines = await chat.lines(12)
    assert set(lines) <= {"work is busy, try again in a moment.", "Sorry, hang took too long."}
    assert runtime.invokers["work"].stats.busy + runtime.invokers["work"].stats.timeouts == 12


async def test_invocations_run_concurrently(make_runtime: MakeRuntime, chat: Chat) -> None:
    runtime = await make_runtime(MANIFEST, CODE, settings={})
    await chat.say("!slow")
    await chat.say("!slow")
    # Each call takes 0.3 s: both in flight at once is only reached if they overlap.
    await wait_for(lambda: runtime.invokers["work"].in_flight == 2)
    assert await chat.lines(2) == ["slow done", "slow done"]


async def test_list_and_multiline_results(make_runtime: MakeRuntime, chat: Chat) -> None:
    await make_runtime(MANIFEST, CODE)
    await chat.say("!lines")
    assert await chat.lines(4) == ["first", "second", "third", "fourth"]


async def test_sync_handler_uses_blocking_context(make_runtime: MakeRuntime, chat: Chat) -> None:
    await make_runtime(MANIFEST, CODE)
    await chat.say("!syncctx", user="zed")
    replies = await chat.replies(2)
    assert replies == [
        ("cytube.send.chat", {"message": "from a thread", "channel": "test"}),
        ("cytube.send.pm", {"to": "zed", "message": "psst", "channel": "test"}),
    ]


async def test_none_sends_nothing(make_runtime: MakeRuntime, chat: Chat) -> None:
    runtime = await make_runtime(MANIFEST, CODE)
    await chat.say("!nothing")
    await chat.say("!ok x")
    assert await chat.lines(1) == ["ok x"]
    assert len(await chat.settle(runtime)) == 1


async def test_db_not_available_is_a_clear_error(
    make_runtime: MakeRuntime, chat: Chat, caplog: pytest.LogCaptureFixture
) -> None:
    await make_runtime(MANIFEST, CODE)
    await chat.say("!dbless")
    assert await chat.lines(1) == ["Sorry, dbless failed."]
    assert any("the database is not available" in r.getMessage() for r in caplog.records)


async def test_subject_binding_gets_events(make_runtime: MakeRuntime, chat: Chat, bus: Bus) -> None:
    await make_runtime(MANIFEST, CODE)
    await bus.publish(
        "cytube.user.join", {"user": "newbie", "channel": "test", "rank": 0, "time": 1}
    )
    assert await chat.lines(1) == ["welcome newbie (hi)"]


async def test_request_returns_dict_in_envelope(make_runtime: MakeRuntime, bus: Bus) -> None:
    await make_runtime(MANIFEST, CODE)
    reply = await bus.request("plugin.work.request", {"a": 2, "b": 3})
    assert reply == {"success": True, "data": {"sum": 5}}


async def test_command_as_request_returns_replies(make_runtime: MakeRuntime, bus: Bus) -> None:
    await make_runtime(MANIFEST, CODE)
    command = {"command": "lines", "args": [], "user": "u", "rank": 0}
    reply = await bus.request("plugin.work.command", command)
    assert reply == {"success": True, "data": {"replies": ["first", "second", "third", "fourth"]}}
    reply = await bus.request("plugin.work.command", {**command, "command": "hang"})
    assert reply == {
        "success": False,
        "error": "Sorry, hang took too long.",
        "error_code": "TIMEOUT",
    }
    reply = await bus.request("plugin.work.command", {**command, "command": "boom"})
    assert reply["error_code"] == "PLUGIN_ERROR"


async def test_malformed_command_payloads_get_invalid_input(
    make_runtime: MakeRuntime, bus: Bus
) -> None:
    await make_runtime(MANIFEST, CODE)
    for raw, expected in [
        (b"{nope", "payload is not JSON"),
        (json.dumps({"command": "ok", "user": "u", "rank": 0}).encode(), "args: required field"),
        (
            json.dumps({"command": "ok", "args": "x", "user": "u", "rank": 0}).encode(),
            "args: 'x' is not of type 'array'",
        ),
        (
            json.dumps({"command": "nope", "args": [], "user": "u", "rank": 0}).encode(),
            "unknown command 'nope'",
        ),
        (b"x" * 70000, "over the 65536 limit"),
    ]:
        msg = await bus.nc.request("plugin.work.command", raw, timeout=5)
        reply = json.loads(msg.data)
        assert reply["success"] is False
        assert reply["error_code"] == "INVALID_INPUT"
        assert expected in reply["error"]


async def test_direct_publish_cannot_skip_rank(make_runtime: MakeRuntime, bus: Bus) -> None:
    await make_runtime(
        {
            "m": """\
        name: m
        version: "1.0.0"
        description: x
        handler: m:f
        commands:
          ban: {rank: 3}
        """
        },
        {"m.py": "def f(event, ctx):\n    return 'banned'\n"},
    )
    reply = await bus.request(
        "plugin.m.command", {"command": "ban", "args": [], "user": "u", "rank": 0}
    )
    assert reply["error_code"] == "PERMISSION_DENIED"


async def test_external_function_is_routed(make_runtime: MakeRuntime, chat: Chat, bus: Bus) -> None:
    received: list[dict[str, object]] = []

    async def external(msg: object) -> None:
        data = json.loads(msg.data)  # type: ignore[attr-defined]
        received.append(data)
        await bus.publish("cytube.send.chat", {"message": f"weather for {data['args'][0]}"})

    await bus.nc.subscribe("plugin.weather.command", queue="rosey.weather", cb=external)
    await bus.flush()
    runtime = await make_runtime(
        {
            "weather": """\
        name: weather
        version: "1.0.0"
        description: Answered elsewhere.
        commands:
          weather: {rank: 1, aliases: [w]}
        """
        }
    )
    assert "weather" not in runtime.invokers
    await chat.say("!w Oslo", rank=1)
    assert await chat.lines(1) == ["weather for Oslo"]
    assert received[0]["command"] == "weather"
    assert received[0]["rank"] == 1
    assert received[0]["source"] == "chat"


GATE = {
    "gate": """\
    name: gate
    version: "0.1.0"
    description: Commands with limits.
    handler: work:ok
    commands:
      secret: {rank: 3}
      cool: {cooldown: 60}
    """
}


async def test_every_outcome_is_observed(make_runtime: MakeRuntime, chat: Chat) -> None:
    seen: list[Any] = []
    await make_runtime({**MANIFEST, **GATE}, CODE, observers=(seen.append,))
    for line in ("!ok a", "!boom", "!hang", "!secret", "!cool", "!cool"):
        await chat.say(line)
    await chat.lines(6)
    outcomes = sorted((a.command, a.outcome) for a in seen)
    assert outcomes == [
        ("boom", "error"),
        ("cool", "cooldown"),
        ("cool", "ok"),
        ("hang", "timeout"),
        ("ok", "ok"),
        ("secret", "denied"),
    ]
    ok = next(a for a in seen if a.command == "ok")
    assert (ok.function, ok.version, ok.user, ok.kind) == ("work", "1.2.0", "alice", "command")
    assert len(ok.id) == 16
    assert (
        next(a for a in seen if a.outcome == "denied").reason == "!secret needs rank 3 (you have 0)"
    )
