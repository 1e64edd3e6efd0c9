"""ctx.channel end to end: a real nats-server, the runtime running a function written here (as an
async handler and as a sync one, which gets the blocking forms), the real CyTube connector and the
fake CyTube server (tests/fake_cytube.py). Every method is checked against the fake's state."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runtime.cytube.connector import Connector
from runtime.wire.bus import Bus
from tests.conftest import MakeRuntime, wait_for
from tests.cytube_helpers import MakeConnector, MakeFake, Watch, make_connector, make_fake
from tests.fake_cytube import FakeCytube

__all__ = ["make_connector", "make_fake"]  # fixtures

# Short waits for the server's confirmation: CyTube refuses most actions in silence.
FAST = {"action_timeout": 0.5, "add_timeout": 1.0}

A, B, C, D = "AAAAAAAAAAA", "BBBBBBBBBBB", "CCCCCCCCCCC", "DDDDDDDDDDD"


def yt(video: str) -> str:
    return f"https://youtu.be/{video}"


# One command per ctx.channel method; the handler answers "ok <json of what it returned>" or the
# ChannelError it caught. Written async; the sync form drops `async`/`await` (blocking forms).
ASYNC_CODE = """\
import json

from runtime.errors import ChannelError


def _after(text):
    return text if text == "prepend" else int(text)


CALLS = {
    "add": lambda c, a: c.add(a[0], next="next" in a[1:], temp="keep" not in a[1:]),
    "remove": lambda c, a: c.remove(int(a[0])),
    "move": lambda c, a: c.move(int(a[0]), _after(a[1])),
    "jump": lambda c, a: c.jump(int(a[0])),
    "skip": lambda c, a: c.skip(),
    "voteskip": lambda c, a: c.voteskip(),
    "shuffle": lambda c, a: c.shuffle(),
    "clear": lambda c, a: c.clear(),
    "settemp": lambda c, a: c.set_temp(int(a[0]), a[1] == "on"),
    "openpoll": lambda c, a: c.open_poll(a[0], a[1:]),
    "closepoll": lambda c, a: c.close_poll(),
    "emote": lambda c, a: c.emote(" ".join(a)),
    "mod": lambda c, a: c.moderate(
        a[0], a[1] if len(a) > 1 else None, " ".join(a[2:]) or None
    ),
    "playlist": lambda c, a: c.playlist(),
    "media": lambda c, a: c.media(),
    "users": lambda c, a: c.users(),
    "poll": lambda c, a: c.poll(),
    "state": lambda c, a: c.state(*a),
}


async def act(event, ctx):
    try:
        result = await CALLS[event.command](ctx.channel, list(event.args))
    except ChannelError as e:
        return f"{type(e).__name__} {e.code}: {e}"
    return "ok " + json.dumps(result, sort_keys=True)
