"""The offline channel: `rosey run` with console chat and `rosey invoke` answer ctx.channel from a
local model and show what the bot did."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from runtime.constants import (
    CHANNEL_STATE,
    PLAYLIST_ADD,
    PLAYLIST_MOVE,
    PLAYLIST_NEXT,
    PLAYLIST_REMOVE,
    PLAYLIST_SHUFFLE,
    POLL_CLOSE_SEND,
    POLL_OPEN_SEND,
    SEND_MOD,
)
from runtime.host.localchannel import LocalChannel
from runtime.wire.bus import Bus
from tests.clitools import rosey

YT = "https://youtu.be/dQw4w9WgXcQ"
MANIFEST = """\
name: tryout
version: "1.0.0"
description: Acts in the channel.
handler: tryout:queue
actions: [playlist, poll, moderate]
commands:
  tq: {}
  tnp: {handler: "tryout:np"}
  tpoll: {handler: "tryout:poll"}
  tend: {handler: "tryout:end"}
  tkick: {handler: "tryout:kick"}
"""
CODE = """\
from runtime.errors import ChannelError

async def queue(event, ctx):
    try:
        item = await ctx.channel.add(event.args[0])
    except ChannelError as e:
        return f"refused ({e.code}): {e}"
    return f"queued {item['title']} as {item['uid']}"

def np(event, ctx):
    media = ctx.channel.media()
    users = [u["name"] for u in ctx.channel.users()]
    return f"playing {media['title']} ({media['type']} {media['id']}) for {', '.join(users)}"

async def poll(event, ctx):
    await ctx.channel.open_poll("Best?", ["a", "b"])

async def end(event, ctx):
    await ctx.channel.close_poll()

def kick(event, ctx):
    ctx.channel.moderate("kick", event.args[0], "spam")
