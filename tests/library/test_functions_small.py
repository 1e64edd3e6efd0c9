"""8ball, fortune, stats and help handlers, called directly (no NATS)."""

from typing import Any

from functions import eightball, fortune, stats
from functions import help as help_fn
from runtime.config.manifest import parse
from runtime.core.registry import Registry
from tests.fnkit import FakeCtx, ev
from tests.library.drive import AsyncDb, run


def test_8ball_answers_a_question_and_asks_for_one() -> None:
    reply = run(eightball.ask(ev("will", "it", "rain?"), FakeCtx()))
    assert reply.startswith("amy: 🎱 ") and reply.removeprefix("amy: 🎱 ") in eightball.ANSWERS
    assert run(eightball.ask(ev(), FakeCtx())).startswith("amy: ask the 8-ball a yes/no question")


def test_fortune_and_favorite_are_kept_per_user() -> None:
    ctx = FakeCtx(db=AsyncDb())
    assert run(fortune.tell(ev("favorite"), ctx)) == "amy: you have no fortune yet; try !fortune"
    told = run(fortune.tell(ev(), ctx))
    assert told.startswith("amy's fortune: ")
    assert run(fortune.tell(ev("favorite"), ctx)) == told
    assert run(fortune.tell(ev("favorite", user="bob"), ctx)).startswith("bob: you have no fortune")
    assert run(fortune.tell(ev("nonsense"), ctx)) == "amy: usage is !fortune or !fortune favorite"


class Asking(FakeCtx):
    def __init__(self, reply: Any) -> None:
        super().__init__(config={"top": 2})
        self.reply, self.asked = reply, []

    async def request(self, subject: str, data: Any, timeout: float = 5.0) -> Any:
        self.asked.append((subject, data))
        if isinstance(self.reply, Exception):
            raise self.reply
        return self.reply


def test_stats_formats_the_runtime_counters() -> None:
    data = {
        "served": 42,
        "uptime": 3725,
        "commands": {"roll": 30, "help": 12},
        "top_users": [["amy", 20], ["bob", 5]],
    }
    ctx = Asking({"success": True, "data": data})
    assert (
        run(stats.show(ev(), ctx))
        == "Served 42 commands in 1h 2m; most used !roll; top users: amy (20), bob (5)."
    )
    assert ctx.asked == [("rosey.stats", {"top": 2})]


def test_stats_unavailable_is_one_line() -> None:
    assert (
        run(stats.show(ev(), Asking(TimeoutError("no"))))
        == "amy: stats are not available right now."
    )
    assert (
        run(stats.show(ev(), Asking({"success": False})))
        == "amy: stats are not available right now."
    )


def test_help_mentions_rank_and_cooldown() -> None:
    registry = Registry(
        [
            parse(
                {
                    "name": "q",
                    "version": "1.0.0",
                    "description": "q",
                    "handler": "q:f",
                    "commands": {
                        "delquote": {"rank": 2, "usage": "!delquote <id>", "help": "Deletes."},
                        "8ball": {"cooldown": {"seconds": 10, "per": "channel"}},
                    },
                }
            )
        ]
    )
    ctx = FakeCtx(commands=registry.commands)
    assert (
        run(help_fn.show(ev("delquote", rank=2), ctx))
        == "!delquote <id>: Deletes. (moderator and up)"
    )
    assert run(help_fn.show(ev("8ball"), ctx)) == "!8ball (once every 10s per channel)"
    assert run(help_fn.show(ev(), ctx)) == "Commands: !8ball. Try !help <command>."
