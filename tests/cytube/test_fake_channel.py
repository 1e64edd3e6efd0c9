"""The fake CyTube server's channel behaviour, driven by raw socket.io clients as CyTube's web
client would (/work/shared/cytube-protocol.md §2, §3, §7; calzoneman/sync 3.0 src/channel/)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.cytube_helpers import MakeClient, MakeFake, RawClient, make_client, make_fake
from tests.fake_channel_rules import DEFAULT_PERMISSIONS
from tests.fake_cytube import FakeCytube

__all__ = ["make_client", "make_fake"]  # fixtures

ACCOUNTS = {"rosey": "secret", "mod": "pw", "alice": "pw", "Owner": "hunter2"}
RANKS = {"rosey": 2, "mod": 2, "owner": 5}


@pytest.fixture
async def chan(make_fake: MakeFake) -> FakeCytube:
    return await make_fake(accounts=ACCOUNTS, ranks=RANKS)


def queue(kind: str, media_id: str, pos: str = "end", **extra: Any) -> dict[str, Any]:
    return {"id": media_id, "type": kind, "pos": pos, **extra}


def subsequence(names: list[str], wanted: list[str]) -> bool:
    it = iter(names)
    return all(any(n == w for n in it) for w in wanted)


async def test_join_sequence_permissions_and_the_bots_late_rank(
    chan: FakeCytube, make_client: MakeClient
) -> None:
    bot = await make_client(chan, "rosey", "secret")
    assert bot.of("setPermissions")[0] == DEFAULT_PERMISSIONS
    perms = bot.of("setPermissions")[0]
    assert (perms["playlistadd"], perms["playlistdelete"], perms["oplaylistadd"]) == (1.5, 2, -1)
    assert (perms["pollctl"], perms["voteskip"], perms["viewvoteskip"], perms["ban"]) == (
        1.5,
        -1,
        1.5,
        2,
    )
    assert subsequence(
        bot.names(),
        [
            "rank",
            "setPermissions",
            "playlist",
            "userlist",
            "usercount",
            "rank",
            "login",
            "addUser",
            "rank",
            "userlist",
            "setUserRank",
            "setPlaylistMeta",
            "playlist",
        ],
    )
    assert bot.of("rank") == [-1, 1, 2]
    assert bot.of("addUser")[0]["rank"] == 1
    assert bot.of("setUserRank") == [{"name": "rosey", "rank": 2}]
    await chan.set_permissions(playlistadd=3)
    await bot.until(lambda: len(bot.of("setPermissions")) == 2)
    assert bot.of("setPermissions")[-1]["playlistadd"] == 3
    await chan.join("carol", 1)  # a registered user's login always broadcasts setUserRank
    await bot.until(lambda: {"name": "carol", "rank": 1} in bot.of("setUserRank"))


async def test_queue_answers_titles_uids_and_playback(
    chan: FakeCytube, make_client: MakeClient
) -> None:
    bot = await make_client(chan, "rosey", "secret")
    await bot.emit("queue", queue("tw", "somechannel"))
    await bot.emit("queue", queue("hl", "https://example.com/live.m3u8"))
    await bot.emit("queue", queue("yt", "abc123", temp=True))
    await bot.emit("queue", queue("hl", "http://example.com/live.m3u8"))
    await bot.until(lambda: len(bot.of("queue")) == 3 and bot.of("queueFail"))
    first, second, third = bot.of("queue")
    assert first == {
        "item": {
            "media": {
                "id": "somechannel",
                "title": "Twitch.tv - somechannel",
                "seconds": 0,
                "duration": "--:--",
                "type": "tw",
                "meta": {},
            },
            "uid": 0,
            "temp": False,
            "queueby": "rosey",
        },
        "after": "prepend",
    }
    assert second["item"]["media"]["title"] == "Livestream" and second["after"] == 0
    assert third["item"]["uid"] == 2 and third["after"] == 1 and third["item"]["temp"] is True
    assert third["item"]["media"]["duration"] == "02:00"
    assert bot.of("queueFail")[0]["msg"].startswith("HLS links must start with HTTPS")
    assert bot.of("setPlaylistMeta")[-1] == {"count": 3, "rawTime": 120, "time": "02:00"}
    assert bot.of("setCurrent")[-1] == 0
    assert bot.of("changeMedia")[-1]["title"] == "Twitch.tv - somechannel"
    assert bot.of("changeMedia")[-1]["currentTime"] == 0


async def test_queue_refusals_silent_or_queue_fail(
    chan: FakeCytube, make_client: MakeClient
) -> None:
    user = await make_client(chan, "alice", "pw")  # rank 1
    await user.emit("queue", queue("yt", "abc"))
    await user.sync()
    assert not user.of("queue") and not user.of("queueFail")  # no playlistadd: silence
    await chan.set_permissions(playlistadd=1)
    await user.emit("queue", queue("yt", "abc", "next"))  # no playlistnext: silence
    await user.emit("queue", queue("tw", "chan"))  # live: queueFail
    await user.emit("queue", queue("yt", "abc", title="mine"))
    await user.until(lambda: user.of("queue"))
    await user.sync()
    assert [q["item"]["media"]["id"] for q in user.of("queue")] == ["abc"]
    assert user.of("queue")[0]["item"]["media"]["title"] == "yt:abc"  # title only for cu/fi
    assert user.of("queue")[0]["item"]["temp"] is True  # addnontemp needs rank 2
    assert user.of("queueFail") == [
        {
            "msg": "You don't have permission to add live media",
            "link": "https://twitch.tv/chan",
            "id": "chan",
        }
    ]
    chan.media_info[("yt", "gone")] = "Video not found"
    await user.emit("queue", queue("yt", "gone"))
    await user.until(lambda: len(user.of("queueFail")) == 2)
    assert user.of("queueFail")[1]["msg"] == "Video not found"


async def test_queue_throttle_by_rank(chan: FakeCytube, make_client: MakeClient) -> None:
    await chan.set_permissions(playlistadd=1)
    user = await make_client(chan, "alice", "pw", ip="10.0.0.2")
    for n in range(5):
        await user.emit("queue", queue("yt", f"u{n}"))
    await user.until(lambda: len(user.of("queue")) + len(user.of("queueFail")) == 5)
    assert len(user.of("queue")) == 3
    assert {f["msg"] for f in user.of("queueFail")} == {"You are adding videos too quickly"}
    bot = await make_client(chan, "rosey", "secret")
    for n in range(12):
        await bot.emit("queue", queue("yt", f"b{n}"))
    await bot.until(
        lambda: (
            len([q for q in bot.of("queue") if q["item"]["queueby"] == "rosey"])
            + len(bot.of("queueFail"))
            == 12
        )
    )
    assert len(bot.of("queueFail")) == 2


async def test_duplicates_end_fails_next_moves(chan: FakeCytube, make_client: MakeClient) -> None:
    bot = await make_client(chan, "rosey", "secret")
    for media_id in ("a", "b", "c"):
        await bot.emit("queue", queue("yt", media_id))
    await bot.until(lambda: len(bot.of("queue")) == 3)
    await bot.emit("queue", queue("yt", "c"))
    await bot.until(lambda: bot.of("queueFail"))
    assert bot.of("queueFail")[0]["msg"] == "This item is already on the playlist"
    await bot.emit("queue", queue("yt", "a", "next"))  # the current item: refused too
    await bot.until(lambda: len(bot.of("queueFail")) == 2)
    await bot.emit("queue", queue("yt", "c", "next"))
    await bot.until(lambda: len(bot.of("queue")) == 4)
    assert bot.of("delete") == [{"uid": 2}]
    assert bot.of("queue")[-1]["after"] == 0 and bot.of("queue")[-1]["item"]["uid"] == 3
    # CyTube's _addItem deletes the old copy before it broadcasts the `queue`.
    assert bot.names().index("delete") < len(bot.names()) - bot.names()[::-1].index("queue")
    assert [i["media"]["id"] for i in chan.playlist()] == ["a", "c", "b"]


async def test_delete_move_jump_next_settemp(chan: FakeCytube, make_client: MakeClient) -> None:
    for media_id in ("a", "b", "c", "d"):
        await chan.add("yt", media_id, seconds=60)
    bot = await make_client(chan, "rosey", "secret")
    user = await make_client(chan, "alice", "pw", ip="10.0.0.3")
    for event, data in (
        ("delete", 1),
        ("moveMedia", {"from": 1, "after": 3}),
        ("jumpTo", 2),
        ("playNext", None),
        ("setTemp", {"uid": 1, "temp": True}),
        ("shufflePlaylist", None),
        ("clearPlaylist", None),
    ):
        await user.emit(event, data)  # rank 1: not allowed, silent
    await user.sync()
    assert [u for u in chan.playlist() if u["uid"] == 1] and chan.current is not None
    before = len(bot.got)
    await bot.emit("delete", "1")  # a string uid is ignored
    await bot.emit("delete", 99)  # unknown: silent
    await bot.emit("jumpTo", 99)
    await bot.sync()
    assert [
        n for n in bot.names()[before:] if n not in ("setPlaylistMeta", "playlist", "setCurrent")
    ] == []
    await bot.emit("delete", 1)
    await bot.until(lambda: bot.of("delete"))
    assert bot.of("delete") == [{"uid": 1}]
    await bot.emit("moveMedia", {"from": 3, "after": "prepend"})
    await bot.until(lambda: bot.of("moveVideo"))
    assert bot.of("moveVideo") == [{"from": 3, "after": "prepend"}]
    assert [i["uid"] for i in chan.playlist()] == [3, 0, 2]
    await bot.emit("jumpTo", 2)
    await bot.until(lambda: bot.of("changeMedia") and bot.of("changeMedia")[-1]["id"] == "c")
    assert bot.of("setCurrent")[-1] == 2
    media = bot.of("changeMedia")[-1]
    assert (media["currentTime"], media["paused"], media["seconds"]) == (-3, True, 60)
    await bot.emit("playNext")  # wraps around to the first item
    await bot.until(lambda: bot.of("changeMedia")[-1]["id"] == "d")
    await bot.emit("setTemp", {"uid": 3, "temp": True})
    await bot.until(lambda: bot.of("setTemp"))
    assert bot.of("setTemp") == [{"uid": 3, "temp": True}]
    await bot.emit("playNext")  # a temp item is deleted as it ends
    await bot.until(lambda: {"uid": 3} in bot.of("delete"))
    await bot.until(lambda: bot.of("changeMedia")[-1]["id"] == "a")


async def test_shuffle_renumbers_and_clear_empties(
    chan: FakeCytube, make_client: MakeClient
) -> None:
    for media_id in ("a", "b", "c"):
        await chan.add("yt", media_id)
    bot = await make_client(chan, "rosey", "secret")
    before = len(bot.of("playlist"))
    await bot.emit("shufflePlaylist")
    await bot.until(lambda: len(bot.of("playlist")) > before)
    shuffled = bot.of("playlist")[-1]
    assert sorted(i["uid"] for i in shuffled) == [3, 4, 5]
    assert shuffled[0]["media"]["id"] == "a"  # the current item first
    await bot.until(lambda: bot.of("setCurrent")[-1] == shuffled[0]["uid"])
    await bot.emit("clearPlaylist")
    await bot.until(lambda: bot.of("playlist")[-1] == [])
    assert chan.playlist() == [] and chan.current is None


async def test_tick_drives_media_updates_and_the_next_item(
    chan: FakeCytube, make_client: MakeClient
) -> None:
    await chan.add("yt", "a", seconds=10)
    await chan.add("yt", "b", seconds=10)
    bot = await make_client(chan, "rosey", "secret")
    await chan.tick(3)
    await bot.until(lambda: bot.of("mediaUpdate"))
    assert bot.of("mediaUpdate") == [{"currentTime": 0.0, "paused": False}]
    await chan.tick(5)
    await bot.until(lambda: len(bot.of("mediaUpdate")) == 2)
    assert bot.of("mediaUpdate")[-1] == {"currentTime": 5.0, "paused": False}
    await chan.tick(7)  # past 10 + 2 s
    await bot.until(lambda: bot.of("changeMedia")[-1]["id"] == "b")
    await chan.media_update()
    await bot.until(lambda: bot.of("mediaUpdate")[-1] == {"currentTime": -3.0, "paused": True})


async def test_voteskip_counts_per_ip(chan: FakeCytube, make_client: MakeClient) -> None:
    await chan.add("yt", "a")
    await chan.add("yt", "b")
    bot = await make_client(chan, "rosey", "secret", ip="10.9.0.1")
    user = await make_client(chan, "alice", "pw", ip="10.9.0.1")  # the same IP as the bot
    await chan.join("carol", 0)
    await chan.join("dave", 0)
    await chan.join("erin", 0)
    await bot.emit("voteskip")
    await user.emit("voteskip")
    await user.sync()
    await bot.until(lambda: bot.of("voteskip") and bot.of("voteskip")[-1]["count"] == 1)
    assert bot.of("voteskip")[-1] == {"count": 1, "need": 3}  # 5 users, ratio 0.5
    assert not user.of("voteskip")  # viewvoteskip is 1.5
    await chan.voteskip("carol")
    await bot.until(lambda: bot.of("voteskip")[-1]["count"] == 2)
    await chan.set_afk("dave")  # 4 eligible: 2 votes are enough
    await bot.until(lambda: any(c["username"] == "[voteskip]" for c in bot.of("chatMsg")))
    [passed] = [c for c in bot.of("chatMsg") if c["username"] == "[voteskip]"]
    assert passed["msg"].startswith("Voteskip passed: 2/4 skipped; eligible voters: 4 = total (5)")
    await bot.until(lambda: bot.of("changeMedia")[-1]["id"] == "b")


async def test_polls_escaped_counted_per_ip_and_closed(
    chan: FakeCytube, make_client: MakeClient
) -> None:
    bot = await make_client(chan, "rosey", "secret")
    user = await make_client(chan, "alice", "pw", ip="10.0.0.5")
    await user.emit("newPoll", {"title": "no", "opts": ["a", "b"], "obscured": False})
    await user.sync()
    assert not user.of("newPoll")  # pollctl 1.5: silent
    ack = await bot.call(
        "newPoll",
        {
            "title": "Best <b>",
            "opts": ["x & y", "see https://a.io/x"],
            "obscured": True,
            "timeout": 30,
        },
    )
    assert ack == {}
    await user.until(lambda: user.of("newPoll"))
    poll = user.of("newPoll")[0]
    assert poll["title"] == "Best &lt;b&gt;"
    assert poll["options"] == [
        "x &amp; y",
        'see <a href="https://a.io/x" target="_blank" rel="noopener noreferer">https://a.io/x</a>',
    ]
    assert poll["counts"] == ["?", "?"] and poll["initiator"] == "rosey"
    assert bot.of("newPoll")[0]["counts"] == ["0?", "0?"]
    await chan.join("carol", 0)
    await chan.join("dave", 0, ip="10.0.0.5")  # shares alice's IP
    await chan.vote("carol", 1)
    await user.emit("vote", {"option": 0})
    await user.sync()
    await chan.vote("dave", 1)  # replaces alice's vote
    await bot.until(lambda: len(bot.of("updatePoll")) == 3)
    assert bot.of("updatePoll")[-1]["counts"] == ["0?", "2?"]
    late = await make_client(chan, "mod", "pw", ip="10.0.0.6")
    # An open poll is re-sent on join, as the joining socket's rank sees it (anonymous: before
    # its login), and stays so until an update.
    assert late.of("newPoll")[0]["counts"] == ["?", "?"]
    await chan.expire_poll()
    await bot.until(lambda: bot.names()[-1] == "closePoll")
    assert bot.of("updatePoll")[-1]["counts"] == [0, 2]  # revealed before closing
    assert chan.poll is None
    bad = await bot.call("newPoll", {"title": "t", "opts": ["a"], "obscured": False, "timeout": 0})
    assert bad == {"error": {"message": "Poll timeout must be between 1 and 86400 seconds"}}
    before = len(bot.got)
    await bot.emit("closePoll")  # nothing open: nothing happens
    await bot.sync()
    assert "closePoll" not in bot.names()[before:]


async def test_moderation_commands(chan: FakeCytube, make_client: MakeClient) -> None:
    bot = await make_client(chan, "rosey", "secret")
    user = await make_client(chan, "alice", "pw", ip="10.0.0.7")
    await chan.join("troll", 0)
    await chan.join("boss", 3)
    await user.emit("chatMsg", {"msg": "/kick troll"})  # rank 1: swallowed
    await bot.emit("chatMsg", {"msg": "/kick boss calm down"})
    await bot.until(lambda: bot.of("errorMsg"))
    assert bot.of("errorMsg") == [{"msg": "You do not have permission to kick boss"}]
    await bot.emit("chatMsg", {"msg": "/mute troll"})
    await bot.until(lambda: bot.of("setUserMeta"))
    assert bot.of("setUserMeta")[-1]["meta"]["muted"] is True
    await user.until(lambda: user.of("setUserMeta"))
    assert user.of("setUserMeta")[-1] == {"name": "troll", "meta": {"afk": False, "muted": True}}
    await chan.say("troll", "spam")  # a muted user's line goes nowhere
    await bot.emit("chatMsg", {"msg": "/unmute troll"})
    await bot.until(lambda: bot.of("setUserMeta")[-1]["meta"]["muted"] is False)
    await bot.emit("chatMsg", {"msg": "/kick troll flooding"})
    await bot.until(lambda: {"name": "troll"} in bot.of("userLeave"))
    assert chan.kicked == [("troll", "flooding")]
    await bot.until(lambda: any(c["msg"] == "rosey kicked troll" for c in bot.of("chatMsg")))
    await bot.emit("chatMsg", {"msg": "/me waves"})
    await bot.emit("chatMsg", {"msg": "/clear"})
    await bot.until(lambda: bot.of("clearchat"))
    assert bot.of("clearchat") == [{"clearedBy": "rosey"}]
    lines = [c for c in user.of("chatMsg") if c["username"] in ("rosey", "troll", "alice")]
    assert [(c["msg"], c["meta"]) for c in lines] == [
        ("waves", {"addClass": "action", "action": True})
    ]
    await chan.join("pest", 0)
    await user.emit("chatMsg", {"msg": "/ban pest"})
    await user.until(lambda: user.of("errorMsg"))
    assert user.of("errorMsg") == [{"msg": "You do not have ban permissions on this channel"}]
    await bot.emit("chatMsg", {"msg": "/ban pest spamming"})
    await bot.until(lambda: {"name": "pest"} in bot.of("userLeave"))
    assert chan.banned == {"pest": "spamming"} and ("pest", "You're banned!") in chan.kicked


async def test_kicked_socket_and_protocol_abuse_kicks(
    chan: FakeCytube, make_client: MakeClient
) -> None:
    bot = await make_client(chan, "rosey", "secret")
    user = await make_client(chan, "alice", "pw", ip="10.0.0.8")
    await bot.emit("chatMsg", {"msg": "/kick alice bye"})
    await user.until(lambda: user.of("kick"))
    assert user.of("kick") == [{"reason": "bye"}]
    await bot.until(lambda: {"name": "alice"} in bot.of("userLeave"))
    for event, data, reason in (
        ("assignLeader", {"name": "alice"}, "Attempted assignLeader without sufficient permission"),
        ("setOptions", {"allow_voteskip": False}, "Attempted setOptions as a non-moderator"),
        ("setPermissions", {"chat": 2}, "Attempted setPermissions as a non-admin"),
    ):
        other = await make_client(chan, "alice", "pw", ip=f"10.1.0.{len(reason)}")
        await other.emit(event, data)
        await other.until(lambda o=other: o.of("kick"))
        assert other.of("kick") == [{"reason": reason}]
    assert chan.options["allow_voteskip"] is True and chan.permissions["chat"] == 0


async def test_afk_meta_and_join_resends_state(chan: FakeCytube, make_client: MakeClient) -> None:
    await chan.add("yt", "a")
    await chan.join("carol", 0)
    bot = await make_client(chan, "rosey", "secret")
    await bot.emit("newPoll", {"title": "q", "opts": ["y", "n"], "obscured": False})
    await chan.set_afk("carol")
    await bot.until(lambda: bot.of("setAFK"))
    assert bot.of("setAFK") == [{"name": "carol", "afk": True}]
    assert bot.of("setUserMeta")[-1]["meta"]["afk"] is True
    await chan.say("carol", "back")  # chatting clears AFK
    await bot.until(lambda: bot.of("setAFK")[-1] == {"name": "carol", "afk": False})
    late: RawClient = await make_client(chan, "mod", "pw", ip="10.0.0.9")
    assert subsequence(
        late.names(),
        ["setPermissions", "playlist", "setCurrent", "changeMedia", "newPoll", "userlist"],
    )
    assert late.of("playlist")[0][0]["media"]["id"] == "a"
    assert late.of("newPoll")[0]["title"] == "q"
    assert any(u["name"] == "carol" for u in late.of("userlist")[0])


async def test_mutes_reach_the_muted_socket_and_persist(
    chan: FakeCytube, make_client: MakeClient
) -> None:
    bot = await make_client(chan, "rosey", "secret")
    user = await make_client(chan, "alice", "pw", ip="10.0.0.10")
    await bot.emit("chatMsg", {"msg": "/mute alice"})
    await user.until(lambda: user.of("setUserMeta"))
    await user.emit("chatMsg", {"msg": "hello?"})
    await user.until(lambda: user.of("noflood"))
    assert user.of("noflood") == [{"action": "chat", "msg": "You have been muted on this channel."}]
    assert not [c for c in bot.of("chatMsg") if c["username"] == "alice"]
    await chan.join("sneaky", 0)
    await bot.emit("chatMsg", {"msg": "/smute sneaky"})
    await bot.until(lambda: any(m["name"] == "sneaky" for m in bot.of("setUserMeta")))
    assert not any(m["name"] == "sneaky" for m in user.of("setUserMeta"))  # only moderators
    await chan.say("sneaky", "psst")
    await bot.until(lambda: any(c["username"] == "sneaky" for c in bot.of("chatMsg")))
    [line] = [c for c in bot.of("chatMsg") if c["username"] == "sneaky"]
    assert line["meta"] == {"shadow": True}
    await user.sync()
    assert not [c for c in user.of("chatMsg") if c["username"] == "sneaky"]
    await chan.leave("sneaky")
    await chan.join("sneaky", 0)  # the mute is the channel's state
    assert chan.member("sneaky").smuted and "sneaky" in chan.smuted


async def test_leader_and_moderator_settings(chan: FakeCytube, make_client: MakeClient) -> None:
    await chan.add("yt", "a", seconds=100)
    bot = await make_client(chan, "rosey", "secret")
    await chan.set_permissions(leaderctl=2)
    await bot.emit("assignLeader", {"name": "rosey"})
    await bot.until(lambda: bot.of("setLeader"))
    assert bot.of("setLeader") == ["rosey"]
    await bot.emit("mediaUpdate", {"id": "a", "currentTime": 42.5, "paused": True})
    await bot.until(lambda: bot.of("mediaUpdate"))
    assert bot.of("mediaUpdate") == [{"currentTime": 42.5, "paused": True}]
    await bot.emit("setOptions", {"voteskip_ratio": 1})
    await bot.until(lambda: bot.of("channelOpts")[-1]["voteskip_ratio"] == 1)
    await bot.emit("setPermissions", {"chat": 1})  # rank 2 < 3: kicked
    await bot.until(lambda: bot.of("kick"))
    assert bot.of("kick") == [{"reason": "Attempted setPermissions as a non-admin"}]
