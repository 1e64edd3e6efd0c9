"""!why: the handler on its own, and end to end over NATS with real activation records."""

import logging
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from functions import why
from tests.conftest import Chat, MakeRuntime
from tests.library.drive import run
from tests.opskit import CALC, CALC_CODE, WHY, WHY_CODE, Operate, operations

NOW = 1_700_000_000.0


def record(outcome: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": "4f2a",
        "function": "calc",
        "version": "1.2.0",
        "command": "boom",
        "outcome": outcome,
        "duration": 0.0123,
        "error": "",
        "reason": "",
        "time": NOW - 90,
        **extra,
    }


@pytest.mark.parametrize(
    ("outcome", "extra", "moderator", "line"),
    [
        ("ok", {}, False, "ran fine in 12 ms."),
        (
            "error",
            {"error": "calc 1.2.0 failed: ValueError: bad"},
            True,
            "failed: ValueError: bad. (ref 4f2a)",
        ),
        ("error", {"error": "calc 1.2.0 failed: ValueError: bad"}, False, "failed. (ref 4f2a)"),
        ("timeout", {}, False, "took too long and was stopped. (ref 4f2a)"),
        ("busy", {}, False, "was not run: calc was busy."),
        (
            "denied",
            {"reason": "!boom needs rank 2 (you have 0)"},
            False,
            "was refused: !boom needs rank 2 (you have 0).",
        ),
        ("cooldown", {"reason": "4.0s left"}, False, "was cooling down (4.0s left)."),
        ("invalid", {}, False, "was refused as invalid. (ref 4f2a)"),
    ],
)
def test_describe_every_outcome(
    outcome: str, extra: dict[str, Any], moderator: bool, line: str
) -> None:
    text = why.describe(record(outcome, **extra), "alice", "Your", moderator, now=NOW)
    assert text == f"alice: Your last command, !boom (calc 1.2.0, 2 min ago), {line}"


def test_long_errors_are_cut() -> None:
    text = why.describe(record("error", error="x" * 500), "mod", "bob's", True, now=NOW)
    assert text.endswith("…. (ref 4f2a)")
    assert len(text) < 250


class FakeCtx:
    name = "why"
    config = {"moderator_rank": 2, "timeout": 2}
    log = logging.getLogger("test.why")

    def __init__(self, reply: Any) -> None:
        self.reply, self.asked = reply, []

    async def request(self, subject: str, data: Any, timeout: float = 5.0) -> Any:
        self.asked.append((subject, data))
        if isinstance(self.reply, Exception):
            raise self.reply
        return self.reply


def event(user: str, rank: float, *args: str) -> SimpleNamespace:
    return SimpleNamespace(user=user, rank=rank, args=list(args))


def test_asks_for_the_last_command_of_the_user_excluding_itself() -> None:
    ctx = FakeCtx({"success": True, "data": {"records": []}})
    assert run(why.why(event("alice", 0), ctx)) == "alice: I have no record of a command from you."
    assert ctx.asked == [
        (
            "rosey.activations.query",
            {"user": "alice", "kind": "command", "exclude": ["why"], "limit": 1},
        )
    ]


def test_only_moderators_ask_about_others() -> None:
    ctx = FakeCtx({"success": True, "data": {"records": []}})
    refused = run(why.why(event("bob", 1.5, "alice"), ctx))
    assert refused == "bob: only moderators can ask about someone else's commands."
    assert ctx.asked == []
    assert run(why.why(event("mod", 2, "@alice"), ctx)).endswith(
        "no record of a command from alice."
    )
    assert run(why.why(event("Alice", 0, "alice"), ctx)).endswith("from you.")  # herself, any case


@pytest.mark.parametrize(
    "reply", [RuntimeError("no responders"), {"success": False, "error": "redis down"}]
)
def test_says_when_it_cannot_look(reply: Any) -> None:
    assert (
        run(why.why(event("alice", 0), FakeCtx(reply))) == "alice: I cannot look that up right now."
    )


# End to end: chat → router/invoker → activation records in Redis → !why over NATS.


@pytest.fixture
async def operate(make_runtime: MakeRuntime, redis_url: str) -> AsyncIterator[Operate]:
    async with operations(make_runtime, redis_url) as start:
        yield start


async def ask(chat: Chat, line: str, user: str, rank: float = 0) -> str:
    count = len(chat.sent) + 1
    await chat.say(line, user=user, rank=rank)
    return (await chat.lines(count))[-1]


async def test_why_end_to_end(operate: Operate, chat: Chat) -> None:
    await operate()
    assert await ask(chat, "!why", "dora") == "dora: I have no record of a command from you."
    assert await ask(chat, "!ok", "dora") == "ok dora"
    said = await ask(chat, "!why", "dora")
    assert said.startswith("dora: Your last command, !ok (calc 1.0.0, just now), ran fine in ")

    await ask(chat, "!secret", "dora")
    said = await ask(chat, "!why", "dora")
    assert said == (
        "dora: Your last command, !secret (calc 1.0.0, just now), "
        "was refused: !secret needs rank 2 (you have 0)."
    )

    await ask(chat, "!boom", "dora")
    said = await ask(chat, "!why", "dora")
    assert said.startswith("dora: Your last command, !boom (calc 1.0.0, just now), failed. (ref ")
    assert await ask(chat, "!why dora", "eve") == (
        "eve: only moderators can ask about someone else's commands."
    )
    said = await ask(chat, "!why dora", "mod", rank=2)
    assert said.startswith(
        "mod: dora's last command, !boom (calc 1.0.0, just now), "
        "failed: ValueError: the sum does not add up. (ref "
    )


async def test_why_without_activation_records(make_runtime: MakeRuntime, chat: Chat) -> None:
    await make_runtime({**CALC, **WHY}, {**CALC_CODE, **WHY_CODE})
    assert await ask(chat, "!why", "dora") == "dora: I cannot look that up right now."
