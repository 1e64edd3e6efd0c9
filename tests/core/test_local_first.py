"""Issue 16: local-first dispatch. A command for a function loaded in the routing runtime, with
a free slot, runs there without a second NATS hop; otherwise it is forwarded on
plugin.<name>.command, where any runtime or worker of the queue group takes it."""

from __future__ import annotations

import asyncio
import logging
import textwrap
from collections.abc import AsyncIterator
from typing import Any

import pytest
import yaml
from nats.aio.msg import Msg

from runtime.config.manifest import Command, parse
from runtime.core.activation import Activation
from runtime.core.context import Context, Event
from runtime.core.cooldowns import SharedCooldowns
from runtime.wire.bus import Bus
from tests.conftest import Chat, MakeRuntime, wait_for

HOLD = {
    "hold": """\
    name: hold
    version: "1.0.0"
    description: Waits for the test's gate.
    handler: hold:hold
    timeout: 30
    concurrency: 3
    quarantine: {failures: 0}
    commands:
      hold: {cooldown: 60}
      echo: {}
    """
}


def gated(label: str) -> dict[str, str]:
    return {
        "hold.py": f"""\
        import asyncio

        GATE = asyncio.Event()

        async def hold(event, ctx):
            if event.command == "hold":
                await GATE.wait()
            return f"{label} {{event.command}} for {{event.user}}"
        """
    }


def module(runtime: Any, name: str = "hold") -> dict[str, Any]:
    handler = next(iter(runtime.invokers[name].code.handlers.values()))
    globals_: dict[str, Any] = handler.__globals__
    return globals_


class Published:
    """Every message published on a subject (a plain subscription sees each one, whichever
    member of a queue group takes it)."""

    def __init__(self) -> None:
        self.seen: list[Msg] = []

    async def on(self, msg: Msg) -> None:
        self.seen.append(msg)


@pytest.fixture
async def commands(bus: Bus) -> AsyncIterator[Published]:
    published = Published()
    subscription = await bus.nc.subscribe("plugin.hold.command", cb=published.on)
    await bus.flush()
    yield published
    await subscription.unsubscribe()


async def test_a_local_command_makes_no_second_hop(
    make_runtime: MakeRuntime, chat: Chat, commands: Published
) -> None:
    seen: list[Activation] = []
    runtime = await make_runtime(HOLD, gated("local"), observers=(seen.append,))
    await chat.say("!echo", user="amy")
    assert await chat.lines(1) == ["local echo for amy"]
    await chat.settle(runtime)
    assert commands.seen == []  # nothing went over plugin.hold.command
    assert runtime.router is not None and runtime.router.taken == 1
    invoker = runtime.invokers["hold"]
    assert invoker.stats.invocations == 1 and invoker.busy == 0
    # The same record as a forwarded command's: the router's correlation id, kind command.
    [record] = seen
    assert (record.function, record.kind, record.command, record.user, record.outcome) == (
        "hold",
        "command",
        "echo",
        "amy",
        "ok",
    )
    assert len(record.id) > 0 and record.channel == "test"


async def test_a_busy_local_function_is_forwarded_to_another_runtime(
    make_runtime: MakeRuntime, chat: Chat, commands: Published
) -> None:
    manifest = {"hold": HOLD["hold"].replace("concurrency: 3", "concurrency: 1")}
    here = await make_runtime(manifest, gated("here"))
    worker = await make_runtime(manifest, gated("worker"), route=False)  # as `rosey worker`
    module(worker)["GATE"].set()
    # This runtime's own subscription is gone, so what it forwards can only reach the worker;
    # it still runs what it takes locally.
    await here.invokers["hold"].bindings.stop(0)
    await chat.say("!hold", user="amy")
    await wait_for(lambda: here.invokers["hold"].in_flight == 1)
    await chat.say("!hold", user="bob")  # the one local slot is taken: forwarded
    assert await chat.lines(1) == ["worker hold for bob"]
    module(here)["GATE"].set()
    assert await chat.lines(2) == ["worker hold for bob", "here hold for amy"]
    assert [m.subject for m in commands.seen] == ["plugin.hold.command"]
    assert here.router is not None and (here.router.routed, here.router.taken) == (2, 1)
    assert worker.invokers["hold"].stats.invocations == 1
    assert here.invokers["hold"].stats.invocations == 1


