"""The channel model (playlist, media, poll, users' rank and AFK) and the cytube.state request."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from runtime.cytube.channel import Room
from runtime.cytube.events import ChannelState, strip_html
from runtime.wire import contract
from runtime.wire.bus import Bus
from tests.cytube_helpers import MakeConnector, MakeFake, Watch, make_connector, make_fake

__all__ = ["make_connector", "make_fake"]  # fixtures


def raw(uid: int, ident: str, title: str = "", seconds: float = 60, by: str = "alice") -> Any:
    """A playlist item as CyTube packs it."""
    media = {"id": ident, "title": title or ident, "seconds": seconds, "type": "yt", "meta": {}}
    return {"media": {**media, "duration": "01:00"}, "uid": uid, "temp": True, "queueby": by}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def room(clock: Callable[[], float] | None = None) -> Room:
    return Room("test", strip_html, clock) if clock else Room("test", strip_html)


def checked(events: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    for subject, payload in events:
        contract.check(subject, payload)  # every published event satisfies the contract
    return events


def test_playlist_queue_delete_move() -> None:
    r = room()
    r.handle("playlist", [raw(1, "a"), raw(2, "b")])
    [(subject, queued)] = checked(r.handle("queue", {"item": raw(5, "c", "a &amp; b"), "after": 1}))
    assert subject == "cytube.media.queue"
    assert queued["item"] == {
        "uid": 5,
        "title": "a & b",
        "duration": 60,
        "type": "yt",
        "id": "c",
        "queueby": "alice",
        "temp": True,
    }
    assert [i["uid"] for i in r.items] == [1, 5, 2]
    checked(r.handle("queue", {"item": raw(6, "d"), "after": "prepend"}))
    assert [i["uid"] for i in r.items] == [6, 1, 5, 2]
    assert checked(r.handle("moveVideo", {"from": 6, "after": 2})) == [
        ("cytube.media.move", {"from": 6, "after": 2, "channel": "test"})
    ]
    assert [i["uid"] for i in r.items] == [1, 5, 2, 6]
    assert checked(r.handle("delete", {"uid": 5})) == [
        ("cytube.media.delete", {"uid": 5, "channel": "test"})
    ]
    r.handle("setTemp", {"uid": 2, "temp": False})
    assert [(i["uid"], i["temp"]) for i in r.items] == [(1, True), (2, False), (6, True)]
    assert r.handle("delete", {"uid": "2"}) == []  # not a number: CyTube ignores it too


def test_media_time_is_extrapolated_while_playing() -> None:
    clock = Clock()
    r = room(clock)
    r.handle("playlist", [raw(3, "abc", "Song", 200)])
    r.handle("setCurrent", 3)
    frame = {"id": "abc", "title": "Song", "seconds": 200, "duration": "03:20", "type": "yt"}
    [(_, change)] = checked(
        r.handle("changeMedia", {**frame, "meta": {}, "currentTime": 10, "paused": False})
    )
    assert change == {
        "title": "Song",
        "type": "yt",
        "channel": "test",
        "id": "abc",
        "url": "https://youtu.be/abc",
        "duration": 200,
        "uid": 3,
        "queued_by": "alice",
    }
    clock.now += 5
    media = r.now_playing()
    assert media is not None and media["current_time"] == 15 and media["uid"] == 3
    r.handle("mediaUpdate", {"currentTime": 40, "paused": True})
    clock.now += 30
    assert (r.now_playing() or {})["current_time"] == 40  # paused: no time passes
    r.handle("mediaUpdate", {"currentTime": 190, "paused": False})
    clock.now += 60
    assert (r.now_playing() or {})["current_time"] == 200  # never past the end
    # On a rejoin the server sends the same changeMedia: no new event.
    assert r.handle("changeMedia", {**frame, "currentTime": 0, "paused": False}) == []


def test_polls() -> None:
    r = room()
    frame = {
        "title": "Best &lt;tea&gt;?",
        "options": ["<a href='x'>x</a>", "green"],
        "counts": [0, 0],
        "initiator": "alice",
        "timestamp": 1,
    }
    [(subject, opened)] = checked(r.handle("newPoll", frame))
    assert (subject, opened["title"], opened["options"]) == (
        "cytube.poll.open",
        "Best <tea>?",
        ["x", "green"],
    )
    assert r.handle("newPoll", frame) == []  # the open poll again on a rejoin
    [(subject, update)] = checked(r.handle("updatePoll", {**frame, "counts": ["1?", "?"]}))
    assert (subject, update["counts"]) == ("cytube.poll.update", ["1?", "?"])
    assert checked(r.handle("closePoll", None)) == [("cytube.poll.close", {"channel": "test"})]
    assert r.poll is None and r.closed["counts"] == ["1?", "?"]
    assert r.handle("closePoll", None) == []


def test_users_rank_and_afk() -> None:
    chan = ChannelState("test")
    chan.me = "rosey"
    chan.userlist(
        [
            {"name": "alice", "rank": 0, "meta": {"afk": True, "muted": False}},
            {"name": "rosey", "rank": 1, "meta": {"afk": False}},
        ]
    )
    assert chan.user_views() == [
        {"name": "alice", "rank": 0, "afk": True},
        {"name": "rosey", "rank": 1, "afk": False},
    ]
    # The bot's channel rank comes after login, as setUserRank.
    assert checked(chan.set_user_rank({"name": "rosey", "rank": 2})) == [
        ("cytube.user.rank", {"user": "rosey", "rank": 2, "channel": "test"})
    ]
    assert chan.rank == 2
    assert chan.set_user_rank({"name": "rosey", "rank": 2}) == []  # re-sent on login: no change
    assert checked(chan.set_afk({"name": "ALICE", "afk": False})) == [
        ("cytube.user.afk", {"user": "alice", "afk": False, "channel": "test"})
    ]
    assert chan.set_afk({"name": "alice", "meta": {"afk": False, "muted": True}}) == []
    assert chan.set_afk({"name": "alice", "meta": {"afk": True}})[0][1]["afk"] is True
    assert chan.set_afk({"name": "nobody", "afk": True}) == []


def test_voteskip_and_options() -> None:
    r = room()
    assert checked(r.handle("voteskip", {"count": 1, "need": 2})) == [
        ("cytube.voteskip", {"count": 1, "need": 2, "channel": "test"})
    ]
    r.handle("channelOpts", {"allow_voteskip": False})
    r.handle("setPlaylistLocked", False)
    assert r.options == {"allow_voteskip": False} and not r.locked


# End to end.


async def settled(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    async with asyncio.timeout(timeout):
        while not (result := check()):
            await asyncio.sleep(0.01)
    return result


async def state(bus: Bus, what: str = "all") -> dict[str, Any]:
    reply = await bus.request("cytube.state", {"what": what}, timeout=10)
    assert reply["success"], reply
    data: dict[str, Any] = reply["data"]
    return data


async def test_state_after_join_and_the_bots_late_rank(
    make_fake: MakeFake, make_connector: MakeConnector, bus: Bus
) -> None:
    server = await make_fake(ranks={"owner": 5, "rosey": 2})
    await server.join("alice", 1, afk=True)
    first = await server.add("yt", "abc", title="First &amp; best", seconds=100, by="alice")
    await server.add("tw", "chan", title="Twitch.tv - chan", seconds=0, by="bob")
    await server.tick(13)
    await server.join("moddy", 2)
    await server.open_poll("moddy", "Tea?", ["yes", "no"])
    watch = await Watch(bus, "cytube.user.rank").start()
    connector = await make_connector(server)
    # Logged in at rank 1; the channel rank follows (rank 1, login, ..., setUserRank 2).
    [rank] = await watch.until(lambda: watch.of("cytube.user.rank"))
    assert rank == {"user": "rosey", "rank": 2, "channel": "test"}
    assert connector.chan.rank == 2
    data = await state(bus)
    assert data["bot"] == {"name": "rosey", "rank": 2}
    assert [(i["uid"], i["title"], i["queueby"]) for i in data["playlist"]] == [
        (first.uid, "First & best", "alice"),
        (first.uid + 1, "Twitch.tv - chan", "bob"),
    ]
    media = data["media"]
    assert (media["uid"], media["id"], media["queueby"], media["paused"]) == (
        first.uid,
        "abc",
        "alice",
        False,
    )
    assert 9 <= media["current_time"] <= 15  # 3 s lead-in, then 10 s played, plus the test's time
    assert {"name": "alice", "rank": 1, "afk": True} in data["users"]
    assert data["poll"] == {
        "title": "Tea?",
        "options": ["yes", "no"],
        "counts": [0, 0],
        "initiator": "moddy",
    }
    assert data["permissions"]["playlistadd"] == server.permissions["playlistadd"]
    assert data["connected"] is True
    assert set(await state(bus, "users")) == {"users"}


async def test_inbound_events_published(
    make_fake: MakeFake, make_connector: MakeConnector, bus: Bus
) -> None:
    server = await make_fake(ranks={"owner": 5, "rosey": 2})
    watch = await Watch(
        bus,
        "cytube.media.queue",
        "cytube.media.delete",
        "cytube.media.move",
        "cytube.media.change",
        "cytube.user.afk",
        "cytube.user.rank",
        "cytube.poll.open",
        "cytube.poll.update",
        "cytube.poll.close",
        "cytube.voteskip",
    ).start()
    connector = await make_connector(server)
    await settled(lambda: connector.chan.rank == 2)
    await server.join("alice", 2)
    await server.join("bob", 0)
    await server.act("alice", "queue", {"id": "one", "type": "yt", "pos": "end"})
    await server.act("alice", "queue", {"id": "two", "type": "yt", "pos": "end"})
    uids = [i["uid"] for i in server.playlist()]
    await server.act("alice", "moveMedia", {"from": uids[1], "after": "prepend"})
    await server.act("alice", "delete", uids[0])
    await server.set_afk("bob", True)
    await server.set_rank("bob", 1.5)
    await server.open_poll("alice", "<b>Tea</b> &", ["a", "b"])
    await server.vote("bob", 0)
    await server.act("alice", "closePoll")
    await server.voteskip("bob")
    await watch.until(
        lambda: (
            watch.of("cytube.poll.close")
            and [v for v in watch.of("cytube.voteskip") if v["count"] == 1]
        )
    )
    for subject, payload in watch.seen:
        contract.check(subject, payload)
        assert payload["channel"] == "test", (subject, payload)
    [first, _] = watch.of("cytube.media.queue")
    assert (first["item"]["id"], first["item"]["queueby"], first["after"]) == (
        "one",
        "alice",
        "prepend",
    )
    assert watch.of("cytube.media.move") == [
        {"from": uids[1], "after": "prepend", "channel": "test"}
    ]
    assert watch.of("cytube.media.delete") == [{"uid": uids[0], "channel": "test"}]
    assert watch.of("cytube.media.change")[0]["id"] == "one"
    # Voting to skip brings bob back from AFK (CyTube's handleVoteskip), so a second may follow.
    assert watch.of("cytube.user.afk")[0] == {"user": "bob", "afk": True, "channel": "test"}
    assert [p["afk"] for p in watch.of("cytube.user.afk")] in ([True], [True, False])
    assert {"user": "bob", "rank": 1.5, "channel": "test"} in watch.of("cytube.user.rank")
    assert watch.of("cytube.poll.open")[0]["title"] == "<b>Tea</b> &"
    assert watch.of("cytube.poll.update")[-1]["counts"] == [1, 0]
    assert watch.of("cytube.voteskip")[-1]["need"] >= 1
    assert [i["uid"] for i in (await state(bus, "playlist"))["playlist"]] == [uids[1]]
