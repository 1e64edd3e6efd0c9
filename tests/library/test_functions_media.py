"""media: !add, !np, !playlist, !skip, !shuffle, !remove against an in-memory channel (driving the
async handlers)."""

from __future__ import annotations

import inspect

from functions import media
from tests.fnkit import FakeChannel, ev
from tests.library.drive import AsyncCtx, run

YT = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
TW = "https://www.twitch.tv/somebody"
HLS = "https://example.com/live/stream.m3u8"


def room(*names: str, afk: tuple[str, ...] = ()) -> AsyncCtx:
    channel = FakeChannel(users=[{"name": "rosey", "rank": 2, "afk": False}])
    for name in names:
        channel.join(name, rank=2 if name == "mod" else 1, afk=name in afk)
    return AsyncCtx(channel=channel)


def test_add_answers_the_title_and_remembers_who_asked() -> None:
    ctx = room("amy", "bob")
    ctx.channel.titles[YT] = ("Never Gonna Give You Up", 213)
    assert run(media.add(ev(YT, rank=1), ctx)) == "amy added Never Gonna Give You Up (3:33)."
    assert ctx.channel.calls == [("add", YT, False)]
    assert run(media.add(ev(TW, user="bob", rank=1), ctx)) == f"bob added {TW} (live)."
    assert run(media.now_playing(ev(), ctx)) == (
        "Now playing: Never Gonna Give You Up [0:00/3:33], queued by amy."
    )
    ctx.channel.fake.current_time = 75.4
    assert "[1:15/3:33]" in run(media.now_playing(ev(), ctx))
    assert run(media.playlist(ev(), ctx)) == [f"1. {TW} (live, bob)"]


def test_add_reports_the_servers_refusal_and_bad_usage() -> None:
    ctx = room("amy")
    assert run(media.add(ev(), ctx)) == "amy: usage is !add <url> [next]"
    assert run(media.add(ev(YT, "later"), ctx)) == "amy: usage is !add <url> [next]"
    assert run(media.add(ev("not-a-link", rank=1), ctx)).startswith("amy: could not add that: ")
    run(media.add(ev(YT, rank=1), ctx))
    again = run(media.add(ev(YT, rank=1), ctx))
    assert again == "amy: could not add that: This item is already on the playlist"
    ctx.channel.refuse["add"] = ("TIMEOUT", "CyTube did not confirm; the bot may lack the rank")
    assert run(media.add(ev(TW, rank=1), ctx)) == (
        "amy: could not add that: CyTube did not confirm; the bot may lack the rank"
    )


def test_add_next_is_for_moderators() -> None:
    ctx = room("amy", "mod")
    run(media.add(ev(YT, rank=1), ctx))
    run(media.add(ev(TW, rank=1), ctx))
    assert run(media.add(ev(HLS, "next", rank=1), ctx)) == (
        "amy: only moderators may add next; !add <url> queues at the end."
    )
    assert run(media.add(ev(HLS, "next", user="mod", rank=2), ctx)).endswith("to play next.")
    assert [i["type"] for i in ctx.channel.fake.playlist()] == ["yt", "hl", "tw"]


def test_per_user_limit_counts_queued_items_of_that_user() -> None:
    ctx = room("amy", "bob", "mod")
    ctx.config = {"max_per_user": 2}
    ctx.channel.fake.queue("playing now")  # nothing of amy's is playing: her items are all queued
    for n in range(2):
        assert run(media.add(ev(f"{YT[:-1]}{n}", rank=1), ctx)).startswith("amy added")
    assert run(media.add(ev(TW, rank=1), ctx)) == (
        "amy: you have 2 items queued already (the limit is 2)."
    )
    assert run(media.add(ev(TW, user="bob", rank=1), ctx)).startswith("bob added")
    ctx.channel.fake.queue("by hand", queueby="amy")  # amy queued one herself, in CyTube's UI
    assert run(media.add(ev(HLS, user="mod", rank=2), ctx)).startswith("mod added")  # exempt
    assert run(media.remove(ev("1"), ctx)) == f"amy removed {YT[:-1]}0."
    assert run(media.add(ev(HLS + "?x", rank=1), ctx)).startswith("amy: you have 2 items")


def test_max_duration_removes_what_is_too_long() -> None:
    ctx = room("amy", "mod")
    ctx.config = {"max_duration": 600}
    ctx.channel.titles[YT] = ("A film", 5400)
    assert (
        run(media.add(ev(YT, rank=1), ctx))
        == "amy: A film is 1:30:00 long; at most 10:00 is allowed."
    )
    assert ctx.channel.fake.playlist() == [] and ctx.channel.calls[-1][0] == "remove"
    assert run(media.add(ev(TW, rank=1), ctx)).startswith("amy added")  # live: no duration
    assert run(media.add(ev(YT, user="mod", rank=2), ctx)) == "mod added A film (1:30:00)."