"""
SYNC_CODE = ASYNC_CODE.replace("async def", "def").replace("await ", "")
COMMANDS = [
    "add",
    "remove",
    "move",
    "jump",
    "skip",
    "voteskip",
    "shuffle",
    "clear",
    "settemp",
    "openpoll",
    "closepoll",
    "emote",
    "mod",
    "playlist",
    "media",
    "users",
    "poll",
    "state",
]


def manifest(actions: str | None) -> dict[str, str]:
    declared = f"actions: [{actions}]\n" if actions else ""
    commands = "".join(f"  {word}: {{}}\n" for word in COMMANDS)
    return {
        "chan": 'name: chan\nversion: "1.0.0"\ndescription: Every ctx.channel method.\n'
        f"handler: chan:act\n{declared}quarantine: {{failures: 0}}\ncommands:\n{commands}"
    }


@pytest.fixture(params=["async", "sync"])
def code(request: pytest.FixtureRequest) -> dict[str, str]:
    return {"chan.py": ASYNC_CODE if request.param == "async" else SYNC_CODE}


class Room:
    """The fake server, the bot's connector and a way to run the function's commands."""

    def __init__(self, fake: FakeCytube, connector: Connector, bus: Bus) -> None:
        self.fake, self.connector, self.bus = fake, connector, bus

    async def run(self, word: str, *args: str, user: str = "alice", rank: int = 0) -> str:
        payload = {"command": word, "args": list(args), "user": user, "rank": rank}
        reply = await self.bus.request(
            "plugin.chan.command", {**payload, "channel": self.fake.channel}, timeout=10
        )
        assert reply["success"], reply
        [line] = reply["data"]["replies"]
        return str(line)

    async def ok(self, word: str, *args: str) -> Any:
        line = await self.run(word, *args)
        assert line.startswith("ok "), line
        return json.loads(line[3:])

    def ids(self) -> list[str]:
        return [item["media"]["id"] for item in self.fake.playlist()]

    async def seen(self, *names: str) -> None:
        await wait_for(lambda: all(self.connector.chan.present(n) for n in names))


async def room(
    make_fake: MakeFake,
    make_connector: MakeConnector,
    make_runtime: MakeRuntime,
    bus: Bus,
    code: dict[str, str],
    actions: str | None = "playlist, poll, moderate",
) -> Room:
    await make_runtime(manifest(actions), code)
    fake = await make_fake(ranks={"owner": 5, "rosey": 2})
    connector = await make_connector(fake, **FAST)
    await wait_for(lambda: connector.chan.rank == 2 and "rosey" in fake.bots())
    return Room(fake, connector, bus)


async def test_playlist_actions_change_the_servers_playlist(
    make_fake: MakeFake,
    make_connector: MakeConnector,
    make_runtime: MakeRuntime,
    bus: Bus,
    code: dict[str, str],
) -> None:
    r = await room(make_fake, make_connector, make_runtime, bus, code)
    fake = r.fake
    a = await r.ok("add", yt(A))
    assert {k: a[k] for k in ("type", "id", "title", "queueby", "temp")} == {
        "type": "yt",
        "id": A,
        "title": f"yt:{A}",
        "queueby": "rosey",
        "temp": True,
    }
    assert fake.current is not None and fake.current.uid == a["uid"]
    b = await r.ok("add", yt(B), "keep")
    c = await r.ok("add", yt(C), "next")
    assert (b["temp"], c["temp"]) == (False, True)
    assert r.ids() == [A, C, B]
    assert [i["uid"] for i in await r.ok("playlist")] == [a["uid"], c["uid"], b["uid"]]
    media = await r.ok("media")
    assert (media["uid"], media["title"], media["duration"]) == (a["uid"], f"yt:{A}", 120)

    await r.ok("move", str(b["uid"]), "prepend")
    assert r.ids() == [B, A, C]
    await r.ok("move", str(b["uid"]), str(c["uid"]))
    assert r.ids() == [A, C, B]
    await r.ok("settemp", str(c["uid"]), "off")
    kept = fake.find(c["uid"])
    assert kept is not None and kept.temp is False
    await r.ok("jump", str(c["uid"]))
    # CyTube drops the temporary item that was playing when it jumps away from it.
    assert fake.current.uid == c["uid"] and r.ids() == [C, B]
    await r.ok("skip")
    assert fake.current.uid == b["uid"] and r.ids() == [C, B]  # C was kept (not temp)
    await r.ok("remove", str(c["uid"]))
    assert r.ids() == [B]
    d = await r.ok("add", yt(D))
    before = {i["uid"] for i in fake.playlist()}
    await r.ok("shuffle")
    assert sorted(r.ids()) == [B, D] and not before & {i["uid"] for i in fake.playlist()}
    assert d["uid"] in before
    await r.ok("clear")
    assert fake.playlist() == [] and fake.current is None
    assert await r.ok("playlist") == [] and await r.ok("media") is None


async def test_voteskip_poll_emote_and_reads(
    make_fake: MakeFake,
    make_connector: MakeConnector,
    make_runtime: MakeRuntime,
    bus: Bus,
    code: dict[str, str],
) -> None:
    r = await room(make_fake, make_connector, make_runtime, bus, code)
    fake = r.fake
    await fake.join("alice", 0)
    await fake.join("bob", 1)
    await fake.join("carol", 0)
    first = await fake.add("yt", A, title="First", seconds=200, by="alice")
    await fake.add("yt", B, title="Second", seconds=100, by="bob")
    await r.seen("alice", "bob", "carol")
    await wait_for(lambda: len(r.connector.chan.room.items) == 2)
    users = {u["name"]: (u["rank"], u["afk"]) for u in await r.ok("users")}
    assert users == {
        "rosey": (2, False),
        "alice": (0, False),
        "bob": (1, False),
        "carol": (0, False),
    }
    media = await r.ok("media")
    assert (media["uid"], media["title"], media["queueby"]) == (first.uid, "First", "alice")
    # Not started yet (CyTube's lead-in, a negative time): paused, at 0.
    assert fake.paused and fake.current_time < 0
    assert (media["paused"], media["current_time"], media["duration"]) == (True, 0.0, 200)

    # 4 eligible voters at ratio 0.5: the bot's vote alone does not skip.
    vote = await r.ok("voteskip")
    assert vote["count"] == 1 and fake.skip_votes is not None and len(fake.skip_votes) == 1
    assert fake.current is not None and fake.current.uid == first.uid

    watch = await Watch(bus, "cytube.poll.update").start()
    await r.ok("openpoll", "Best?", "Alien", "Heat")
    assert fake.poll is not None
    assert (fake.poll.title, fake.poll.options) == ("Best?", ["Alien", "Heat"])
    await fake.vote("alice", 1)
    await watch.until(lambda: watch.of("cytube.poll.update"))
    poll = await r.ok("poll")
    assert poll == {
        "title": "Best?",
        "options": ["Alien", "Heat"],
        "counts": [0, 1],
        "initiator": "rosey",
    }
    await r.ok("closepoll")
    assert fake.poll is None
    assert await r.ok("poll") is None

    await r.ok("emote", "waves", "hello")
    [line] = [m for m in fake.chat if m["username"] == "rosey"]
    assert line["msg"] == "waves hello" and line["meta"].get("action")

    state = await r.ok("state")
    assert state["bot"] == {"name": "rosey", "rank": 2}
    assert state["permissions"]["playlistdelete"] == 2
    assert state["voteskip"]["count"] == 1
    assert [i["uid"] for i in state["playlist"]] == [i["uid"] for i in fake.playlist()]
    assert set(state) >= {"playlist", "media", "users", "poll"}


async def test_moderation_from_a_chat_command(
    make_fake: MakeFake,
    make_connector: MakeConnector,
    make_runtime: MakeRuntime,
    bus: Bus,
    code: dict[str, str],
) -> None:
    r = await room(make_fake, make_connector, make_runtime, bus, code)
    fake = r.fake
    await fake.join("alice", 0)
    await fake.join("bob", 0)
    await fake.join("moddy", 3)
    await r.seen("alice", "bob", "moddy")
    # Through chat: moddy's line reaches the function by the connector, as in the channel.
    await fake.say("moddy", "!mod kick alice spamming links")
    await fake.until(lambda: fake.kicked)
    assert fake.kicked == [("alice", "spamming links")]
    [reply] = await fake.until(lambda: fake.said("rosey"))
    assert reply == 'ok {"action": "kick", "user": "alice"}'
    await r.ok("mod", "mute", "bob")
    assert "bob" in fake.muted
    await r.ok("mod", "unmute", "bob")
    assert "bob" not in fake.muted
    await r.ok("mod", "clear")
    assert [e["clearedBy"] for e in fake.emitted("clearchat")] == ["rosey"]


async def test_refusals_reach_the_handler_as_channel_errors(
    make_fake: MakeFake,
    make_connector: MakeConnector,
    make_runtime: MakeRuntime,
    bus: Bus,
    code: dict[str, str],
) -> None:
    r = await room(make_fake, make_connector, make_runtime, bus, code)
    fake = r.fake
    await fake.join("moddy", 2)
    await r.seen("moddy")
    a = await r.ok("add", yt(A))
    await r.ok("add", yt(B))
    # The server's words, for a refusal it gives in words.
    dupe = await r.run("add", yt(A))
    assert dupe == "ChannelError INVALID_INPUT: This item is already on the playlist"
    # Below the channel's permission: refused up front, nothing sent.
    await fake.set_permissions(playlistshuffle=3)
    await wait_for(lambda: r.connector.chan.permissions.get("playlistshuffle") == 3)
    uids = [i["uid"] for i in fake.playlist()]
    denied = await r.run("shuffle")
    assert denied.startswith("ChannelError PERMISSION_DENIED: ") and "playlistshuffle" in denied
    assert [i["uid"] for i in fake.playlist()] == uids
    peer = await r.run("mod", "kick", "moddy")
    assert peer.startswith("ChannelError PERMISSION_DENIED: ") and "moddy" in peer
    assert fake.kicked == []
    # A silent refusal: the server now wants rank 3 to delete and has not said so.
    fake.permissions["playlistdelete"] = 3
    silent = await r.run("remove", str(a["uid"]))
    assert silent.startswith("ChannelError TIMEOUT: ") and "may lack the rank" in silent
    assert fake.find(a["uid"]) is not None


async def test_undeclared_actions_are_denied_before_reaching_the_server(
    make_fake: MakeFake,
    make_connector: MakeConnector,
    make_runtime: MakeRuntime,
    bus: Bus,
    code: dict[str, str],
) -> None:
    r = await room(make_fake, make_connector, make_runtime, bus, code, actions=None)
    fake = r.fake
    await fake.join("alice", 0)
    item = await fake.add("yt", A)
    await r.seen("alice")
    await wait_for(lambda: bool(r.connector.chan.room.items))
    refused = [
        await r.run("add", yt(B)),
        await r.run("remove", str(item.uid)),
        await r.run("voteskip"),
        await r.run("openpoll", "Best?", "a", "b"),
        await r.run("mod", "kick", "alice"),
    ]
    assert [line.split(":")[0] for line in refused] == ["ChannelDenied PERMISSION_DENIED"] * 5
    assert "actions: [playlist]" in refused[0] and "actions: [moderate]" in refused[4]
    # Emotes and reads need no declaration.
    await r.ok("emote", "shrugs")
    await fake.until(lambda: fake.said("rosey"))
    assert r.ids() == [A] and fake.poll is None and fake.kicked == []
    assert fake.skip_votes is None
    assert [i["uid"] for i in await r.ok("playlist")] == [item.uid]
