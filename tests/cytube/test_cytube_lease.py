import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
import socketio

from runtime.config.keys import Namespace
from runtime.cytube.connector import Connector
from runtime.cytube.lease import LocalLease, RedisLease, make_lease
from runtime.wire.bus import Bus
from tests.cytube_helpers import (
    MakeConnector,
    MakeFake,
    Watch,
    bot_settings,
    make_connector,
    make_fake,
)

__all__ = ["make_connector", "make_fake"]  # fixtures

STOP_DEADLINE = 5.0  # stop() takes well under a second; the bug it bounds made it take minutes


def overlapping_disconnects(monkeypatch: pytest.MonkeyPatch) -> list[socketio.AsyncClient]:
    """The socket.io clients whose disconnect() was entered while a call to it was under way.
    engineio's disconnect is not reentrant: the second call empties the send queue under the
    first, which then waits out the write loop's timeout (ping timeout + 5 s)."""
    overlaps: list[socketio.AsyncClient] = []
    running: dict[int, int] = {}
    original = socketio.AsyncClient.disconnect

    async def disconnect(self: socketio.AsyncClient) -> None:
        if running.get(id(self)):
            overlaps.append(self)
        running[id(self)] = running.get(id(self), 0) + 1
        try:
            await original(self)
        finally:
            running[id(self)] -= 1

    monkeypatch.setattr(socketio.AsyncClient, "disconnect", disconnect)
    return overlaps


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """The one client of a process, which its leases share."""
    redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield redis
    await redis.aclose()


async def test_redis_lease_is_exclusive_and_renewed_only_by_its_holder(
    client: aioredis.Redis,
) -> None:
    key = f"rosey:lease:test:{uuid.uuid4().hex}"
    first, second = RedisLease(client, key, 30), RedisLease(client, key, 30)
    assert await first.acquire()
    assert not await second.acquire()
    assert await second.holder() == first.token
    assert await first.renew()
    assert not await second.renew()
    await second.release()  # not the holder: nothing happens
    assert await client.get(key) == first.token
    assert 0 < await client.pttl(key) <= 30_000
    await client.delete(key)  # as if the holder died and the TTL ran out
    assert not await first.renew()
    assert await second.acquire()
    await second.release()
    assert await client.exists(key) == 0


async def test_the_lease_is_named_after_server_and_channel_under_the_prefix(
    client: aioredis.Redis,
) -> None:
    keys = Namespace(f"test:{uuid.uuid4().hex}:")
    lease = make_lease(client, keys, "cytu.be:443", "MyChan", 10)
    assert isinstance(lease, RedisLease)
    assert lease.key == keys.prefix + "lease:cytube:cytu.be:443/mychan"
    assert await lease.acquire()
    assert await client.get(lease.key) == lease.token
    await lease.release()


async def test_without_redis_the_lease_is_local() -> None:
    lease = make_lease(None, Namespace(), "host", "chan", 10)
    assert isinstance(lease, LocalLease)
    assert await lease.acquire()
    assert await lease.renew()


async def test_one_connector_per_channel_and_takeover(
    make_fake: MakeFake, make_connector: MakeConnector, redis_url: str, bus: Bus
) -> None:
    fake = await make_fake(f"c{uuid.uuid4().hex[:12]}")
    watch = await Watch(bus, "cytube.connection").start()
    holder = await make_connector(fake, redis_url)
    standby = await make_connector(fake, redis_url)
    assert (holder.state, standby.state) == ("connected", "standby")
    assert fake.logins == ["rosey"]

    # The standby has no socket and no subscription: each line is said once.
    await bus.publish("cytube.send.chat", {"message": "once"})
    await bus.publish("cytube.send.chat", {"message": "end"})
    await fake.until(lambda: "end" in fake.said("rosey"))
    assert fake.said("rosey") == ["once", "end"]

    await holder.stop()
    await watch.until(lambda: watch.states().count("connected") == 2)
    assert standby.state == "connected"
    assert fake.logins == ["rosey", "rosey"]
    assert fake.bots() == ["rosey"]
    await bus.publish("cytube.send.chat", {"message": "from the new holder"})
    await fake.until(lambda: "from the new holder" in fake.said("rosey"))


async def test_lost_lease_disconnects(
    make_fake: MakeFake, client: aioredis.Redis, bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    overlaps = overlapping_disconnects(monkeypatch)
    fake = await make_fake(f"c{uuid.uuid4().hex[:12]}")
    watch = await Watch(bus, "cytube.connection").start()
    keys = Namespace(f"test:{uuid.uuid4().hex}:")
    connector = Connector(bot_settings(fake), bus, client, keys)  # the process's one client
    await connector.start()
    try:
        assert isinstance(connector.lease, RedisLease)
        assert connector.lease.key.startswith(keys.prefix + "lease:cytube:")
        # Another process takes the lease (as after this one stalled past the TTL).
        await client.set(connector.lease.key, "someone-else")
        await watch.until(lambda: "standby" in watch.states())
        await fake.until(lambda: not fake.bots())
        await client.delete(connector.lease.key)
        await watch.until(lambda: watch.states().count("connected") == 2)
    finally:
        # Right after losing and regaining the lease, stop() is prompt: a deadline, not a sleep.
        async with asyncio.timeout(STOP_DEADLINE):
            await connector.stop()
    assert overlaps == []  # neither the renewer's nor stop()'s disconnect raced the session's
    assert await client.ping()  # the client is its owner's: stopping did not close it


async def test_stop_disconnects_once_and_promptly(
    make_fake: MakeFake, make_connector: MakeConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    overlaps = overlapping_disconnects(monkeypatch)
    fake = await make_fake(f"c{uuid.uuid4().hex[:12]}")
    connector = await make_connector(fake)
    assert connector.state == "connected"
    async with asyncio.timeout(STOP_DEADLINE):
        await connector.stop()
    assert overlaps == []  # stop()'s disconnect and the ending session's are one
    await fake.until(lambda: not fake.bots())
