import re

import pytest
import socketio

from runtime.errors import ConnectorError, LoginError
from runtime.wire.bus import Bus
from tests.clitools import ROOT
from tests.conftest import MakeRuntime
from tests.cytube_helpers import MakeConnector, MakeFake, Watch, fake, make_connector, make_fake
from tests.fake_cytube import FakeCytube

__all__ = ["fake", "make_connector", "make_fake"]  # fixtures

DICE = {"dice": (ROOT / "manifests" / "dice.yaml").read_text()}
DICE_CODE = {"dice.py": (ROOT / "functions" / "dice.py").read_text()}
MOD = {
    "mod": """\
    name: mod
    version: "1.0.0"
    description: A moderators' command.
    handler: mod:kick
    commands:
      kick: {rank: 2}
    """
}
MOD_CODE = {"mod.py": "def kick(event, ctx):\n    return f'{event.user} may kick'\n"}


async def test_roll_end_to_end(
    fake: FakeCytube, make_connector: MakeConnector, make_runtime: MakeRuntime
) -> None:
    await make_runtime(DICE, DICE_CODE)
    await make_connector(fake)
    await fake.join("alice", 0)
    await fake.say("alice", "!roll 2d6")
    [line] = await fake.until(lambda: fake.said("rosey"))
    assert re.fullmatch(r"alice rolled 2d6: \[\d, \d\] = \d+", line), line


async def test_pm_command_answered_by_pm(
    fake: FakeCytube, make_connector: MakeConnector, make_runtime: MakeRuntime
) -> None:
    await make_runtime(DICE, DICE_CODE)
    await make_connector(fake)
    await fake.join("alice", 0)
    await fake.pm("alice", "rosey", "!flip")
    [pm] = await fake.until(lambda: fake.pms)
    assert (pm["username"], pm["to"]) == ("rosey", "alice")
    assert pm["msg"].startswith("alice flipped a coin: ")


async def test_history_and_own_echo_not_published(
    make_fake: MakeFake, make_connector: MakeConnector, bus: Bus
) -> None:
    history = [("alice", "!roll 1d6"), ("rosey", "an old line of mine"), ("bob", "old news")]
    server = await make_fake(history=history)
    await server.join("alice", 0)
    watch = await Watch(bus, "cytube.chat", "cytube.pm").start()
    await make_connector(server)
    await bus.publish("cytube.send.chat", {"message": "hello from rosey"})
    await server.until(lambda: server.said("rosey"))
    await server.say("alice", "after")
    await watch.until(lambda: watch.seen)
    assert [(s, p["user"], p["message"]) for s, p in watch.seen] == [
        ("cytube.chat", "alice", "after")
    ]


async def test_html_stripped_and_kept(
    fake: FakeCytube, make_connector: MakeConnector, bus: Bus
) -> None:
    watch = await Watch(bus, "cytube.chat").start()
    await make_connector(fake)
    await fake.join("alice", 1)
    typed = [
        "!weather new_york_city",
        "<b>bold</b> & \"quotes\" 'apos' (parens)",
        "use `code` and *bold*",
        "https://example.com/a_b_c?q=1&r=2",
    ]
    for text in typed:
        await fake.say("alice", text)
    seen = await watch.until(lambda: len(watch.seen) == 4 and watch.of("cytube.chat"))
    assert [p["message"] for p in seen] == [
        "!weather newyorkcity",
        "<b>bold</b> & \"quotes\" 'apos' (parens)",
        "use code and bold",
        "https://example.com/a_b_c?q=1&r=2",
    ]
    assert seen[0]["html"] == "!weather new<em>york</em>city"
    assert seen[1]["html"].startswith("&lt;b&gt;bold&lt;/b&gt; &amp;")
    assert seen[3]["html"].startswith('<a href="https://example.com/a_b_c?q=1&amp;r=2"')
    assert {(p["user"], p["rank"], p["channel"]) for p in seen} == {("alice", 1, "test")}


