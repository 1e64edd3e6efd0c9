"""Issue 15, items 2 and 3: every command gets one answer the user can see, within the manifest's
reply caps, and the activation record and quarantine say what really happened."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from runtime.core.activation import Activation
from runtime.core.delivery import REPLY_CUT
from runtime.wire.bus import Bus
from tests.conftest import Chat, MakeRuntime

CODE = {
    "loud.py": """\
    def flood(event, ctx):
        return ["line"] * 100000

    def chatty(event, ctx):
        for i in range(1000):
            ctx.reply(f"part {i}")

    def huge(event, ctx):
        return "x" * 20000

    def quiet(event, ctx):
        return "fine"

    def number(event, ctx):
        return 42

    def mapping(event, ctx):
        return {"a": 1}

    def raw(event, ctx):
        return b"bytes"

    def thing(event, ctx):
        return object()

    def gen(event, ctx):
        return (line for line in ["a", "b"])

    def mixed(event, ctx):
        return ["ok", 3]

    def big(event, ctx):
        return {"blob": "y" * (2 << 20)}

    def notjson(event, ctx):
        return {"value": b"bytes"}
    """
}
MANIFEST = {
    "loud": """\
    name: loud
    version: "1.0.0"
    description: Says too much, or the wrong thing.
    handler: loud:quiet
    quarantine: {failures: 0}
    commands:
      flood: {handler: "loud:flood"}
      chatty: {handler: "loud:chatty"}
      huge: {handler: "loud:huge"}
      quiet: {}
      number: {handler: "loud:number"}
      mapping: {handler: "loud:mapping"}
      raw: {handler: "loud:raw"}
      thing: {handler: "loud:thing"}
      gen: {handler: "loud:gen"}
      mixed: {handler: "loud:mixed"}
    """
}


async def test_a_flood_is_cut_to_the_caps_and_the_author_is_told(
    make_runtime: MakeRuntime, chat: Chat, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[Activation] = []
    runtime = await make_runtime(MANIFEST, CODE, observers=(seen.append,))
    with caplog.at_level(logging.WARNING):
        await chat.say("!flood")
        await chat.say("!quiet")
        await chat.lines(12)
        sent = [p["message"] for _, p in await chat.settle(runtime)]
    # 10 lines by default, the mark that the answer was cut, and the other command's answer.
    assert len(sent) == 12
    assert sorted(sent) == sorted(["line"] * 10 + [REPLY_CUT, "fine"])
    warning = next(r.getMessage() for r in caplog.records if r.name == "rosey.fn.loud")
    assert "reply cut short: it had 100000 lines, 400000 characters" in warning
    assert "reply.max_lines is 10" in warning
    flood = next(a for a in seen if a.command == "flood")
    assert flood.outcome == "ok" and flood.error.startswith("reply cut short")


async def test_replies_made_one_by_one_share_the_caps(
    make_runtime: MakeRuntime, chat: Chat
) -> None:
    manifest = {"loud": MANIFEST["loud"] + "reply: {max_lines: 3, max_chars: 100}\n"}
    runtime = await make_runtime(manifest, CODE)
    await chat.say("!chatty")
    await chat.lines(4)
    sent = [p["message"] for _, p in await chat.settle(runtime)]
    assert sent == ["part 0", "part 1", "part 2", REPLY_CUT]


async def test_a_reply_over_the_contract_limit_reaches_the_user_cut(
    make_runtime: MakeRuntime, chat: Chat, bus: Bus
) -> None:
    # Before: a 20,000-character line was refused by the contract after the record said "ok",
    # and nobody heard anything.
    seen: list[Activation] = []
    manifest = {"loud": MANIFEST["loud"] + "reply: {max_chars: 10000}\n"}
    await make_runtime(manifest, CODE, observers=(seen.append,))
    await chat.say("!huge")
    first, mark = await chat.lines(2)
    assert first == "x" * 9999 + "…" and mark == REPLY_CUT
    command = {"command": "huge", "args": [], "user": "u", "rank": 0}
    reply = await bus.request("plugin.loud.command", command)
    assert reply["success"] and reply["data"]["replies"] == [first, REPLY_CUT]
    assert [a.outcome for a in seen] == ["ok", "ok"]


@pytest.mark.parametrize(
    ("command", "found"),
    [
        ("number", "int"),
        ("mapping", "dict"),
        ("raw", "bytes"),
        ("thing", "object"),
        ("gen", "generator"),
        ("mixed", "a list holding int"),
    ],
)
async def test_a_return_value_that_is_not_text_fails_visibly(
    make_runtime: MakeRuntime,
    chat: Chat,
    bus: Bus,
    caplog: pytest.LogCaptureFixture,
    command: str,
    found: str,
) -> None:
    seen: list[Activation] = []
    runtime = await make_runtime(MANIFEST, CODE, observers=(seen.append,))
    with caplog.at_level(logging.ERROR):
        await chat.say(f"!{command}")
        assert await chat.lines(1) == [f"Sorry, {command} failed."]
    problem = f"loud 1.0.0 failed: returned {found}; it must return str, a list of str or None"
    assert any(problem in r.getMessage() for r in caplog.records)
    reply = await bus.request(
        "plugin.loud.command", {"command": command, "args": [], "user": "u", "rank": 0}
    )
    assert reply == {
        "success": False,
        "error": f"Sorry, {command} failed.",
        "error_code": "PLUGIN_ERROR",
    }
    assert [a.outcome for a in seen] == ["error", "error"]
    assert problem in seen[0].error
    assert runtime.invokers["loud"].stats.errors == 2


async def test_wrong_return_values_count_towards_quarantine(
    make_runtime: MakeRuntime, chat: Chat
) -> None:
    manifest = {
        "loud": MANIFEST["loud"].replace("quarantine: {failures: 0}", "quarantine: {failures: 2}")
    }
    runtime = await make_runtime(manifest, CODE)
    await chat.say("!number")
    await chat.say("!raw")
    lines = await chat.lines(3)
    assert "Moderators: loud is paused after 2 failures within 60s; resume it with " in lines[2]
    assert runtime.invokers["loud"].breaker.paused


REQUESTS = {
    "req": """\
    name: req
    version: "1.0.0"
    description: Answers requests it cannot deliver.
    handler: loud:big
    """
}


async def test_a_request_reply_nats_cannot_carry_is_a_failure_not_a_timeout(
    make_runtime: MakeRuntime, bus: Bus
) -> None:
    seen: list[Activation] = []
    await make_runtime(REQUESTS, CODE, observers=(seen.append,))
    limit = bus.nc.max_payload
    reply = await bus.request("plugin.req.request", {}, timeout=5)
    assert reply["success"] is False and reply["error_code"] == "PLUGIN_ERROR"
    assert reply["error"] == "Sorry, req failed."
    assert [a.outcome for a in seen] == ["error"]
    assert f"over NATS's max_payload of {limit}" in seen[0].error


async def test_a_request_reply_that_is_not_json_is_a_failure(
    make_runtime: MakeRuntime, bus: Bus
) -> None:
    seen: list[Activation] = []
    manifest = {"req": REQUESTS["req"].replace("loud:big", "loud:notjson")}
    await make_runtime(manifest, CODE, observers=(seen.append,))
    reply: Any = await bus.request("plugin.req.request", {}, timeout=5)
    assert reply["success"] is False and reply["error_code"] == "PLUGIN_ERROR"
    assert [a.outcome for a in seen] == ["error"]
    assert "returned a reply that is not JSON" in seen[0].error
