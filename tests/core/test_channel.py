"""ctx.channel and ctx.explain, through a real runtime and nats-server, against a stub connector
that answers the channel subjects; in the runtime's process and under isolation: process."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from nats.aio.msg import Msg

from runtime.config.manifest import parse
from runtime.constants import (
    CHANNEL_STATE,
    PLAYLIST_ADD,
    PLAYLIST_NEXT,
    POLL_OPEN_SEND,
    SEND_EMOTE,
    SEND_MOD,
)
from runtime.core.activation import Activation
from runtime.wire.bus import Bus
from tests.conftest import MakeRuntime

ITEM = {
    "uid": 7,
    "title": "A song",
    "duration": 212,
    "type": "yt",
    "id": "dQw4w9WgXcQ",
    "queueby": "rosey",
    "temp": True,
}
STATE = {
    "media": {
        "uid": 3,
        "title": "Now playing",
        "duration": 100,
        "type": "yt",
        "id": "aaaaaaaaaaa",
        "current_time": 12.5,
        "paused": False,
    }
}

CODE = {
    "chan.py": """\
    from runtime.errors import ChannelDenied, ChannelError, SubjectDenied

    async def add(event, ctx):
        item = await ctx.channel.add(event.args[0], next="next" in event.args)
        ctx.explain("queued for " + event.user)
        return f"queued {item['title']} as {item['uid']}"

    async def refused(event, ctx):
        try:
            await ctx.channel.add(event.args[0])
        except ChannelError as e:
            return f"refused {e.code}: {e}"
        return "queued"

    async def undeclared(event, ctx):
        said = []
        try:
            await ctx.channel.moderate("kick", "bob", "spam")
        except ChannelDenied as e:
            said.append(f"{type(e).__name__} {e.code}: {e}")
        try:
            await ctx.channel.open_poll("Best?", ["a", "b"])
        except ChannelError as e:
            said.append(f"{type(e).__name__} {e.code}")
        try:
            await ctx.request("cytube.send.mod", {"action": "clear"})
        except SubjectDenied as e:
            said.append(f"{type(e).__name__} {e.code}")
        await ctx.channel.emote("is done")
        return said

    def sync_skip(event, ctx):
        media = ctx.channel.media()
        ctx.channel.skip()
        ctx.explain("skipped by vote")
        return f"skipped {media['title']} at {media['current_time']}"

    async def explain_then_fail(event, ctx):
        ctx.explain("tried to queue")
        raise RuntimeError("boom")
    """
}


def manifest(isolation: str) -> dict[str, str]:
    return {
        "chan": f"""\
        name: chan
        version: "1.0.0"
        description: Acts in the channel.
        handler: chan:add
        isolation: {isolation}
        actions: [playlist]
        quarantine: {{failures: 0}}
        commands:
          add: {{}}
          refused: {{handler: "chan:refused"}}
          undeclared: {{handler: "chan:undeclared"}}
          skipit: {{handler: "chan:sync_skip"}}
          fail: {{handler: "chan:explain_then_fail"}}
        """
    }


Answer = dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]]


class Connector:
    """Answers the channel subjects as the CyTube connector would; records every request."""

    def __init__(self, bus: Bus, answers: dict[str, Answer]) -> None:
        self.bus, self.answers = bus, answers
        self.got: list[tuple[str, dict[str, Any]]] = []

    async def start(self) -> None:
        async def answer(msg: Msg) -> None:
            payload = json.loads(msg.data)
            self.got.append((msg.subject, payload))
            reply = self.answers.get(msg.subject, {"success": True})
            if callable(reply):
                reply = reply(payload)
            await self.bus.nc.publish(msg.reply, json.dumps(reply).encode())

        await self.bus.nc.subscribe("cytube.send.>", cb=answer)
        await self.bus.nc.subscribe(CHANNEL_STATE, cb=answer)
        await self.bus.flush()


def queue(payload: dict[str, Any]) -> dict[str, Any]:
    if payload["url"] == "https://nowhere.example/x":
        return {
            "success": False,
            "error": "This item is already on the playlist",
            "error_code": "INVALID_INPUT",
        }
    if payload["url"] == "slow":
        return {
            "success": False,
            "error": "CyTube did not confirm; the bot may lack the rank",
            "error_code": "TIMEOUT",
        }
    return {"success": True, "data": ITEM}


def state(payload: dict[str, Any]) -> dict[str, Any]:
    return {"success": True, "data": {payload["what"]: STATE.get(payload["what"])}}


@pytest.fixture(params=["none", "process"])
def isolation(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def run(bus: Bus, word: str, *args: str) -> dict[str, Any]:
    payload = {"command": word, "args": list(args), "user": "alice", "rank": 0, "channel": "test"}
    reply: dict[str, Any] = await bus.request("plugin.chan.command", payload, timeout=15)
    return reply


async def started(
    make_runtime: MakeRuntime, bus: Bus, isolation: str, seen: list[Activation] | None = None
) -> Connector:
    connector = Connector(bus, {PLAYLIST_ADD: queue, CHANNEL_STATE: state})
    await connector.start()
    observers = (seen.append,) if seen is not None else ()
    await make_runtime(manifest(isolation), CODE, observers=observers)
    return connector


async def test_add_returns_the_item_and_explain_is_recorded(
    make_runtime: MakeRuntime, bus: Bus, isolation: str
) -> None:
    seen: list[Activation] = []
    connector = await started(make_runtime, bus, isolation, seen)
    reply = await run(bus, "add", "https://youtu.be/dQw4w9WgXcQ", "next")
    assert reply == {"success": True, "data": {"replies": ["queued A song as 7"]}}
    assert connector.got == [
        (
            PLAYLIST_ADD,
            {
                "url": "https://youtu.be/dQw4w9WgXcQ",
                "position": "next",
                "temp": True,
                "channel": "test",
            },
        )
    ]
    [record] = [a for a in seen if a.command == "add"]
    assert (record.outcome, record.reason) == ("ok", "queued for alice")


async def test_failure_envelope_raises_channel_error_with_its_code(
    make_runtime: MakeRuntime, bus: Bus, isolation: str
) -> None:
    await started(make_runtime, bus, isolation)
    reply = await run(bus, "refused", "https://nowhere.example/x")
    assert reply["data"]["replies"] == [
        "refused INVALID_INPUT: This item is already on the playlist"
    ]
    reply = await run(bus, "refused", "slow")
    assert reply["data"]["replies"] == [
        "refused TIMEOUT: CyTube did not confirm; the bot may lack the rank"
    ]


async def test_undeclared_actions_are_denied_and_nothing_is_sent(
    make_runtime: MakeRuntime, bus: Bus, isolation: str
) -> None:
    connector = await started(make_runtime, bus, isolation)
    reply = await run(bus, "undeclared")
    assert reply["data"]["replies"] == [
        "ChannelDenied PERMISSION_DENIED: function 'chan' may not kick users: "
        "its manifest does not declare actions: [moderate]",
        "ChannelDenied PERMISSION_DENIED",
        "SubjectDenied PERMISSION_DENIED",
    ]
    # The emote went out after the refusals, on the same connection: had a refused action been
    # sent, it would have arrived before it.
    assert connector.got == [(SEND_EMOTE, {"message": "is done", "channel": "test"})]
    assert SEND_MOD not in {s for s, _ in connector.got}
    assert POLL_OPEN_SEND not in {s for s, _ in connector.got}


async def test_sync_handler_blocks_on_channel_calls(
    make_runtime: MakeRuntime, bus: Bus, isolation: str
) -> None:
    seen: list[Activation] = []
    connector = await started(make_runtime, bus, isolation, seen)
    reply = await run(bus, "skipit")
    assert reply["data"]["replies"] == ["skipped Now playing at 12.5"]
    assert connector.got == [
        (CHANNEL_STATE, {"what": "media", "channel": "test"}),
        (PLAYLIST_NEXT, {"channel": "test"}),
    ]
    [record] = [a for a in seen if a.command == "skipit"]
    assert record.reason == "skipped by vote"


async def test_explain_is_recorded_when_the_handler_fails(
    make_runtime: MakeRuntime, bus: Bus, isolation: str
) -> None:
    seen: list[Activation] = []
    await started(make_runtime, bus, isolation, seen)
    reply = await run(bus, "fail")
    assert reply["error_code"] == "PLUGIN_ERROR"
    [record] = [a for a in seen if a.command == "fail"]
    assert (record.outcome, record.reason) == ("error", "tried to queue")


async def test_no_connector_is_a_nats_error(make_runtime: MakeRuntime, bus: Bus) -> None:
    await make_runtime(manifest("none"), CODE)
    reply = await run(bus, "refused", "https://youtu.be/dQw4w9WgXcQ")
    [line] = reply["data"]["replies"]
    assert line.startswith("refused NATS_ERROR: no answer from the channel")


async def test_a_deploys_examples_do_not_act_in_the_channel(
    make_runtime: MakeRuntime, bus: Bus
) -> None:
    connector = Connector(bus, {PLAYLIST_ADD: queue, CHANNEL_STATE: state})
    await connector.start()
    example = {
        "input": "!refused https://youtu.be/dQw4w9WgXcQ",
        "expect": "refused PERMISSION_DENIED: channel actions do not run in a deploy's examples",
    }
    data = {**yaml.safe_load(textwrap.dedent(manifest("none")["chan"])), "examples": [example]}
    runtime = await make_runtime({}, CODE)
    f = parse(data, source="chan.yaml")
    report = await runtime.swap(f, runtime.settings.functions_dir)
    assert report.new_version == "1.0.0"
    assert connector.got == []  # the example's ctx.channel.add reached no connector
