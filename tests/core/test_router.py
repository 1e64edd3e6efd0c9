import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.core.router import parse
from runtime.wire.bus import Bus
from tests.conftest import Chat, MakeRuntime

ECHO = {
    "echo.py": """\
    def echo(event, ctx):
        return f"{event.command}|{'|'.join(event.args)}|{event.user}|{event.rank:g}|{event.source}"
    """
}
MANIFEST = {
    "echo": """\
    name: echo
    version: "1.0.0"
    description: Echoes.
    handler: echo:echo
    commands:
      echo: {aliases: [e]}
      mod: {rank: 2}
      slow: {cooldown: 60}
    """
}


def test_parse_words_and_quotes() -> None:
    assert parse("!roll 2d6", "!") == ("roll", ["2d6"])
    assert parse('!quote "two words" and\tmore', "!") == ("quote", ["two words", "and", "more"])
    assert parse("!ROLL", "!") == ("roll", [])
    assert parse(r"!path C:\dir", "!") == ("path", [r"C:\dir"])
    assert parse("!tag #hash", "!") == ("tag", ["#hash"])


def test_parse_unbalanced_quote_does_not_raise() -> None:
    assert parse('!say "oops', "!") == ("say", ['"oops'])


def test_parse_non_commands() -> None:
    for text in ("hello", "!", "! roll", "!!roll", "", "?roll"):
        assert parse(text, "!") is None
    assert parse("?roll 1", "?") == ("roll", ["1"])


@given(st.text())
def test_parse_never_raises(text: str) -> None:
    result = parse("!" + text, "!")
    assert result is None or (result[0] and all(isinstance(a, str) for a in result[1]))


async def test_command_routed_and_answered(make_runtime: MakeRuntime, chat: Chat) -> None:
    await make_runtime(MANIFEST, ECHO)
    await chat.say('!echo a "b c"')
    assert await chat.lines(1) == ["echo|a|b c|alice|0|chat"]


async def test_alias_resolves_to_command(make_runtime: MakeRuntime, chat: Chat) -> None:
    await make_runtime(MANIFEST, ECHO)
    await chat.say("!E x")
    assert await chat.lines(1) == ["echo|x|alice|0|chat"]


async def test_rank_enforced_from_event(make_runtime: MakeRuntime, chat: Chat) -> None:
    await make_runtime(MANIFEST, ECHO)
    await chat.say("!mod rank=5", rank=1)
    assert await chat.lines(1) == [
        "alice: !mod needs moderator rank or higher (you are registered)."
    ]
    await chat.say("!mod", rank=2, user="bob")
    lines = await chat.lines(2)
    assert lines[1] == "mod||bob|2|chat"


async def test_pm_command_answered_by_pm(make_runtime: MakeRuntime, chat: Chat) -> None:
    await make_runtime(MANIFEST, ECHO)
    await chat.say("!echo hi", user="carol", pm=True)
    [(subject, payload)] = await chat.replies(1)
    assert subject == "cytube.send.pm"
    assert payload == {"to": "carol", "message": "echo|hi|carol|0|pm", "channel": "test"}


async def test_denial_by_pm_goes_back_by_pm(make_runtime: MakeRuntime, chat: Chat) -> None:
    await make_runtime(MANIFEST, ECHO)
    await chat.say("!mod", user="dave", pm=True)
    [(subject, payload)] = await chat.replies(1)
    assert subject == "cytube.send.pm"
    assert payload["to"] == "dave"


async def test_unknown_commands_and_plain_chat_are_ignored(
    make_runtime: MakeRuntime, chat: Chat
) -> None:
    runtime = await make_runtime(MANIFEST, ECHO)
    await chat.say("!nosuchthing")
    await chat.say("just chatting")
    await chat.say("!echo after")
    assert await chat.lines(1) == ["echo|after|alice|0|chat"]
    assert len(await chat.settle(runtime)) == 1