async def test_rank_gate_uses_the_server_rank(
    fake: FakeCytube, make_connector: MakeConnector, make_runtime: MakeRuntime
) -> None:
    await make_runtime(MOD, MOD_CODE)
    await make_connector(fake)
    await fake.join("guest1", 0)
    await fake.join("moddy", 2)
    await fake.say("guest1", '!kick {"rank": 5}')
    await fake.until(lambda: fake.said("rosey"))
    await fake.say("moddy", "!kick")
    await fake.until(lambda: len(fake.said("rosey")) == 2)
    await fake.set_rank("guest1", 2)
    await fake.say("guest1", "!kick")
    lines = await fake.until(lambda: len(fake.said("rosey")) == 3 and fake.said("rosey"))
    assert lines == [
        "guest1: !kick needs moderator rank or higher (you are guest).",
        "moddy may kick",
        "guest1 may kick",
    ]


async def test_burst_of_30_delivered_in_order_through_cooldowns(
    fake: FakeCytube, make_connector: MakeConnector, bus: Bus
) -> None:
    # A bucket far above the server's 20 burst / 10 per s, so the server answers `cooldown`.
    watch = await Watch(bus, "cytube.send.failed").start()
    await make_connector(fake, throttle_burst=100, throttle_rate=1000)
    for i in range(30):
        await bus.publish("cytube.send.chat", {"message": f"line {i}"})
    lines = await fake.until(lambda: len(fake.said("rosey")) >= 30 and fake.said("rosey"))
    assert lines == [f"line {i}" for i in range(30)]
    assert fake.cooldowns > 0
    assert watch.seen == []


async def test_default_throttle_stays_under_the_server_limit(
    fake: FakeCytube, make_connector: MakeConnector, bus: Bus
) -> None:
    await make_connector(fake)
    for i in range(5):
        await bus.publish("cytube.send.chat", {"message": f"line {i}"})
    await fake.until(lambda: len(fake.said("rosey")) == 5)
    assert fake.cooldowns == 0


async def test_long_text_split_at_words(
    fake: FakeCytube, make_connector: MakeConnector, bus: Bus
) -> None:
    await make_connector(fake)
    text = " ".join(f"w{i:03d}" for i in range(140))  # 699 characters
    await bus.publish("cytube.send.chat", {"message": text})
    lines = await fake.until(lambda: len(fake.said("rosey")) == 3 and fake.said("rosey"))
    assert all(len(line) <= 320 for line in lines)
    assert " ".join(lines) == text


async def test_commands_refused_emote_allowed_failures_reported(
    fake: FakeCytube, make_connector: MakeConnector, bus: Bus
) -> None:
    watch = await Watch(bus, "cytube.send.failed").start()
    await make_connector(fake)
    await bus.publish("cytube.send.chat", {"message": "/kick alice"})
    await bus.publish("cytube.send.chat", {"message": ">greentext"})
    await bus.publish("cytube.send.pm", {"to": "nobody", "message": "hi"})
    await bus.publish("cytube.send.chat", {"message": "waves", "emote": True})
    await bus.publish("cytube.send.chat", {"message": "elsewhere", "channel": "other"})
    await watch.until(lambda: len(watch.seen) == 3)
    assert [(p["code"], p["message"]) for p in watch.of("cytube.send.failed")] == [
        ("refused", "/kick alice"),
        ("refused", ">greentext"),
        ("not_in_channel", "hi"),
    ]
    assert watch.of("cytube.send.failed")[2]["to"] == "nobody"
    [action] = await fake.until(lambda: [c for c in fake.chat if c["username"] == "rosey"])
    assert (action["msg"], action["meta"]) == ("waves", {"addClass": "action", "action": True})


async def test_users_and_ranks_kept_current(
    fake: FakeCytube, make_connector: MakeConnector, bus: Bus
) -> None:
    await fake.join("alice", 0)
    watch = await Watch(bus, "cytube.user.join", "cytube.user.leave").start()
    connector = await make_connector(fake)
    assert connector.chan.rank_of("alice") == 0
    await fake.join("bob", 1.5)
    await fake.set_rank("alice", 3)
    await fake.leave("bob")
    await watch.until(lambda: len(watch.seen) == 2)
    assert [(s, p["user"], p.get("rank")) for s, p in watch.seen] == [
        ("cytube.user.join", "bob", 1.5),
        ("cytube.user.leave", "bob", None),
    ]
    assert connector.chan.rank_of("alice") == 3
    assert not connector.chan.present("bob")


