"""Issue 15, item 5: schedules and listen windows take the invoker's one invocation path, so
quarantine, stats and activation records treat them as they treat commands."""

from __future__ import annotations

import time
from typing import Any

from runtime.core.activation import Activation
from tests.conftest import Chat, MakeRuntime, wait_for

CODE = {
    "tick.py": """\
    RUNS = []

    def tick(event, ctx):
        RUNS.append(event.kind)
        raise RuntimeError("tick broke")

    def fine(event, ctx):
        RUNS.append(event.kind)
        return "tock"
    """,
    "game.py": """\
    def start(event, ctx):
        ctx.listen(60)
        return "go"

    def heard(event, ctx):
        if event.kind == "chat" and event.raw_message == "boom":
            raise RuntimeError("listen broke")
        return f"heard {event.raw_message}"
    """,
}
TICK = {
    "tick": """\
    name: tick
    version: "1.0.0"
    description: A schedule that fails.
    handler: tick:tick
    quarantine: {failures: 3, window: 600}
    schedules:
      - {name: hourly, every: 1h}
      - {name: good, every: 1h, handler: "tick:fine"}
    """
}
GAME = {
    "game": """\
    name: game
    version: "1.0.0"
    description: Listens, and fails on one line.
    handler: game:start
    quarantine: {failures: 2, window: 600}
    commands:
      game: {}
    listen: {handler: "game:heard", max_seconds: 60}
    """
}


def _module(runtime: Any, name: str) -> dict[str, Any]:
    handler = next(iter(runtime.invokers[name].code.handlers.values()))
    globals_: dict[str, Any] = handler.__globals__
    return globals_


async def test_failing_schedule_is_counted_and_quarantined(
    make_runtime: MakeRuntime, chat: Chat
) -> None:
    seen: list[Activation] = []
    runtime = await make_runtime(TICK, CODE, observers=(seen.append,))
    invoker = runtime.invokers["tick"]
    hourly, good = invoker.function.schedules
    await runtime.schedules._fire("tick", good, time.time())
    for _ in range(3):
        await runtime.schedules._fire("tick", hourly, time.time())
    assert invoker.stats.invocations == 4 and invoker.stats.errors == 3
    assert invoker.breaker.paused
    lines = await chat.lines(2)
    assert lines[0] == "tock"
    assert lines[1].startswith("Moderators: tick is paused after 3 failures within 600s")
    # Paused: the next due time does not run the handler, and says so in the records.
    await runtime.schedules._fire("tick", hourly, time.time())
    assert _module(runtime, "tick")["RUNS"] == ["schedule"] * 4
    assert [(a.kind, a.command, a.outcome) for a in seen] == [
        ("schedule", "good", "ok"),
        *[("schedule", "hourly", "error")] * 3,
        ("schedule", "hourly", "paused"),
    ]
    assert all(len(a.id) == 16 for a in seen)
    assert "tick 1.0.0 failed: RuntimeError: tick broke" in seen[1].error


async def test_failing_listen_handler_is_counted_and_quarantined(
    make_runtime: MakeRuntime, chat: Chat
) -> None:
    seen: list[Activation] = []
    runtime = await make_runtime(GAME, CODE, observers=(seen.append,))
    invoker = runtime.invokers["game"]
    await chat.say("!game")
    assert await chat.lines(1) == ["go"]
    await wait_for(lambda: runtime.listening.active("game"))
    await chat.say("hello")
    assert (await chat.lines(2))[1] == "heard hello"
    await chat.say("boom")
    await wait_for(lambda: invoker.stats.errors == 1)
    await chat.say("boom")
    lines = await chat.lines(3)
    assert lines[2].startswith("Moderators: game is paused after 2 failures within 600s")
    await chat.say("anyone?")
    await wait_for(lambda: invoker.stats.paused == 1)
    assert invoker.stats.invocations == 4  # !game, hello and both booms; not the paused line
    assert [(a.kind, a.outcome) for a in seen] == [
        ("command", "ok"),
        ("chat", "ok"),
        ("chat", "error"),
        ("chat", "error"),
        ("chat", "paused"),
    ]
