"""automod: each rule, escalation, exemptions, and ordinary chat left alone (in-memory ctx, driving
the async handlers)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from functions import automod
from tests.fnkit import FakeChannel, chat, ev
from tests.library.drive import AsyncChannel, AsyncCtx, run

T0 = 1_700_000_000.0


def room(config: dict[str, Any] | None = None) -> AsyncCtx:
    channel = FakeChannel(users=[{"name": "rosey", "rank": 3, "afk": False}])
    for name, rank in (("amy", 1), ("bob", 0), ("cid", 1), ("dan", 1.5), ("mod", 2)):
        channel.join(name, rank)
    return AsyncCtx(config=config or {}, channel=channel)


def say(ctx: AsyncCtx, user: str, message: str, at: float, rank: float = 1) -> None:
    run(automod.on_chat(chat(user, message, T0 + at, rank=rank), ctx))


def antiflood(count: int) -> list[float]:
    """When CyTube's chat_antiflood lets `count` lines through: a burst of 4, then one a second."""
    return [0.0 if i < 4 else float(i - 3) for i in range(count)]


def test_six_identical_lines_in_ten_seconds_get_a_warning_naming_the_user() -> None:
    ctx = room()
    for at in antiflood(6):
        say(ctx, "bob", "BUY CHEAP GOLD", at, rank=0)
    warnings = [text for text, _ in ctx.sent]
    assert warnings == [
        "bob: please stop repeating the same line (the same line 5 times within 10s; "
        "automod warning)."
    ]
    assert ctx.sent[0][1] == "test"
    assert ctx.explained == ["warn bob: the same line 5 times within 10s (strike 1)"]
    assert ctx.channel.calls == []


def test_escalation_warn_mute_kick_within_the_window() -> None:
    ctx = room()
    at = 0.0
    for _ in range(3):
        for _ in range(5):
            say(ctx, "bob", "spam spam", at, rank=0)
            at += 1
    assert ctx.channel.calls == [
        ("moderate", "mute", "bob", "automod: the same line 5 times within 10s"),
        ("moderate", "kick", "bob", "automod: the same line 5 times within 10s"),
    ]
    assert [r.split(":")[0] for r in ctx.explained] == ["warn bob", "mute bob", "kick bob"]
    assert "bob is muted for a while" in ctx.sent[1][0]
    record = run(ctx.db.get("automod", "test:bob"))
    assert record["muted_until"] == T0 + 9 + 300
    assert len(record["strikes"]) == 3


def test_strikes_expire_after_the_window() -> None:
    ctx = room({"escalation": {"window": 60}})
    for at in range(5):
        say(ctx, "bob", "again", at, rank=0)
    for at in range(100, 105):
        say(ctx, "bob", "again", at, rank=0)
    assert ctx.channel.calls == []  # two warnings, not a mute: the first strike expired
    assert len(ctx.sent) == 2


def test_message_rate_reachable_through_antiflood() -> None:
    ctx = room()
    for i, at in enumerate(antiflood(12)):
        say(ctx, "bob", f"line number {i}", at, rank=0)
    assert ctx.explained == ["warn bob: 12 lines within 10s (strike 1)"]
    assert ctx.sent[0][0].startswith("bob: please slow down (")


def test_caps_only_on_long_lines() -> None:
    ctx = room()
    say(ctx, "amy", "LOL", 0)
    say(ctx, "amy", "OMG YES THAT WAS GREAT", 20)  # 18 letters: too short to count
    say(ctx, "amy", "I love this song https://www.youtube.com/watch?v=ABCDEFGHIJK", 40)
    assert ctx.sent == []
    say(ctx, "amy", "WHY IS NOBODY LISTENING TO ME RIGHT NOW", 60)
    assert ctx.explained == ["warn amy: a long line in capitals (strike 1)"]


def test_links_by_rank_off_by_default_and_configurable() -> None:
    ctx = room()
    say(ctx, "bob", "look at https://example.com/page", 0, rank=0)
    assert ctx.sent == []
    ctx = room({"links_below_rank": 1})
    say(ctx, "amy", "look at https://example.com/page", 0, rank=1)
    assert ctx.sent == []
    say(ctx, "bob", "look at www.example.com", 0, rank=0)
    assert ctx.explained == ["warn bob: a link below rank 1 (strike 1)"]


def test_banned_words_whole_words_only() -> None:
    ctx = room({"banned_words": ["darn", "heck it"]})
    say(ctx, "amy", "the darnedest thing", 0)
    say(ctx, "amy", "Heck, itchy", 30)
    assert ctx.sent == []
    say(ctx, "amy", "well DARN!", 60)
    assert ctx.explained == ["warn amy: banned word 'darn' (strike 1)"]
    say(ctx, "cid", "oh heck  it", 90)
    assert ctx.explained[-1] == "warn cid: banned word 'heck it' (strike 1)"


def test_moderators_are_exempt_and_exempt_rank_is_configurable() -> None:
    ctx = room()
    for at in antiflood(20):
        say(ctx, "mod", "HELLO EVERYBODY THIS IS A TEST", at, rank=2)
    assert ctx.sent == [] and ctx.db.data.get("automod", {}) == {}
    ctx = room({"exempt_rank": 1.5})
    for at in range(6):
        say(ctx, "dan", "same", at, rank=1.5)
        say(ctx, "amy", "same", at, rank=1)
    assert [t.split(":")[0] for t, _ in ctx.sent] == ["amy"]