class GatedCooldowns(SharedCooldowns):
    """Cooldowns in memory whose checks wait for the test (to swap while one is pending)."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = asyncio.Event()
        self.gate = asyncio.Event()

    async def remaining(self, *args: Any, **kwargs: Any) -> float:
        self.asked.set()
        await self.gate.wait()
        return await super().remaining(*args, **kwargs)


async def test_a_local_command_that_does_not_run_gives_its_cooldown_back(
    make_runtime: MakeRuntime, chat: Chat, commands: Published
) -> None:
    manifest = {"hold": HOLD["hold"].replace("echo: {}", "echo: {cooldown: 60}")}
    runtime = await make_runtime(manifest, gated("v1"))
    router = runtime.router
    assert router is not None
    cooldowns = router.cooldowns = GatedCooldowns()
    await chat.say("!echo", user="amy")
    await wait_for(cooldowns.asked.is_set)
    # While the router books the cooldown, a new version drops the command: it is taken
    # locally by the new version, which does not know it, so it does not run.
    data = {**yaml.safe_load(textwrap.dedent(manifest["hold"])), "version": "2.0.0"}
    data["commands"] = {"hold": {"cooldown": 60}}
    await runtime.swap(parse(data), runtime.settings.functions_dir)
    cooldowns.gate.set()
    await wait_for(lambda: router.released == 1)
    await chat.settle(runtime)
    assert router.taken == 1 and commands.seen == [] and chat.sent == []
    # Given back: amy is not cooling down.
    echo = Command("echo", cooldown=60)
    assert await cooldowns.remaining(echo, "amy", "test", 0, token="again") == 0


async def test_paused_or_unknown_taken_commands_call_unrun(make_runtime: MakeRuntime) -> None:
    runtime = await make_runtime(HOLD, gated("v1"))
    invoker = runtime.invokers["hold"]
    unrun: list[str] = []

    async def give_back() -> None:
        unrun.append("given back")

    payload = {"command": "nope", "args": [], "user": "amy", "rank": 0, "id": "c1"}
    await invoker.take(payload, give_back)
    assert unrun == ["given back"]
    invoker.breaker.paused = True
    assert not invoker.can_take()
    await invoker.take({**payload, "command": "echo", "id": "c2"}, give_back)
    assert unrun == ["given back", "given back"]
    assert invoker.stats.paused == 1 and invoker.busy == 0


async def test_hot_swap_while_local_commands_are_in_flight_loses_none(
    make_runtime: MakeRuntime, chat: Chat, commands: Published
) -> None:
    runtime = await make_runtime(HOLD, gated("v1"))
    old = runtime.invokers["hold"]
    for user in ("amy", "bob", "cat"):
        await chat.say("!hold", user=user)
    await wait_for(lambda: old.in_flight == 3)
    assert len(old.taken) == 3 and commands.seen == []
    folder = runtime.settings.functions_dir
    (folder / "hold.py").write_text(textwrap.dedent(gated("v2")["hold.py"]))
    data = {**yaml.safe_load(textwrap.dedent(HOLD["hold"])), "version": "2.0.0"}
    swap = asyncio.create_task(runtime.swap(parse(data), folder))
    await wait_for(lambda: runtime.invokers["hold"] is not old)
    # The new version serves new commands while the old one drains what it took.
    await chat.say("!echo", user="dan")
    assert await chat.lines(1) == ["v2 echo for dan"]
    assert not swap.done() and old.busy == 3 and old.stopping
    module_globals = next(iter(old.code.handlers.values())).__globals__
    module_globals["GATE"].set()
    report = await swap
    assert (report.drained, report.lost) == (3, 0)
    lines = await chat.lines(4)
    assert sorted(lines[1:]) == ["v1 hold for amy", "v1 hold for bob", "v1 hold for cat"]
    assert commands.seen == []


async def test_replies_built_from_checked_parts_skip_the_check_and_others_do_not() -> None:
    function = parse({"name": "f", "version": "1.0.0", "description": "d", "handler": "m:h"})
    event = Event(kind="command", subject="plugin.f.command", user="amy", channel="test", id="c")
    checked: list[tuple[str, Any]] = []
    built: list[tuple[str, Any]] = []

    async def publish(subject: str, payload: Any) -> None:
        checked.append((subject, payload))

    async def publish_built(subject: str, payload: Any) -> None:
        built.append((subject, payload))

    async def request(subject: str, payload: Any, timeout: float) -> Any:
        raise AssertionError("no request expected")

    ctx = Context(function, event, publish, request, built=publish_built)
    await ctx.reply("hi")
    await ctx.send_chat("there", "other")
    await ctx.send_chat("odd", "x" * 101)  # a channel the contract refuses: checked again
    assert built == [
        ("cytube.send.chat", {"message": "hi", "channel": "test"}),
        ("cytube.send.chat", {"message": "there", "channel": "other"}),
    ]
    assert checked == [("cytube.send.chat", {"message": "odd", "channel": "x" * 101})]
    # The logger is built on first use, naming the function, version and correlation id.
    assert isinstance(ctx.log, logging.LoggerAdapter)
    assert ctx.log.extra == {"function": "f", "version": "1.0.0", "id": "c"}
