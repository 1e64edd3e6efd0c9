"""Quarantine: repeated failures pause a function; moderators are told; `enable` resumes it."""

from __future__ import annotations

import json
from typing import Any

from runtime.cli.deploy import _enable
from runtime.config.settings import DeploySettings, NatsSettings, Settings
from runtime.core.activation import Activation
from runtime.core.breaker import Breaker
from runtime.ops.enable import EnableService
from runtime.wire.bus import Bus
from tests.conftest import Chat, MakeRuntime

CODE = {
    "flaky.py": """\
    BROKEN = [True]

    def run(event, ctx):
        if event.args and event.args[0] == "fix":
            BROKEN[0] = False
            return "fixed"
        if BROKEN[0]:
            raise RuntimeError("broken")
        return "works"
    """
}
MANIFEST = {
    "flaky": """\
    name: flaky
    version: "1.0.0"
    description: fails on demand
    handler: flaky:run
    quarantine: {failures: 3, window: 60}
    commands:
      flaky: {}
    """
}


def test_breaker_counts_failures_within_the_window_only() -> None:
    breaker = Breaker(3, 10)
    assert not breaker.failed(now=0) and not breaker.failed(now=5)
    assert not breaker.failed(now=11)  # the one at 0 left the window
    assert breaker.failed(now=12) and breaker.paused
    assert breaker.reset() and not breaker.paused
    assert not Breaker(0, 10).failed(now=0)  # 0 failures: never pauses


async def test_failing_function_is_paused_and_moderators_can_resume_it(
    make_runtime: MakeRuntime, bus: Bus, chat: Chat
) -> None:
    seen: list[Activation] = []
    enable = EnableService(bus, "secret-token", window=0.1)
    runtime = await make_runtime(MANIFEST, CODE, observers=(seen.append,), admin=enable.chat)
    await enable.start(runtime)
    try:
        for _ in range(3):
            await chat.say("!flaky")
        lines = await chat.lines(4)
        assert lines.count("Sorry, flaky failed.") == 3
        assert (
            "Moderators: flaky is paused after 3 failures within 60s; resume it with "
            "!rosey enable flaky."
        ) in lines
        await chat.say("!flaky fix")
        paused = (await chat.lines(5))[4]
        assert paused == (
            "flaky is paused after repeated failures; a moderator can resume it with "
            "!rosey enable flaky."
        )
        assert seen[-1].outcome == "paused"
        await chat.say("!rosey enable flaky", user="guest", rank=0)
        assert (await chat.lines(6))[5] == "guest: !rosey needs moderator rank or higher."
        await chat.say("!rosey enable flaky", user="mod", rank=2)
        assert (await chat.lines(7))[6] == "flaky resumed by mod."
        await chat.say("!flaky fix")
        assert (await chat.lines(8))[7] == "fixed"
        assert runtime.invokers["flaky"].stats.paused == 1
    finally:
        await enable.stop()


async def test_rosey_enable_needs_the_deploy_token(
    make_runtime: MakeRuntime, nats_url: str, bus: Bus
) -> None:
    runtime = await make_runtime(MANIFEST, CODE)
    enable = EnableService(bus, "secret-token")
    await enable.start(runtime)
    try:
        for _ in range(3):
            await bus.request("plugin.flaky.command", _command(), 5)
        assert runtime.invokers["flaky"].breaker.paused

        def settings(token: str) -> Settings:
            return Settings(nats=NatsSettings(url=nats_url), deploy=DeploySettings(token=token))

        [refused] = await _enable(settings("wrong"), "flaky", window=0.2)
        assert refused["error_code"] == "PERMISSION_DENIED"
        assert runtime.invokers["flaky"].breaker.paused
        [answer] = await _enable(settings("secret-token"), "flaky", window=0.2)
        assert answer["success"] and answer["data"]["resumed"] is True
        assert not runtime.invokers["flaky"].breaker.paused
    finally:
        await enable.stop()


async def test_a_captured_enable_request_cannot_be_replayed(
    make_runtime: MakeRuntime, nats_url: str, bus: Bus
) -> None:
    runtime = await make_runtime(MANIFEST, CODE)
    enable = EnableService(bus, "secret-token")
    await enable.start(runtime)
    captured: list[bytes] = []

    async def keep(msg: Any) -> None:
        captured.append(msg.data)

    await bus.nc.subscribe("rosey.enable", cb=keep)
    await bus.flush()
    settings = Settings(
        nats=NatsSettings(url=nats_url), deploy=DeploySettings(token="secret-token")
    )
    try:
        for _ in range(3):
            await bus.request("plugin.flaky.command", _command(), 5)
        [answer] = await _enable(settings, "flaky", window=0.2)
        assert answer["data"]["resumed"] is True
        assert b"secret-token" not in captured[0]  # the token itself never travels
        for _ in range(3):
            await bus.request("plugin.flaky.command", _command(), 5)
        assert runtime.invokers["flaky"].breaker.paused
        reply = await bus.nc.request("rosey.enable", captured[0], timeout=5)
        refused = json.loads(reply.data)
        assert refused["error_code"] == "PERMISSION_DENIED"
        assert refused["error"] == "refused: already used (a replay)"
        assert runtime.invokers["flaky"].breaker.paused
    finally:
        await enable.stop()


def _command() -> dict[str, Any]:
    return {"command": "flaky", "args": [], "user": "alice", "rank": 0}
