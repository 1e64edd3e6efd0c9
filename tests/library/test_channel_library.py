"""media, poll and automod end to end: a real runtime, the database service, the connector and
the fake CyTube server (tests/fake_cytube.py)."""

from __future__ import annotations

import html
import re

from runtime.core.runtime import Runtime
from runtime.database.client import DatabaseClient
from runtime.database.service import DatabaseService
from runtime.wire.bus import Bus
from tests.conftest import MakeRuntime, wait_for
from tests.cytube_helpers import MakeConnector, MakeFake, make_connector, make_fake
from tests.fake_cytube import FakeCytube
from tests.fnkit import library

__all__ = ["make_connector", "make_fake"]  # fixtures

TW = "https://www.twitch.tv/somebody"


async def serve(make_runtime: MakeRuntime, bus: Bus, *names: str) -> Runtime:
    manifests, code = library(*names)
    return await make_runtime(
        manifests, code, db=lambda f: DatabaseClient(bus, f.name, f.collections)
    )


async def room(make_fake: MakeFake, make_connector: MakeConnector) -> FakeCytube:
    fake = await make_fake(ranks={"owner": 5, "rosey": 2})
    await make_connector(fake)
    await fake.until(lambda: "rosey" in fake.bots())
    return fake


def said(fake: FakeCytube, pattern: str) -> list[str]:
    lines = [html.unescape(line) for line in fake.said("rosey")]  # the server escapes chat
    return [line for line in lines if re.search(pattern, line)]


async def test_add_np_and_skip(
    make_fake: MakeFake,
    make_connector: MakeConnector,
    make_runtime: MakeRuntime,
    bus: Bus,
    database: DatabaseService,
) -> None:
    await serve(make_runtime, bus, "media")
    fake = await room(make_fake, make_connector)
    await fake.join("alice", 1)
    await fake.join("bob", 1)
    await fake.join("carol", 0)
    await fake.say("alice", f"!add {TW}")
    [added] = await fake.until(lambda: said(fake, "added"))
    assert added == "alice added Twitch.tv - somebody (live)."
    await fake.add("yt", "dQw4w9WgXcQ", title="Next up", seconds=200, by="carol")
    assert fake.current is not None and fake.current.type == "tw"
    await fake.say("bob", "!np")
    [np] = await fake.until(lambda: said(fake, "Now playing"))
    assert np.startswith("Now playing: Twitch.tv - somebody [") and np.endswith("queued by alice.")
    # alice, bob and carol are present and not AFK (the bot does not count): 2 votes skip.
    await fake.say("alice", "!skip")
    await fake.until(lambda: said(fake, "voted to skip"))
    await fake.say("bob", "!skip")
    [skipping] = await fake.until(lambda: said(fake, "^Skipping"))
    assert skipping == "Skipping Twitch.tv - somebody (2/2 votes)."
    await fake.until(lambda: fake.current is not None and fake.current.title == "Next up")


async def test_poll_and_results(
    make_fake: MakeFake,
    make_connector: MakeConnector,
    make_runtime: MakeRuntime,
    bus: Bus,
    database: DatabaseService,
) -> None:
    await serve(make_runtime, bus, "poll")
    fake = await room(make_fake, make_connector)
    await fake.join("mod", 2)
    await fake.join("alice", 0)
    await fake.say("mod", "!poll Movie tonight? | Alien | Heat")
    await fake.until(lambda: said(fake, "Poll opened"))
    assert fake.poll is not None and fake.poll.options == ["Alien", "Heat"]
    await fake.vote("alice", 1)
    await fake.vote("mod", 1)
    await fake.until(lambda: fake.poll is not None and fake.poll.counts() == [0, 2])
    await fake.say("mod", "!endpoll")
    [closed] = await fake.until(lambda: said(fake, "Poll closed"))
    assert closed == "Poll closed: Movie tonight?: Alien 0, Heat 2"


async def test_automod_warns_a_flooder_by_name(
    make_fake: MakeFake,
    make_connector: MakeConnector,
    make_runtime: MakeRuntime,
    bus: Bus,
    database: DatabaseService,
) -> None:
    manifests, code = library("automod")
    handled: list[str] = []
    await make_runtime(
        manifests,
        code,
        db=lambda f: DatabaseClient(bus, f.name, f.collections),
        observers=(lambda a: handled.append(a.outcome),),
    )
    fake = await room(make_fake, make_connector)
    await fake.join("bob", 0)
    await fake.join("amy", 1)
    lines = [("amy", "hi all")] + [("bob", "BUY GOLD")] * 6
    for n, (user, line) in enumerate(lines, start=1):
        await fake.say(user, line)
        # At the pace of chat (CyTube's antiflood lets a user send 1 line/s after a burst of
        # 4): each line is handled before the next, as automod runs one line at a time.
        await wait_for(lambda n=n: len(handled) >= n)
    [warning] = await fake.until(lambda: said(fake, "^bob: please"))
    assert "busy" not in handled
    assert "stop repeating the same line" in warning
    assert not said(fake, "^amy")


def yt(video: str) -> str:
    return f"https://youtu.be/{video}"


