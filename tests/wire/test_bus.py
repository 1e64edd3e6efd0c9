import asyncio
import json
import logging
from collections.abc import AsyncIterator

import pytest
from nats.aio.msg import Msg
from nats.errors import NoRespondersError

from runtime.constants import ENABLE
from runtime.errors import BusError, ContractError
from runtime.host.servers import EmbeddedNats, free_port
from runtime.wire.bus import Binding, Bus


async def test_runtime_connect_to_nothing_gives_up_with_a_clear_error() -> None:
    url = f"nats://127.0.0.1:{free_port()}"
    with pytest.raises(BusError) as info:
        await Bus.connect(url, timeout=0.5)
    assert str(info.value).startswith(f"NATS connect failed: {url}")


async def test_request_without_responders(bus: Bus) -> None:
    with pytest.raises(BusError) as info:
        await bus.request("nobody.listens.here", {})
    assert str(info.value) == "NATS request to nobody.listens.here failed: no responders"


async def test_reconnects_after_server_restart(fresh_nats: EmbeddedNats) -> None:
    url = fresh_nats.url
    port = int(url.rsplit(":", 1)[1])
    client = await Bus.connect(url, timeout=1)
    got: list[bytes] = []

    async def on_message(msg: object) -> None:
        got.append(msg.data)  # type: ignore[attr-defined]

    await client.nc.subscribe("ping", cb=on_message)
    fresh_nats.stop()
    fresh_nats.start(port=port)
    other = await Bus.connect(url, timeout=1)
    for _ in range(100):
        await other.nc.publish("ping", b"x")
        await other.flush()
        if got:
            break
        import asyncio

        await asyncio.sleep(0.1)
    assert got, "the subscription was not restored after the restart"
    await other.close()
    await client.close()


# Bus.gather: scatter-gather over a fresh inbox.


@pytest.fixture
async def peer(nats_url: str) -> AsyncIterator[Bus]:
    """A second connection, for responders, so `bus.nc._subs` holds only gather's inbox."""
    client = await Bus.connect(nats_url, name="test-peer")
    yield client
    await client.close()


async def test_gather_collects_the_reply_of_every_responder(bus: Bus, peer: Bus) -> None:
    for n in range(3):

        async def answer(msg: Msg, n: int = n) -> None:
            await peer.respond(msg, {"n": n, "asked": json.loads(msg.data)})

        await peer.nc.subscribe("test.gather", cb=answer)
    await peer.flush()
    before = len(bus.nc._subs)
    replies = await bus.gather("test.gather", {"q": 1}, window=30, expected=3)
    assert sorted(r["n"] for r in replies) == [0, 1, 2]
    assert all(r["asked"] == {"q": 1} for r in replies)
    assert len(bus.nc._subs) == before


async def test_gather_skips_malformed_replies(
    bus: Bus, peer: Bus, caplog: pytest.LogCaptureFixture
) -> None:
    async def answer(msg: Msg) -> None:
        # One connection delivers in order: both bad replies are handled before the good one.
        for data in (b"not json", b"[1, 2]", b"\xff", b'{"ok": true}'):
            await peer.nc.publish(msg.reply, data)

    await peer.nc.subscribe("test.gather", cb=answer)
    await peer.flush()
    with caplog.at_level(logging.WARNING, logger="rosey.bus"):
        replies = await bus.gather("test.gather", {}, window=30, expected=1)
    assert replies == [{"ok": True}]
    skipped = [r.getMessage() for r in caplog.records if r.name == "rosey.bus"]
    assert len(skipped) == 3
    assert all(m.startswith("skipped a malformed reply to test.gather") for m in skipped)


async def test_gather_unsubscribes_when_the_publish_fails(bus: Bus) -> None:
    before = len(bus.nc._subs)
    with pytest.raises(TypeError):  # not JSON: fails after the inbox is subscribed
        await bus.gather("test.gather", {"x": object()}, window=30)
    assert len(bus.nc._subs) == before