def test_a_rule_set_to_null_is_off() -> None:
    ctx = room({"flood": None, "rate": {"lines": 0}, "caps": None})
    for at in antiflood(15):
        say(ctx, "bob", "SAME OLD SHOUTING LINE AGAIN AND AGAIN", at, rank=0)
    assert ctx.sent == []


def test_when_the_bot_may_not_mute_it_still_warns() -> None:
    ctx = room({"escalation": {"steps": ["mute"]}})
    ctx.channel.refuse["moderate"] = ("PERMISSION_DENIED", "the bot's rank is too low to mute")
    for at in range(5):
        say(ctx, "bob", "x", at, rank=0)
    assert ctx.sent[0][0].startswith("bob: please stop repeating the same line")
    assert ctx.explained == [
        "mute bob: the same line 5 times within 10s (strike 1); could not mute: "
        "the bot's rank is too low to mute, warned instead"
    ]
    bare = room({"escalation": {"steps": ["kick"]}})
    bare.channel = AsyncChannel(FakeChannel(actions=()))
    for at in range(5):
        say(bare, "bob", "x", at, rank=0)
    assert "actions: [moderate]" in bare.explained[0] and bare.sent


def test_unmute_when_the_time_is_up(monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = room({"escalation": {"steps": ["mute"]}, "mute_seconds": 60})
    for at in range(5):
        say(ctx, "bob", "x", at, rank=0)
    assert ctx.channel.muted == {"bob"}
    monkeypatch.setattr(automod.time, "time", lambda: T0 + 30)
    run(automod.unmute(ev(kind="schedule"), ctx))
    assert ctx.channel.muted == {"bob"}
    monkeypatch.setattr(automod.time, "time", lambda: T0 + 65)
    run(automod.unmute(ev(kind="schedule"), ctx))
    assert ctx.channel.muted == set() and ctx.explained[-1] == "unmute bob: time is up"
    assert run(ctx.db.get("automod", "test:bob"))["muted_until"] == 0


ORDINARY = [
    # (seconds, user, rank, line): ten minutes of a busy channel watching something together.
    (0, "amy", 1, "hi all"),
    (2, "bob", 0, "hey amy"),
    (3, "cid", 1, "hi"),
    (5, "dan", 1.5, "hello hello"),
    (9, "amy", 1, "what are we watching tonight?"),
    (12, "dan", 1.5, "the queue has that new trailer"),
    (13, "bob", 0, "lol"),
    (14, "bob", 0, "lol"),
    (15, "bob", 0, "LOL"),
    (18, "cid", 1, "nice"),
    (20, "amy", 1, "oh I love this one"),
    (21, "amy", 1, "the soundtrack is so good"),
    (22, "amy", 1, "especially the second half"),
    (24, "bob", 0, "YES"),
    (25, "bob", 0, "OMG YES"),
    (26, "cid", 1, "!np"),
    (30, "dan", 1.5, "https://en.wikipedia.org/wiki/Film_score has a page about it"),
    (33, "bob", 0, "check https://example.com/clip it's the same director"),
    (40, "cid", 1, "!add https://www.youtube.com/watch?v=dQw4w9WgXcQ"),
    (42, "amy", 1, "haha classic"),
    (43, "bob", 0, "NEVER GONNA GIVE YOU UP"),
    (50, "cid", 1, "!skip"),
    (51, "bob", 0, "!skip"),
    (52, "amy", 1, "noooo"),
    (53, "amy", 1, "let it play"),
    (60, "dan", 1.5, "gg"),
    (61, "cid", 1, "gg"),
    (62, "bob", 0, "gg"),
    (63, "amy", 1, "gg"),
    (90, "bob", 0, "brb"),
    (200, "bob", 0, "back"),
    (201, "bob", 0, "what did I miss"),
    (203, "amy", 1, "nothing much"),
    (240, "cid", 1, "!playlist"),
    (245, "cid", 1, "ok next is the documentary"),
    (300, "amy", 1, "WOW"),
    (301, "amy", 1, "wow"),
    (302, "amy", 1, "wow!"),
    (303, "amy", 1, "did not expect that"),
    (420, "dan", 1.5, "goodnight everyone"),
    (421, "amy", 1, "night!"),
    (421, "bob", 0, "night"),
    (422, "cid", 1, "night"),
    (600, "bob", 0, "anyone still here?"),
]


def test_ordinary_chat_is_never_punished() -> None:
    ctx = room()
    for at, user, rank, line in ORDINARY:
        say(ctx, user, line, at, rank=rank)
    assert ctx.sent == [] and ctx.explained == [] and ctx.channel.calls == []


def test_fast_ordinary_chat_at_the_antiflood_limit_is_not_punished() -> None:
    """An excited user typing as fast as CyTube lets them, different lines each time."""
    ctx = room()
    lines = ["GOAL", "what a shot", "did you see that", "incredible", "replay please", "wow wow"]
    lines += ["best match", "i cant believe it", "GOAL GOAL", "ok im calm"]
    for at, line in zip(antiflood(len(lines)), lines, strict=True):
        say(ctx, "amy", line, at)
    assert ctx.sent == [] and ctx.explained == []


def test_the_handlers_are_async() -> None:
    """automod reads every chat line: its handlers run on the event loop, not in a thread."""
    assert inspect.iscoroutinefunction(automod.on_chat)
    assert inspect.iscoroutinefunction(automod.unmute)
