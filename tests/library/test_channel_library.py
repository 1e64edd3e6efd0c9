"""media, poll and automod end to end: a real runtime, the database service, the connector and
the fake CyTube server (tests/fake_cytube.py)."""

from __future__ import annotations

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
    return [line for line in fake.said("rosey") if re.search(pattern, line)]


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