async def test_gather_unsubscribes_when_cancelled(bus: Bus, peer: Bus) -> None:
    asked = asyncio.Event()

    async def listen(msg: Msg) -> None:
        asked.set()  # and never answer

    await peer.nc.subscribe("test.gather", cb=listen)
    await peer.flush()
    before = len(bus.nc._subs)
    task = asyncio.create_task(bus.gather("test.gather", {}, window=30))
    async with asyncio.timeout(10):
        await asked.wait()
    assert len(bus.nc._subs) == before + 1  # the inbox, while it waits
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(bus.nc._subs) == before


async def test_gather_checks_the_payload_against_the_contract(bus: Bus) -> None:
    before = len(bus.nc._subs)
    with pytest.raises(ContractError) as info:
        await bus.gather(ENABLE, {"name": "dice"})  # not signed
    assert "auth: required field is missing" in str(info.value)
    assert len(bus.nc._subs) == before


async def test_gather_on_a_closed_connection_raises_bus_error(nats_url: str) -> None:
    closed = await Bus.connect(nats_url, name="test-closed")
    await closed.close()
    with pytest.raises(BusError) as info:
        await closed.gather("test.gather", {})
    assert str(info.value).startswith("NATS subscribe to _INBOX.")


async def test_gather_with_extend_waits_while_answers_keep_coming(bus: Bus, peer: Bus) -> None:
    # Fifteen answers, 0.1 s apart: 1.4 s in all, more than the 1 s window, but each comes
    # well within a window of the one before (a loaded machine only makes the whole longer).
    count, gap, window = 15, 0.1, 1.0
    senders: set[asyncio.Task[None]] = set()

    async def trickle(reply: str) -> None:
        for n in range(count):
            if n:
                await asyncio.sleep(gap)  # the pace of the answers under test, not a wait
            await peer.nc.publish(reply, json.dumps({"n": n}).encode())

    async def answer(msg: Msg) -> None:
        task = asyncio.create_task(trickle(msg.reply))
        senders.add(task)
        task.add_done_callback(senders.discard)

    await peer.nc.subscribe("test.slow", cb=answer)
    await peer.flush()
    cut = await bus.gather("test.slow", {}, window=window)
    extended = await bus.gather("test.slow", {}, window=window, extend=True)
    assert [r["n"] for r in extended] == list(range(count))
    assert len(cut) < count  # without extend the window closes on the later answers
    for task in set(senders):
        task.cancel()


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


async def test_connects_to_any_server_of_a_list_and_fails_over(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """`nats.url: nats://a,nats://b`: nats-py gets both, skips a dead one and, when the server it
    uses dies, goes on with another (two independent servers here: failover, not clustering)."""
    from tests.conftest import wait_for

    dead = f"nats://127.0.0.1:{free_port()}"
    first, second = (EmbeddedNats(tmp_path_factory.mktemp(n)) for n in ("a", "b"))
    first.start()
    second.start()
    try:
        lone = await Bus.connect(f"{dead},{second.url}", timeout=1, reconnect=False)
        assert lone.nc.connected_url is not None
        assert lone.nc.connected_url.port == _port(second.url)
        await lone.close()

        client = await Bus.connect(f"{first.url}, {second.url}", timeout=1)
        assert client.nc.connected_url is not None
        used, other = (
            (first, second) if client.nc.connected_url.port == _port(first.url) else (second, first)
        )
        other_port = _port(other.url)
        used.stop()

        def moved() -> bool:
            url = client.nc.connected_url
            return client.nc.is_connected and url is not None and url.port == other_port

        await wait_for(moved)
        sub = await client.nc.subscribe("after.failover")
        await client.nc.publish("after.failover", b"still here")
        assert (await sub.next_msg(timeout=5)).data == b"still here"
        await client.close()
    finally:
        first.stop()
        second.stop()


async def test_a_subscription_is_known_to_other_clients_once_binding_start_returns(
    bus: Bus, peer: Bus
) -> None:
    # nats-py's flush() alone lets about 1 request in 100 find no responder here (its PING can
    # overtake the SUB); Binding.start settles, so none of these may.
    lost = 0
    for n in range(400):

        async def answer(msg: Msg) -> None:
            await msg.respond(b"{}")

        binding = Binding(peer, f"test.settle.{n}", answer)
        await binding.start()
        try:
            await bus.nc.request(f"test.settle.{n}", b"{}", timeout=5)
        except NoRespondersError:
            lost += 1
        finally:
            await binding.stop()
    assert lost == 0