async def test_cooldown_per_user(make_runtime: MakeRuntime, chat: Chat) -> None:
    await make_runtime(MANIFEST, ECHO)
    await chat.say("!slow")
    await chat.lines(1)
    await chat.say("!slow")
    lines = await chat.lines(2)
    assert lines[1].startswith("alice: !slow is cooling down, try again in ")
    await chat.say("!slow", user="erin")
    assert (await chat.lines(3))[2] == "slow||erin|0|chat"


async def test_malformed_chat_payloads_do_not_stop_routing(
    make_runtime: MakeRuntime, chat: Chat, bus: Bus
) -> None:
    await make_runtime(MANIFEST, ECHO)
    for raw in (
        b"not json",
        b"[]",
        b'{"user": "x"}',
        json.dumps({"user": "x", "message": 5, "rank": 0}).encode(),
    ):
        await bus.nc.publish("cytube.chat", raw)
    await chat.say("!echo still")
    assert await chat.lines(1) == ["echo|still|alice|0|chat"]


async def test_rank_typed_by_user_is_just_an_argument(
    make_runtime: MakeRuntime, chat: Chat
) -> None:
    await make_runtime(MANIFEST, ECHO)
    await chat.say('!mod {"rank": 5}', rank=0)
    assert (await chat.lines(1))[0].startswith("alice: !mod needs moderator rank")


async def test_each_line_routed_once_with_two_runtimes(
    make_runtime: MakeRuntime, chat: Chat
) -> None:
    first = await make_runtime(MANIFEST, ECHO)
    second = await make_runtime(MANIFEST, ECHO)
    for i in range(20):
        await chat.say(f"!echo {i}")
    lines = await chat.lines(20)
    assert len(await chat.settle(first, second)) == 20
    assert sorted(lines) == sorted(f"echo|{i}|alice|0|chat" for i in range(20))


@pytest.mark.parametrize("prefix", ["?", "rosey "])
async def test_configured_prefix(make_runtime: MakeRuntime, chat: Chat, prefix: str) -> None:
    await make_runtime(MANIFEST, ECHO, settings={"command_prefix": prefix})
    await chat.say("!echo no")
    await chat.say(f"{prefix}echo yes")
    assert await chat.lines(1) == ["echo|yes|alice|0|chat"]


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"1e400"])
async def test_non_finite_rank_on_chat_runs_no_moderator_command(
    make_runtime: MakeRuntime, chat: Chat, bus: Bus, number: bytes
) -> None:
    """The attack: a forged chat line whose rank is NaN compared False with the needed rank."""
    runtime = await make_runtime(MANIFEST, ECHO)
    await bus.nc.publish("cytube.chat", b'{"user":"m","message":"!mod 2","rank":' + number + b"}")
    await bus.nc.publish(
        "cytube.pm", b'{"user":"m","message":"!mod 2","rank":' + number + b',"channel":"test"}'
    )
    assert await chat.settle(runtime) == []
    assert runtime.busy == 0
    # The same runtime still routes a well-formed moderator line.
    await chat.say("!mod ok", rank=2, user="m")
    assert await chat.lines(1) == ["mod|ok|m|2|chat"]


@pytest.mark.parametrize("number", [b"NaN", b"-Infinity"])
async def test_non_finite_rank_on_command_subject_is_refused(
    make_runtime: MakeRuntime, chat: Chat, bus: Bus, number: bytes
) -> None:
    """A direct publisher on plugin.<name>.command, past the router: the invoker refuses it."""
    runtime = await make_runtime(MANIFEST, ECHO)
    raw = b'{"command":"mod","args":["2"],"user":"m","rank":' + number + b',"channel":"test"}'
    reply = await bus.nc.request("plugin.echo.command", raw, timeout=5)
    answer = json.loads(reply.data)
    assert answer["success"] is False
    assert answer["error_code"] == "INVALID_INPUT"
    assert "is not a finite number" in answer["error"]
    await bus.nc.publish("plugin.echo.command", raw)  # and without a reply subject
    assert await chat.settle(runtime) == []
