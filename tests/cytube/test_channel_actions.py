"""Channel actions end to end: NATS request → connector → fake CyTube → confirmation → reply."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from runtime.cytube.connector import Connector
from runtime.errors import BusError
from runtime.wire.bus import Bus
from tests.cytube_helpers import MakeConnector, MakeFake, Watch, make_connector, make_fake
from tests.fake_cytube import FakeCytube

__all__ = ["make_connector", "make_fake"]  # fixtures

FAST = {"action_timeout": 1.0, "add_timeout": 2.0}


async def ask(bus: Bus, subject: str, payload: dict[str, Any] | None = None) -> Any:
    return await bus.request(subject, payload or {}, timeout=10)


async def ask_raw(bus: Bus, subject: str, payload: dict[str, Any]) -> Any:
    """As `ask`, without the client's own contract check (as a careless client would)."""
    msg = await bus.nc.request(subject, json.dumps(payload).encode(), timeout=10)
    return json.loads(msg.data)


async def settled(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Waits for the connector's state to satisfy `check` (it has no event to wait on)."""
    async with asyncio.timeout(timeout):
        while not (result := check()):
            await asyncio.sleep(0.01)
    return result


def spy(connector: Connector) -> list[str]:
    """Records every socket event and chat line the connector sends to CyTube."""
    sent: list[str] = []
    emit_event, emit = connector.emit_event, connector.emit

    async def on_event(event: str, data: Any = None, ack: Any = None) -> None:
        sent.append(event)
        await emit_event(event, data, ack)

    async def on_line(item: Any) -> None:
        sent.append(item.text)
        await emit(item)

    connector.emit_event = on_event  # type: ignore[method-assign]
    connector.emit = on_line  # type: ignore[method-assign]
    return sent


async def bot(
    make_fake: MakeFake, make_connector: MakeConnector, rank: float = 2, **options: Any
) -> tuple[FakeCytube, Connector]:
    server = await make_fake(ranks={"owner": 5, "rosey": rank}, **options)
    connector = await make_connector(server, **FAST)
    await settled(lambda: connector.chan.rank == rank)
    return server, connector


async def test_add_by_url_confirmed_by_the_queue_event(
    make_fake: MakeFake, make_connector: MakeConnector, bus: Bus
) -> None:
    server, _ = await bot(make_fake, make_connector)
    watch = await Watch(bus, "cytube.media.queue").start()
    reply = await ask(bus, "cytube.send.playlist.add", {"url": "https://www.twitch.tv/somechan"})
    assert reply["success"], reply
    item = reply["data"]
    assert (item["type"], item["id"], item["title"]) == ("tw", "somechan", "Twitch.tv - somechan")
    assert (item["queueby"], item["temp"]) == ("rosey", True)
    assert [i["uid"] for i in server.playlist()] == [item["uid"]]
    [queued] = await watch.until(lambda: watch.of("cytube.media.queue"))
    assert queued == {"item": item, "after": "prepend", "channel": "test"}


async def test_add_by_type_and_id_next_and_duplicate(
    make_fake: MakeFake, make_connector: MakeConnector, bus: Bus
) -> None:
    server, _ = await bot(make_fake, make_connector)
    first = await ask(bus, "cytube.send.playlist.add", {"type": "yt", "id": "abc"})
    assert first["success"] and first["data"]["title"] == "yt:abc"
    again = await ask(bus, "cytube.send.playlist.add", {"type": "yt", "id": "abc"})
    assert again == {
        "success": False,
        "error": "This item is already on the playlist",
        "error_code": "INVALID_INPUT",
    }
    nxt = await ask(
        bus, "cytube.send.playlist.add", {"type": "yt", "id": "def", "position": "next"}
    )
    assert nxt["success"], nxt
    assert [(i["media"]["id"]) for i in server.playlist()] == ["abc", "def"]
    # `next` for an item already queued moves it: a new `queue`, then a `delete` of the old uid.
    last = await ask(bus, "cytube.send.playlist.add", {"type": "yt", "id": "ghi"})
    moved = await ask(
        bus, "cytube.send.playlist.add", {"type": "yt", "id": "ghi", "position": "next"}
    )
    assert moved["success"] and moved["data"]["uid"] != last["data"]["uid"], moved
    assert [i["media"]["id"] for i in server.playlist()] == ["abc", "ghi", "def"]


async def test_add_refusals(make_fake: MakeFake, make_connector: MakeConnector, bus: Bus) -> None:
    server, connector = await bot(make_fake, make_connector, rank=1)
    sent = spy(connector)
    denied = await ask(bus, "cytube.send.playlist.add", {"type": "yt", "id": "abc"})
    assert denied["error_code"] == "PERMISSION_DENIED"
    assert "'playlistadd'" in denied["error"] and "1.5" in denied["error"]
    assert "rank 1 (registered)" in denied["error"]
    bad = await ask(bus, "cytube.send.playlist.add", {"url": "ftp://example.com/x"})
    assert bad["error_code"] == "INVALID_INPUT" and "ftp://example.com/x" in bad["error"]
    assert sent == []
    # Allowed to add, but not live media: CyTube answers queueFail in words.
    await server.set_permissions(playlistadd=1, playlistaddlive=3)
    await settled(lambda: connector.chan.permissions.get("playlistadd") == 1)
    denied = await ask(bus, "cytube.send.playlist.add", {"type": "tw", "id": "x"})
    assert denied["error_code"] == "PERMISSION_DENIED" and "playlistaddlive" in denied["error"]
    server.media_info[("yt", "gone")] = "Video not found"
    failed = await ask(bus, "cytube.send.playlist.add", {"type": "yt", "id": "gone"})
    assert failed["error_code"] == "INVALID_INPUT" and failed["error"] == "Video not found"
    assert sent == ["queue"]


async def test_silent_refusal_times_out_saying_so(
    make_fake: MakeFake, make_connector: MakeConnector, bus: Bus
) -> None:
    server, connector = await bot(make_fake, make_connector, rank=1.5)
    item = await server.add("yt", "abc")
    await settled(lambda: connector.chan.room.find(item.uid))
    # The bot's view says it may delete; the server (playlistdelete 2) refuses in silence.
    connector.chan.permissions["playlistdelete"] = 1
    sent = spy(connector)
    reply = await ask(bus, "cytube.send.playlist.remove", {"uid": item.uid})
    assert reply["error_code"] == "TIMEOUT", reply
    assert "may lack the rank" in reply["error"]
    assert sent == ["delete"] and server.find(item.uid) is not None


async def test_queue_throttle_kept_on_the_client(
    make_fake: MakeFake, make_connector: MakeConnector, bus: Bus
) -> None:
    server, connector = await bot(make_fake, make_connector, rank=1.5)
    connector.settings.add_timeout = 8.0
    started = time.monotonic()
    replies = await asyncio.gather(
        *(ask(bus, "cytube.send.playlist.add", {"type": "yt", "id": f"v{n}"}) for n in range(5))
    )
    assert all(r["success"] for r in replies), replies
    assert time.monotonic() - started >= 1.9  # 3 at once, then 1 per second
    assert not [f for f in server.emitted("queueFail") if "too quickly" in f["msg"]]
    assert [i["media"]["id"] for i in server.playlist()] == [f"v{n}" for n in range(5)]


async def test_playlist_control(
    make_fake: MakeFake, make_connector: MakeConnector, bus: Bus
) -> None:
    server, connector = await bot(make_fake, make_connector)
    a, b, c = [await server.add("yt", x, by="alice") for x in ("a", "b", "c")]
    await settled(lambda: len(connector.chan.room.items) == 3)
    watch = await Watch(
        bus, "cytube.media.move", "cytube.media.delete", "cytube.media.change"
    ).start()

    moved = await ask(bus, "cytube.send.playlist.move", {"uid": c.uid, "after": "prepend"})
    assert moved == {"success": True, "data": {"uid": c.uid, "after": "prepend"}}
    assert [i["uid"] for i in server.playlist()] == [c.uid, a.uid, b.uid]

    temp = await ask(bus, "cytube.send.playlist.settemp", {"uid": b.uid, "temp": True})
    assert temp["data"] == {"uid": b.uid, "temp": True}
    assert getattr(server.find(b.uid), "temp", None) is True

    jumped = await ask(bus, "cytube.send.playlist.jump", {"uid": b.uid})
    assert jumped["success"] and (jumped["data"]["uid"], jumped["data"]["id"]) == (b.uid, "b")
    assert getattr(server.current, "uid", None) == b.uid

    skipped = await ask(bus, "cytube.send.playlist.next")
    assert skipped["success"] and skipped["data"]["id"] != "b"

    removed = await ask(bus, "cytube.send.playlist.remove", {"uid": a.uid})
    assert removed == {"success": True, "data": {"uid": a.uid}}
    assert server.find(a.uid) is None
    unknown = await ask(bus, "cytube.send.playlist.remove", {"uid": 999})
    assert unknown["error_code"] == "INVALID_INPUT"
    as_text = await ask_raw(bus, "cytube.send.playlist.remove", {"uid": "3"})
    assert as_text["error_code"] == "INVALID_INPUT"  # the contract: CyTube ignores string uids

    await watch.until(lambda: watch.of("cytube.media.delete") and watch.of("cytube.media.move"))
    assert watch.of("cytube.media.move")[0] == {
        "from": c.uid,
        "after": "prepend",
        "channel": "test",
    }
    assert {"uid": a.uid, "channel": "test"} in watch.of("cytube.media.delete")
    changes = watch.of("cytube.media.change")
    assert changes and changes[0]["uid"] == b.uid and changes[0]["queued_by"] == "alice"


async def test_shuffle_changes_every_uid_and_clear(
    make_fake: MakeFake, make_connector: MakeConnector, bus: Bus
) -> None:
    server, connector = await bot(make_fake, make_connector)
    for x in "abcd":
        await server.add("yt", x)
    await settled(lambda: len(connector.chan.room.items) == 4)
    before = {i["uid"] for i in connector.chan.room.items}
    shuffled = await ask(bus, "cytube.send.playlist.shuffle")
    assert shuffled == {"success": True, "data": {"count": 4}}
    state = (await ask(bus, "cytube.state", {"what": "playlist"}))["data"]["playlist"]
    assert {i["uid"] for i in state} == {i["uid"] for i in server.playlist()}
    assert not before & {i["uid"] for i in state}
    stale = await ask(bus, "cytube.send.playlist.jump", {"uid": min(before)})
    assert stale["error_code"] == "INVALID_INPUT" and "shuffle" in stale["error"]
    cleared = await ask(bus, "cytube.send.playlist.clear")
    assert cleared == {"success": True, "data": {"count": 0}} and server.playlist() == []


async def test_playlist_control_needs_rank(
    make_fake: MakeFake, make_connector: MakeConnector, bus: Bus
) -> None:
    server, connector = await bot(make_fake, make_connector, rank=1.5)
    item = await server.add("yt", "a")
    await settled(lambda: connector.chan.room.find(item.uid))
    sent = spy(connector)
    for subject, payload, node in [
        ("cytube.send.playlist.remove", {"uid": item.uid}, "playlistdelete"),
        ("cytube.send.playlist.shuffle", {}, "playlistshuffle"),
        ("cytube.send.playlist.clear", {}, "playlistclear"),
        ("cytube.send.playlist.settemp", {"uid": item.uid, "temp": False}, "settemp"),
    ]:
        reply = await ask(bus, subject, payload)
        assert reply["error_code"] == "PERMISSION_DENIED", (subject, reply)
        assert f"'{node}'" in reply["error"] and "1.5 (leader)" in reply["error"]
    assert sent == []


async def test_polls(make_fake: MakeFake, make_connector: MakeConnector, bus: Bus) -> None:
    server, _ = await bot(make_fake, make_connector)
    await server.join("alice", 0)
    watch = await Watch(bus, "cytube.poll.open", "cytube.poll.update", "cytube.poll.close").start()
    opened = await ask(
        bus, "cytube.send.poll.open", {"title": "Tea & <cake>?", "options": ["yes", "no"]}
    )
    assert opened["success"], opened
    assert opened["data"] == {
        "title": "Tea & <cake>?",
        "options": ["yes", "no"],
        "counts": [0, 0],
        "initiator": "rosey",
    }
    await server.vote("alice", 1)
    await watch.until(lambda: watch.of("cytube.poll.update"))
    closed = await ask(bus, "cytube.send.poll.close")
    assert closed["success"] and closed["data"]["counts"] == [0, 1]
    assert server.poll is None
    await watch.until(lambda: watch.of("cytube.poll.close"))
    assert [s for s, _ in watch.seen] == [
        "cytube.poll.open",
        "cytube.poll.update",
        "cytube.poll.close",
    ]
    assert watch.of("cytube.poll.open")[0]["title"] == "Tea & <cake>?"
    none_open = await ask(bus, "cytube.send.poll.close")
    assert none_open["error_code"] == "INVALID_INPUT"


async def test_poll_needs_pollctl(
    make_fake: MakeFake, make_connector: MakeConnector, bus: Bus
) -> None:
    server, connector = await bot(make_fake, make_connector, rank=1)
    sent = spy(connector)
    reply = await ask(bus, "cytube.send.poll.open", {"title": "t", "options": ["a", "b"]})
    assert reply["error_code"] == "PERMISSION_DENIED" and "'pollctl'" in reply["error"]
    assert sent == [] and server.poll is None


async def test_voteskip(make_fake: MakeFake, make_connector: MakeConnector, bus: Bus) -> None:
    server, connector = await bot(make_fake, make_connector)
    for name in ("alice", "bob", "carol"):
        await server.join(name, 0)
    await server.add("yt", "a")
    await server.add("yt", "b")
    await settled(lambda: len(connector.chan.room.items) == 2)
    watch = await Watch(bus, "cytube.voteskip").start()
    reply = await ask(bus, "cytube.send.voteskip")
    assert reply["success"] and reply["data"]["count"] == 1, reply
    [count] = await watch.until(lambda: watch.of("cytube.voteskip"))
    assert count["count"] == 1 and count["channel"] == "test"


async def test_voteskip_unconfirmable_below_viewvoteskip(
    make_fake: MakeFake, make_connector: MakeConnector, bus: Bus
) -> None:
    server, connector = await bot(make_fake, make_connector, rank=1)
    await server.add("yt", "a")
    await settled(lambda: connector.chan.room.items)
    sent = spy(connector)
    reply = await ask(bus, "cytube.send.voteskip")
    assert reply == {"success": True, "data": {"confirmed": False}}
    assert sent == ["voteskip"]
    await server.set_options(allow_voteskip=False)
    await settled(lambda: connector.chan.room.options.get("allow_voteskip") is False)
    off = await ask(bus, "cytube.send.voteskip")
    assert off["error_code"] == "PERMISSION_DENIED" and sent == ["voteskip"]


async def test_moderation(make_fake: MakeFake, make_connector: MakeConnector, bus: Bus) -> None:
    server, connector = await bot(make_fake, make_connector)
    for name, rank in (("alice", 0), ("bob", 1), ("moddy", 2)):
        await server.join(name, rank)
    await settled(lambda: connector.chan.present("moddy"))
    sent = spy(connector)
    kicked = await ask(
        bus, "cytube.send.mod", {"action": "kick", "user": "alice", "reason": "spam\n/ban bob"}
    )
    assert kicked == {"success": True, "data": {"action": "kick", "user": "alice"}}
    assert server.kicked == [("alice", "spam /ban bob")]
    muted = await ask(bus, "cytube.send.mod", {"action": "mute", "user": "bob"})
    assert muted["success"] and "bob" in server.muted
    unmuted = await ask(bus, "cytube.send.mod", {"action": "unmute", "user": "bob"})
    assert unmuted["success"] and "bob" not in server.muted
    cleared = await ask(bus, "cytube.send.mod", {"action": "clear"})
    assert cleared["success"]
    assert sent == ["/kick alice spam /ban bob", "/mute bob", "/unmute bob", "/clear"]
    # Refused before sending: a peer, an absent user, a name that is not one.
    peer = await ask(bus, "cytube.send.mod", {"action": "kick", "user": "moddy"})
    assert peer["error_code"] == "PERMISSION_DENIED" and "moddy" in peer["error"]
    absent = await ask(bus, "cytube.send.mod", {"action": "mute", "user": "nobody"})
    assert absent["error_code"] == "INVALID_INPUT"
    injected = await ask_raw(bus, "cytube.send.mod", {"action": "kick", "user": "bob /clear"})
    assert injected["error_code"] == "INVALID_INPUT"
    assert len(sent) == 4


async def test_moderation_needs_rank(
    make_fake: MakeFake, make_connector: MakeConnector, bus: Bus
) -> None:
    server, connector = await bot(make_fake, make_connector, rank=1.5)
    await server.join("alice", 0)
    await settled(lambda: connector.chan.present("alice"))
    sent = spy(connector)
    ban = await ask(bus, "cytube.send.mod", {"action": "ban", "user": "alice"})
    assert ban["error_code"] == "PERMISSION_DENIED" and "'ban'" in ban["error"]
    clear = await ask(bus, "cytube.send.mod", {"action": "clear"})
    assert clear["error_code"] == "PERMISSION_DENIED" and "'chatclear'" in clear["error"]
    assert sent == []
    kick = await ask(bus, "cytube.send.mod", {"action": "kick", "user": "alice"})
    assert kick["success"], kick  # kick is 1.5: the leader rank may
    assert server.kicked == [("alice", "")]


async def test_emote(make_fake: MakeFake, make_connector: MakeConnector, bus: Bus) -> None:
    server, _ = await bot(make_fake, make_connector, rank=1)
    reply = await ask(bus, "cytube.send.emote", {"message": "waves /kick alice"})
    assert reply == {"success": True, "data": None}
    [line] = [m for m in server.chat if m["username"] == "rosey"]
    assert line["msg"] == "waves /kick alice" and line["meta"].get("action")


async def test_plain_publish_is_acted_on_and_other_channels_left_alone(
    make_fake: MakeFake, make_connector: MakeConnector, bus: Bus
) -> None:
    server, _ = await bot(make_fake, make_connector)
    await bus.publish("cytube.send.playlist.add", {"type": "yt", "id": "x", "channel": "other"})
    with pytest.raises(BusError):
        await bus.request(
            "cytube.send.playlist.add", {"type": "yt", "id": "y", "channel": "other"}, timeout=0.5
        )
    await bus.publish("cytube.send.playlist.add", {"type": "yt", "id": "z", "channel": "TEST"})
    await server.until(lambda: server.playlist())
    assert [i["media"]["id"] for i in server.playlist()] == ["z"]


async def test_not_connected_is_a_nats_error(
    make_fake: MakeFake, make_connector: MakeConnector, bus: Bus
) -> None:
    server, _ = await bot(make_fake, make_connector)
    watch = await Watch(bus, "cytube.connection").start()
    await server.stop()
    await watch.until(lambda: "disconnected" in watch.states())
    reply = await ask(bus, "cytube.send.playlist.next")
    assert reply["error_code"] == "NATS_ERROR" and "not in test" in reply["error"]
    state = await ask(bus, "cytube.state", {"what": "all"})
    assert state["success"] and state["data"]["connected"] is False
