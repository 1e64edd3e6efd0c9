import uuid

import redis.asyncio as aioredis

from runtime.cytube.lease import RedisLease, make_lease
from runtime.wire.bus import Bus
from tests.cytube_helpers import MakeConnector, MakeFake, Watch, make_connector, make_fake

__all__ = ["make_connector", "make_fake"]  # fixtures


async def test_redis_lease_is_exclusive_and_renewed_only_by_its_holder(redis_url: str) -> None:
    key = f"rosey:lease:test:{uuid.uuid4().hex}"
    first, second = RedisLease(redis_url, key, 30), RedisLease(redis_url, key, 30)
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
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
    finally:
        await first.close()
        await second.close()
        await client.aclose()


async def test_without_redis_the_lease_is_local() -> None:
    lease = make_lease(None, "host", "chan", 10)
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
    make_fake: MakeFake, make_connector: MakeConnector, redis_url: str, bus: Bus
) -> None:
    fake = await make_fake(f"c{uuid.uuid4().hex[:12]}")
    watch = await Watch(bus, "cytube.connection").start()
    connector = await make_connector(fake, redis_url)
    assert isinstance(connector.lease, RedisLease)
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        # Another process takes the lease (as after this one stalled past the TTL).
        await client.set(connector.lease.key, "someone-else")
        await watch.until(lambda: "standby" in watch.states())
        await fake.until(lambda: not fake.bots())
        await client.delete(connector.lease.key)
        await watch.until(lambda: watch.states().count("connected") == 2)
    finally:
        await client.aclose()