def test_np_and_playlist_when_empty_and_capped() -> None:
    ctx = room("amy")
    assert run(media.now_playing(ev(), ctx)) == "Nothing is playing."
    assert run(media.playlist(ev(), ctx)) == "Nothing is queued."
    for n in range(9):
        ctx.channel.fake.queue(f"song {n}", duration=61, queueby="bob")
    assert run(media.now_playing(ev(), ctx)) == "Now playing: song 0 [0:00/1:01], queued by bob."
    assert run(media.playlist(ev(), ctx)) == [
        "1. song 1 (1:01, bob)",
        "2. song 2 (1:01, bob)",
        "3. song 3 (1:01, bob)",
        "… and 5 more.",
    ]
    assert len(run(media.playlist(ev("50"), ctx))) == 6  # capped at 5, plus the rest line
    assert run(media.playlist(ev("x"), ctx)) == "amy: usage is !playlist [n], at most 5"


def test_skip_votes_one_per_user_and_the_threshold() -> None:
    ctx = room("amy", "bob", "cid", "dan", "eve", afk=("eve",))
    ctx.channel.fake.queue("first", queueby="bob")
    ctx.channel.fake.queue("second", queueby="bob")
    # 4 present and not AFK (the bot and eve do not count): half is 2 votes.
    assert run(media.skip(ev(), ctx)) == "amy voted to skip first (1/2)."
    assert run(media.skip(ev(), ctx)) == "amy: you already voted to skip this (1/2)."
    assert ctx.channel.calls == []
    assert run(media.skip(ev(user="bob"), ctx)) == "Skipping first (2/2 votes)."
    assert ctx.channel.calls == [("skip",)]
    assert ctx.channel.fake.media()["title"] == "second"
    # A new item: the votes start again.
    assert run(media.skip(ev(), ctx)) == "amy voted to skip second (1/2)."


def test_skip_ratio_config_and_at_least_one_vote() -> None:
    ctx = room("amy", "bob", "cid")
    ctx.config = {"skip_ratio": 1.0}
    ctx.channel.fake.queue("x")
    assert run(media.skip(ev(), ctx)) == "amy voted to skip x (1/3)."
    ctx.config = {"skip_ratio": 0}
    assert run(media.skip(ev(user="bob"), ctx)) == "Skipping x (2/1 votes)."
    alone = room("amy")
    alone.channel.fake.queue("y")
    assert run(media.skip(ev(), alone)) == "Skipping y (1/1 votes)."


def test_moderator_skips_at_once_and_refusals_are_reported() -> None:
    ctx = room("amy", "bob", "mod")
    assert run(media.skip(ev(user="mod", rank=2), ctx)) == "Nothing is playing."
    ctx.channel.fake.queue("x")
    assert run(media.skip(ev(user="mod", rank=2), ctx)) == "mod skipped x."
    ctx.channel.fake.queue("y")
    ctx.channel.refuse["skip"] = ("TIMEOUT", "the bot may lack the rank")
    assert (
        run(media.skip(ev(user="mod", rank=2), ctx))
        == "mod: could not skip: the bot may lack the rank"
    )


def test_shuffle_keeps_who_asked() -> None:
    ctx = room("amy", "mod")
    ctx.channel.fake.queue("playing")
    run(media.add(ev(YT, rank=1), ctx))
    run(media.add(ev(TW, user="mod", rank=2), ctx))
    before = {i["uid"] for i in ctx.channel.fake.playlist()}
    assert run(media.shuffle(ev(user="mod", rank=2), ctx)) == "Playlist shuffled."
    assert before.isdisjoint(i["uid"] for i in ctx.channel.fake.playlist())
    assert sorted(line.rsplit(", ", 1)[1] for line in run(media.playlist(ev(), ctx))) == [
        "amy)",
        "mod)",
    ]
    ctx.channel.refuse["shuffle"] = ("PERMISSION_DENIED", "the bot's rank is too low")
    assert run(media.shuffle(ev(user="mod", rank=2), ctx)) == (
        "mod: could not shuffle: the bot's rank is too low"
    )


def test_remove_own_items_or_any_for_moderators() -> None:
    ctx = room("amy", "bob", "mod")
    ctx.channel.fake.queue("playing")
    run(media.add(ev(YT, rank=1), ctx))
    run(media.add(ev(TW, user="bob", rank=1), ctx))
    assert run(media.remove(ev("2"), ctx)) == f"amy: #2 is not yours ({TW}, queued by bob)."
    assert run(media.remove(ev("3"), ctx)) == "amy: there is no #3; 2 items are queued."
    assert (
        run(media.remove(ev("x"), ctx))
        == "amy: usage is !remove <n>, n a position shown by !playlist"
    )
    assert run(media.remove(ev("#1"), ctx)) == f"amy removed {YT}."
    assert run(media.remove(ev("1", user="mod", rank=2), ctx)) == f"mod removed {TW}."
    assert [i["title"] for i in ctx.channel.fake.playlist()] == ["playing"]
    assert ctx.db.data["media_requests"] == {}


def test_undeclared_action_is_refused_before_anything_is_sent() -> None:
    ctx = AsyncCtx(channel=FakeChannel(actions=()))
    answer = run(media.add(ev(YT, rank=1), ctx))
    assert answer.startswith("amy: could not add that: ") and "actions: [playlist]" in answer
    assert ctx.channel.calls == []


def test_the_handlers_are_async() -> None:
    handlers = (
        media.add,
        media.now_playing,
        media.playlist,
        media.skip,
        media.shuffle,
        media.remove,
    )
    assert all(inspect.iscoroutinefunction(handler) for handler in handlers)
