"""poll: !poll and !endpoll against an in-memory channel, and the results announced at close
(driving the async handlers)."""

from __future__ import annotations

import inspect

import pytest

from functions import poll
from tests.fnkit import FakeChannel, ev, event
from tests.library.drive import AsyncCtx, run

MOD = {"user": "mod", "rank": 2}


def cmd(text: str) -> object:
    return ev(*text.split(), **MOD)  # type: ignore[arg-type]


def test_open_update_and_close_announce_the_last_counts() -> None:
    ctx = AsyncCtx()
    assert run(poll.open_poll(cmd("Movie tonight? | Alien | Heat | Up"), ctx)) == (
        "Poll opened: Movie tonight? (3 options)."
    )
    assert ctx.channel.calls == [
        ("open_poll", "Movie tonight?", ["Alien", "Heat", "Up"], None, False)
    ]
    shown = {"title": "Movie tonight?", "options": ["Alien", "Heat", "Up"], "initiator": "rosey"}
    assert (
        run(poll.on_change(event("cytube.poll.open", {**shown, "counts": [0, 0, 0]}), ctx)) is None
    )
    run(poll.on_change(event("cytube.poll.update", {**shown, "counts": [1, 0, 0]}), ctx))
    run(poll.on_change(event("cytube.poll.update", {**shown, "counts": [3, 1, 0]}), ctx))
    assert run(poll.end_poll(cmd(""), ctx)) is None
    assert ctx.channel.calls[-1] == ("close_poll",)
    closed = run(poll.on_close(event("cytube.poll.close", {}), ctx))
    assert closed == "Poll closed: Movie tonight?: Alien 3, Heat 1, Up 0"
    assert run(poll.on_close(event("cytube.poll.close", {}), ctx)) is None  # announced once


def test_a_poll_opened_in_cytubes_ui_is_announced_too() -> None:
    ctx = AsyncCtx()
    data = {"title": "Pizza?", "options": ["yes", "no"], "counts": [2, 5], "channel": "other"}
    run(poll.on_change(event("cytube.poll.open", data, channel=None), ctx))
    assert run(poll.on_close(event("cytube.poll.close", {}, channel="test"), ctx)) is None
    assert run(poll.on_close(event("cytube.poll.close", {}, channel="other"), ctx)) == (
        "Poll closed: Pizza?: yes 2, no 5"
    )
    ctx.config = {"announce": False}
    run(poll.on_change(event("cytube.poll.open", data, channel=None), ctx))
    assert run(poll.on_close(event("cytube.poll.close", {}, channel="other"), ctx)) is None


@pytest.mark.parametrize(
    ("text", "title", "options", "timeout"),
    [
        ("60s Best? | a | b", "Best?", ["a", "b"], 60),
        ("2m Best? | a | b | c", "Best?", ["a", "b", "c"], 120),
        ("Best decade? | 60s | 70s | 80s", "Best decade?", ["60s", "70s", "80s"], None),
        ("0s 90s music? | yes | no", "90s music?", ["yes", "no"], None),
        ("90s music? | yes | no", "music?", ["yes", "no"], 90),
        ("a b c | x |  | y ", "a b c", ["x", "y"], None),
    ],
)
def test_parse(text: str, title: str, options: list[str], timeout: int | None) -> None:
    assert poll.parse(text) == (title, options, timeout)


def test_timeout_is_sent_and_shown() -> None:
    ctx = AsyncCtx()
    assert run(poll.open_poll(cmd("90s Quick? | y | n"), ctx)) == (
        "Poll opened: Quick? (2 options, closes in 1m30s)."
    )
    assert ctx.channel.calls[-1] == ("open_poll", "Quick?", ["y", "n"], 90, False)


def test_refusals_and_limits() -> None:
    ctx = AsyncCtx()
    usage = f"mod: {poll.USAGE}"
    assert run(poll.open_poll(cmd(""), ctx)) == usage
    assert run(poll.open_poll(cmd("Only | one"), ctx)) == usage
    assert run(poll.open_poll(cmd("| a | b"), ctx)) == usage
    many = " | ".join(str(n) for n in range(11))
    assert (
        run(poll.open_poll(cmd(f"T | {many}"), ctx)) == "mod: a poll may have 10 options at most."
    )
    assert (
        run(poll.open_poll(cmd("90m T | a | b"), ctx)) == "mod: a poll may run 60 minutes at most."
    )
    assert run(poll.open_poll(cmd("x" * 201 + " | a | b"), ctx)).startswith(
        "mod: titles may be 200"
    )
    assert ctx.channel.calls == []
    assert run(poll.end_poll(cmd(""), ctx)) == "mod: no poll is open."
    run(poll.open_poll(cmd("T | a | b"), ctx))
    assert run(poll.open_poll(cmd("U | a | b"), ctx)) == (
        "mod: a poll is open already (T); !endpoll closes it."
    )
    ctx.channel.refuse["close_poll"] = (
        "TIMEOUT",
        "CyTube did not confirm; the bot may lack the rank",
    )
    assert run(poll.end_poll(cmd(""), ctx)) == (
        "mod: could not close the poll: CyTube did not confirm; the bot may lack the rank"
    )


def test_bot_without_rank_or_undeclared_action() -> None:
    ctx = AsyncCtx()
    ctx.channel.refuse["open_poll"] = ("PERMISSION_DENIED", "the bot may not open polls here")
    assert run(poll.open_poll(cmd("T | a | b"), ctx)) == (
        "mod: could not open the poll: the bot may not open polls here"
    )
    bare = AsyncCtx(channel=FakeChannel(actions=()))
    assert "actions: [poll]" in run(poll.open_poll(cmd("T | a | b"), bare))
    assert bare.db.data.get("polls", {}) == {}


def test_handlers_are_coroutine_functions() -> None:
    for handler in (poll.open_poll, poll.end_poll, poll.on_change, poll.on_close):
        assert inspect.iscoroutinefunction(handler)