async def test_playlist_lists_whats_next_with_who_asked(
    make_fake: MakeFake,
    make_connector: MakeConnector,
    make_runtime: MakeRuntime,
    bus: Bus,
    database: DatabaseService,
) -> None:
    await serve(make_runtime, bus, "media")
    fake = await room(make_fake, make_connector)
    await fake.join("alice", 1)
    await fake.join("bob", 0)
    await fake.add("yt", "A" * 11, title="Playing", seconds=100, by="owner")
    await fake.add("yt", "B" * 11, title="Second", seconds=65, by="bob")
    await fake.say("alice", f"!add {yt('C' * 11)}")
    [added] = await fake.until(lambda: said(fake, "added"))
    assert added == f"alice added yt:{'C' * 11} (2:00)."
    # The bot queued it (queueby rosey); !playlist names who asked, from media_requests.
    assert fake.playlist()[-1]["queueby"] == "rosey"
    await fake.say("bob", "!playlist")
    await fake.until(lambda: len(said(fake, r"^\d\. ")) == 2)
    assert said(fake, r"^\d\. ") == ["1. Second (1:05, bob)", f"2. yt:{'C' * 11} (2:00, alice)"]


async def test_shuffle_and_remove(
    make_fake: MakeFake,
    make_connector: MakeConnector,
    make_runtime: MakeRuntime,
    bus: Bus,
    database: DatabaseService,
) -> None:
    await serve(make_runtime, bus, "media")
    fake = await room(make_fake, make_connector)
    await fake.join("alice", 1)
    await fake.join("mod", 2)
    await fake.add("yt", "A" * 11, title="Playing", seconds=100, by="owner")
    await fake.add("yt", "B" * 11, title="Bobs", seconds=65, by="bob")
    await fake.add("yt", "D" * 11, title="Dans", seconds=65, by="dan")
    await fake.say("alice", f"!add {yt('C' * 11)}")
    await fake.until(lambda: said(fake, "added"))
    uids = {item["uid"] for item in fake.playlist()}
    await fake.say("mod", "!shuffle")
    await fake.until(lambda: said(fake, "^Playlist shuffled"))
    assert not uids & {item["uid"] for item in fake.playlist()}  # every uid is new
    assert fake.current is not None and fake.current.title == "Playing"
    order = [item["media"]["title"] for item in fake.playlist()[1:]]
    mine = order.index(f"yt:{'C' * 11}") + 1
    other = order.index("Bobs") + 1
    # Someone else's item: refused, left on the playlist.
    await fake.say("alice", f"!remove {other}")
    [refused] = await fake.until(lambda: said(fake, "not yours"))
    assert refused == f"alice: #{other} is not yours (Bobs, queued by bob)."
    assert "Bobs" in [item["media"]["title"] for item in fake.playlist()]
    # Her own, found by its request record although the bot queued it.
    await fake.say("alice", f"!remove {mine}")
    await fake.until(lambda: said(fake, "^alice removed"))
    assert said(fake, "removed") == [f"alice removed yt:{'C' * 11}."]
    assert f"yt:{'C' * 11}" not in [item["media"]["title"] for item in fake.playlist()]
    # A moderator removes anyone's.
    order = [item["media"]["title"] for item in fake.playlist()[1:]]
    await fake.say("mod", f"!remove {order.index('Bobs') + 1}")
    await fake.until(lambda: said(fake, "^mod removed"))
    assert [item["media"]["title"] for item in fake.playlist()] == ["Playing", "Dans"]


async def test_add_refusals(
    make_fake: MakeFake,
    make_connector: MakeConnector,
    make_runtime: MakeRuntime,
    bus: Bus,
    database: DatabaseService,
) -> None:
    await serve(make_runtime, bus, "media")
    fake = await room(make_fake, make_connector)
    for name in ("alice", "bob", "carol"):
        await fake.join(name, 1)
    await fake.add("yt", "A" * 11, title="Playing", seconds=100, by="owner")
    for n in range(3):
        await fake.add("yt", f"{n}" * 11, seconds=60, by="carol")
    before = fake.playlist()
    # The server's own words, for an item it already has.
    await fake.say("alice", f"!add {yt('A' * 11)}")
    [dupe] = await fake.until(lambda: said(fake, "^alice"))
    assert dupe == "alice: could not add that: This item is already on the playlist"
    # `next` is for moderators.
    await fake.say("bob", f"!add {yt('B' * 11)} next")
    [nxt] = await fake.until(lambda: said(fake, "^bob"))
    assert nxt == "bob: only moderators may add next; !add <url> queues at the end."
    # carol has 3 items coming up already (max_per_user: 3).
    await fake.say("carol", f"!add {yt('C' * 11)}")
    [limit] = await fake.until(lambda: said(fake, "^carol"))
    assert limit == "carol: you have 3 items queued already (the limit is 3)."
    assert fake.playlist() == before
    assert fake.emitted("queueFail") and len(fake.emitted("queueFail")) == 1


async def test_np_with_nothing_playing(
    make_fake: MakeFake,
    make_connector: MakeConnector,
    make_runtime: MakeRuntime,
    bus: Bus,
    database: DatabaseService,
) -> None:
    await serve(make_runtime, bus, "media")
    fake = await room(make_fake, make_connector)
    await fake.join("owner", 5)
    await fake.join("alice", 0)
    await fake.join("bob", 0)
    await fake.say("alice", "!np")
    await fake.until(lambda: said(fake, "^Nothing is playing"))
    # Something played, then the playlist was cleared: CyTube sends only `playlist []`.
    await fake.add("yt", "A" * 11, title="Gone soon", seconds=100, by="owner")
    await fake.act("owner", "clearPlaylist", None)
    assert fake.current is None
    await fake.say("bob", "!np")
    await fake.until(lambda: len(said(fake, "^Nothing is playing")) == 2)
    assert not said(fake, "Now playing")