async def test_reconnect_after_server_restart(
    fake: FakeCytube, make_connector: MakeConnector, make_runtime: MakeRuntime, bus: Bus
) -> None:
    watch = await Watch(bus, "cytube.connection").start()
    await make_runtime(DICE, DICE_CODE)
    await make_connector(fake)
    await fake.stop()
    await watch.until(lambda: "disconnected" in watch.states())
    await fake.start()
    await watch.until(lambda: watch.states().count("connected") == 2)
    assert fake.logins == ["rosey", "rosey"]
    await fake.join("alice", 0)
    await fake.say("alice", "!roll")
    [line] = await fake.until(lambda: fake.said("rosey"))
    assert line.startswith("alice rolled 1d6: ")


async def test_bad_credentials_fail_start_with_the_account_named(
    fake: FakeCytube, make_connector: MakeConnector, bus: Bus
) -> None:
    watch = await Watch(bus, "cytube.connection").start()
    with pytest.raises(LoginError) as info:
        await make_connector(fake, password="wrong")
    assert str(info.value) == (
        "cytube channel 'test': login as 'rosey' failed: Invalid username/password combination"
    )
    await watch.until(lambda: "failed" in watch.states())
    assert fake.bots() == []


async def test_reconnect_after_channel_reloading_kick(
    fake: FakeCytube, make_connector: MakeConnector, bus: Bus
) -> None:
    watch = await Watch(bus, "cytube.connection").start()
    await make_connector(fake)
    await fake.kick("rosey", "Channel reloading")
    await watch.until(lambda: watch.states().count("connected") == 2)
    assert fake.logins == ["rosey", "rosey"]
    assert fake.bots() == ["rosey"]


async def test_duplicate_login_is_not_fought(
    fake: FakeCytube, make_connector: MakeConnector, bus: Bus
) -> None:
    watch = await Watch(bus, "cytube.connection").start()
    connector = await make_connector(fake)
    other = socketio.AsyncClient(reconnection=False, handle_sigint=False)
    await other.connect(fake.url, transports=["websocket"])
    try:
        await other.emit("joinChannel", {"name": "test"})
        await other.emit("login", {"name": "rosey", "pw": "secret"})
        await watch.until(lambda: "parked" in watch.states())
        assert watch.of("cytube.connection")[-1]["reason"] == "kicked: Duplicate login"
        assert connector.state == "parked"
        assert fake.logins == ["rosey", "rosey"]
    finally:
        await other.disconnect()


async def test_banned_is_fatal(fake: FakeCytube, make_connector: MakeConnector) -> None:
    connector = await make_connector(fake)
    await fake.kick("rosey", "You are banned from this channel.")
    with pytest.raises(ConnectorError, match=r"kicked: You are banned from this channel\."):
        await connector.wait()


async def test_channel_password(make_fake: MakeFake, make_connector: MakeConnector) -> None:
    server = await make_fake("locked", channel_password="open sesame")
    with pytest.raises(ConnectorError, match="the channel needs a password"):
        await make_connector(server)
    await make_connector(server, channel_password="open sesame")
    assert server.bots() == ["rosey"]


async def test_unreachable_server_keeps_retrying(
    make_fake: MakeFake, make_connector: MakeConnector
) -> None:
    server = await make_fake()
    await server.stop()  # the port is known and nothing listens on it
    connector = await make_connector(server, reconnect_delay=5)
    assert connector.state == "disconnected"
    assert connector.error is None


async def test_connection_rate_limit_waits_for_the_ip_bucket(
    fake: FakeCytube, make_connector: MakeConnector, bus: Bus
) -> None:
    fake.drain_connect_bucket("127.0.0.1")
    watch = await Watch(bus, "cytube.connection").start()
    connector = await make_connector(fake)
    assert connector.state == "disconnected"
    last = (await watch.until(lambda: watch.of("cytube.connection")[1:]))[-1]
    assert last["reason"].endswith(": Rate limit exceeded")
    assert last["retry_in"] >= 10
    assert fake.connects == 0