"""


@pytest.fixture
def tryout(project: Path) -> Path:
    (project / "manifests" / "tryout.yaml").write_text(MANIFEST)
    (project / "functions" / "tryout.py").write_text(CODE)
    return project


def test_console_prints_what_the_bot_did(tryout: Path) -> None:
    script = (
        f"!tq {YT}\n!tnp\n!tq http://cdn.example.org/a.mp4\n!tpoll\n/vote 1\n!tend\n!tkick bob\n"
    )
    result = rosey(tryout, "run", stdin=script)
    assert result.returncode == 0, result.stderr
    # Other functions of the project may answer the channel's events too (a poll's results):
    # these lines come in this order, whatever else is said between them.
    assert in_order(result.stdout.splitlines()) == [
        f"* rosey queued {YT}",
        f"* now playing: {YT}",
        f"rosey: queued {YT} as 1",
        f"rosey: playing {YT} (yt dQw4w9WgXcQ) for console, rosey",
        "rosey: refused (INVALID_INPUT): raw files must be https:// links",
        "* poll opened: Best? (a / b)",
        "* console votes a (a: 1, b: 0)",
        "* poll closed: Best? (a: 1, b: 0)",
        "* rosey kicks bob: spam",
    ]


def in_order(lines: list[str]) -> list[str]:
    """The lines of ours: the bot's actions and the tryout function's replies."""
    ours = ("* ", "rosey: queued", "rosey: playing", "rosey: refused")
    return [line for line in lines if line.startswith(ours)]


def test_invoke_shows_the_actions(tryout: Path) -> None:
    result = rosey(tryout, "invoke", "tq", YT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"* rosey queued {YT}",
        f"* now playing: {YT}",
        f"queued {YT} as 1",
    ]
    kicked = rosey(tryout, "invoke", "tkick", "bob")
    assert kicked.stdout.splitlines() == ["* rosey kicks bob: spam"], kicked.stderr


# The model, through NATS as ctx.channel reaches it.


@pytest.fixture
async def local(bus: Bus) -> AsyncIterator[tuple[LocalChannel, list[str]]]:
    said: list[str] = []
    channel = LocalChannel(bus, "test", lambda: [{"name": "alice", "rank": 2}], said.append)
    await channel.start()
    yield channel, said
    await channel.stop()


async def ask(bus: Bus, subject: str, **payload: Any) -> Any:
    return await bus.request(subject, payload)


async def test_playlist_model(bus: Bus, local: tuple[LocalChannel, list[str]]) -> None:
    model, said = local
    first = (await ask(bus, PLAYLIST_ADD, url=YT))["data"]
    assert first == {
        "uid": 1,
        "title": YT,
        "duration": 0,
        "type": "yt",
        "id": "dQw4w9WgXcQ",
        "queueby": "rosey",
        "temp": True,
    }
    second = (await ask(bus, PLAYLIST_ADD, url="https://www.twitch.tv/somebody", temp=False))[
        "data"
    ]
    third = (await ask(bus, PLAYLIST_ADD, url="https://vimeo.com/1", position="next"))["data"]
    order = [i["uid"] for i in (await ask(bus, CHANNEL_STATE, what="playlist"))["data"]["playlist"]]
    assert order == [first["uid"], third["uid"], second["uid"]]  # next: after what is playing
    assert await ask(bus, PLAYLIST_ADD, url=YT) == {
        "success": False,
        "error": "This item is already on the playlist",
        "error_code": "INVALID_INPUT",
    }
    refused = await ask(bus, PLAYLIST_ADD, url="not a link")
    assert (refused["success"], refused["error_code"]) == (False, "INVALID_INPUT")

    # Skipping a temporary item takes it off the playlist and plays the next one.
    assert (await ask(bus, PLAYLIST_NEXT))["success"]
    media = (await ask(bus, CHANNEL_STATE, what="media"))["data"]["media"]
    assert (media["uid"], media["type"], media["paused"]) == (third["uid"], "vi", False)
    assert [i["uid"] for i in model.playlist] == [third["uid"], second["uid"]]

    assert (await ask(bus, PLAYLIST_MOVE, uid=second["uid"], after="prepend"))["success"]
    assert [i["uid"] for i in model.playlist] == [second["uid"], third["uid"]]
    assert (await ask(bus, PLAYLIST_REMOVE, uid=99))["error"] == "no playlist item has uid 99"
    assert (await ask(bus, PLAYLIST_SHUFFLE))["success"]
    assert {i["uid"] for i in model.playlist}.isdisjoint({second["uid"], third["uid"]})
    assert said[:3] == [
        f"* rosey queued {YT}",
        f"* now playing: {YT}",
        f"* rosey queued {second['title']}",
    ]
    assert f"* rosey skipped {YT}" in said


async def test_poll_users_and_moderation(bus: Bus, local: tuple[LocalChannel, list[str]]) -> None:
    model, said = local
    assert (await ask(bus, POLL_OPEN_SEND, title="Tea?", options=["yes", "no"]))["success"]
    assert model.vote("alice", 2) == "* alice votes no (yes: 0, no: 1)"
    assert model.vote("alice", 1) == "* alice votes yes (yes: 1, no: 0)"  # one vote per user
    state = (await ask(bus, CHANNEL_STATE, what="all"))["data"]
    assert state["poll"] == {
        "title": "Tea?",
        "options": ["yes", "no"],
        "counts": [1, 0],
        "initiator": "rosey",
    }
    assert state["users"] == [
        {"name": "alice", "rank": 2, "afk": False},
        {"name": "rosey", "rank": 3.0, "afk": False},
    ]
    assert (state["media"], state["playlist"], state["bot"]["name"]) == (None, [], "rosey")
    assert (await ask(bus, POLL_CLOSE_SEND))["success"]
    assert (await ask(bus, POLL_CLOSE_SEND))["error"] == "no poll is open"
    assert (await ask(bus, SEND_MOD, action="ban", user="bob", reason="spam"))["success"]
    assert (await ask(bus, SEND_MOD, action="kick"))["error_code"] == "INVALID_INPUT"
    assert said == [
        "* poll opened: Tea? (yes / no)",
        "* poll closed: Tea? (yes: 1, no: 0)",
        "* rosey bans bob: spam",
    ]


def test_invoke_gives_a_function_with_collections_a_throwaway_database(project: Path) -> None:
    # media keeps who asked for what (collection media_requests); quotes stores the quote.
    added = rosey(project, "invoke", "add", YT, "--rank", "1")
    assert added.returncode == 0, added.stderr
    assert added.stdout.splitlines()[-1].startswith(f"console added {YT}")
    quoted = rosey(project, "invoke", "addquote", "to", "be")
    assert quoted.stdout.splitlines() == ["Quote #1 added."], quoted.stderr
    # Throwaway: the next invoke starts from an empty database again.
    again = rosey(project, "invoke", "addquote", "or", "not")
    assert again.stdout.splitlines() == ["Quote #1 added."], again.stderr
    assert not list(project.glob(".rosey/redis*"))  # nothing of it is left in the project
