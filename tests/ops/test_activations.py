"""Activation records in a real Redis: the buffered writer, the cap, retention, the query."""

import json
import time
from typing import Any

import pytest
from redis.asyncio import Redis

from runtime.config.keys import Namespace
from runtime.config.settings import ActivationSettings
from runtime.core.activation import Activation
from runtime.errors import StoreError
from runtime.host.servers import free_port
from runtime.ops import records as activations
from runtime.ops.records import ActivationLog, unpack
from runtime.wire.bus import Bus
from tests.conftest import MakeRuntime
from tests.opskit import operations, say, until


def act(
    n: int = 0,
    user: str = "alice",
    function: str = "calc",
    outcome: str = "ok",
    kind: str = "command",
    **extra: object,
) -> Activation:
    return Activation(
        id=f"id{n}",
        function=function,
        version="1.0.0",
        kind=kind,
        command="ok" if kind == "command" else None,
        user=user,
        channel="test",
        outcome=outcome,  # type: ignore[arg-type]
        duration=0.002,
        **extra,  # type: ignore[arg-type]
    )


async def stored(redis: Redis, stream: str) -> list[dict[str, Any]]:
    """Every record in the stream, oldest first, however the entries hold them."""
    return [r for entry, fields in await redis.xrange(stream) for r in unpack(entry, fields)]


def old_format(n: int, user: str = "alice", when: float = 1_700_000_000.0) -> dict[str, str]:
    """An entry as Rosey wrote it before records were packed: one record, a field per value."""
    return {
        "id": f"old{n}",
        "function": "calc",
        "version": "0.9.0",
        "kind": "command",
        "command": "ok",
        "user": user,
        "channel": "",
        "outcome": "ok",
        "duration": "0.001500",
        "error": "",
        "reason": "",
        "time": f"{when + n:.3f}",
    }


async def test_records_are_written_in_the_background(redis: Redis, keys: Namespace) -> None:
    log = ActivationLog(redis, keys, ActivationSettings())
    await log.start()
    try:
        log(act(1, error="", reason=""))
        log(act(2, outcome="denied", reason="!ok needs rank 2 (you have 0)"))
        assert len(log.buffer) == 2  # the observer only queues: nothing waited for Redis

        async def written() -> bool:
            return len(await stored(redis, log.stream)) == 2

        await until(written)
        assert await redis.xlen(log.stream) == 1  # both records in one entry: one XADD
        records = await log.query()
        assert [r["id"] for r in records] == ["id2", "id1"]  # newest first
        assert records[0]["reason"] == "!ok needs rank 2 (you have 0)"
        first = records[1]
        assert first["function"] == "calc" and first["version"] == "1.0.0"
        assert (first["user"], first["command"], first["outcome"]) == ("alice", "ok", "ok")
        assert first["duration"] == pytest.approx(0.002)
        assert first["time"] == pytest.approx(time.time(), abs=60)
    finally:
        await log.stop()


async def test_query_filters(redis: Redis, keys: Namespace) -> None:
    log = ActivationLog(redis, keys, ActivationSettings())
    log(act(1, user="Alice"))
    log(act(2, user="bob"))
    log(act(3, user="alice", function="why"))
    log(act(4, user="alice", kind="event"))
    log(act(5, user="alice", function="dice"))
    assert await log.flush() == 5
    ids = [r["id"] for r in await log.query(user="ALICE", kind="command", exclude=["why"])]
    assert ids == ["id5", "id1"]
    assert [r["id"] for r in await log.query(function="calc", limit=2)] == ["id4", "id2"]
    assert [r["id"] for r in await log.query(user="nobody")] == []


async def test_query_reads_past_one_page(redis: Redis, keys: Namespace) -> None:
    log = ActivationLog(redis, keys, ActivationSettings(max_records=5000))
    log(act(0, user="early"))
    for n in range(activations.PAGE + 10):
        log(act(n + 1, user="busy"))
    await log.flush()
    assert [r["id"] for r in await log.query(user="early")] == ["id0"]


async def test_the_stream_is_capped(redis: Redis, keys: Namespace) -> None:
    log = ActivationLog(redis, keys, ActivationSettings(max_records=100))
    for n in range(1000):
        log(act(n))
    await log.flush()
    assert log.entry_size == 5  # a twentieth of the cap, so the cap holds many entries
    # MAXLEN ~ trims whole radix-tree nodes (100 entries or 4 kB), so "near" the cap.
    assert 100 <= len(await stored(redis, log.stream)) < 300
    assert (await log.query(limit=1))[0]["id"] == "id999"


async def test_the_cap_counts_records_in_small_entries_too(redis: Redis, keys: Namespace) -> None:
    log = ActivationLog(redis, keys, ActivationSettings(max_records=100))
    for n in range(400):
        log(act(n))
        await log.flush()  # one record per entry, as on a quiet bot
    assert 100 <= len(await stored(redis, log.stream)) < 300


async def test_a_batch_is_one_entry_and_reads_back_whole(redis: Redis, keys: Namespace) -> None:
    log = ActivationLog(redis, keys, ActivationSettings())
    log(act(0, kind="event", error="x", reason="y"))
    for n in range(1, activations.BATCH):
        log(act(n, user=f"user{n % 7}"))
    assert await log.flush() == activations.BATCH
    assert await redis.xlen(log.stream) == 1
    records = await log.query(limit=100)
    assert [r["id"] for r in records] == [f"id{n}" for n in range(499, 399, -1)]
    first = (await log.query(kind="event"))[0]
    assert first == {
        "id": "id0",
        "function": "calc",
        "version": "1.0.0",
        "kind": "event",
        "command": None,
        "user": "alice",
        "channel": "test",
        "outcome": "ok",
        "duration": 0.002,
        "error": "x",
        "reason": "y",
        "time": pytest.approx(time.time(), abs=60),
        "entry": first["entry"],
    }
    entry, _, index = first["entry"].partition("/")
    assert (await redis.xrange(log.stream))[0][0] == entry and index == "0"
    assert [r["id"] for r in await log.query(user="USER3", limit=3)] == ["id493", "id486", "id479"]


async def test_records_of_the_older_format_are_still_read(redis: Redis, keys: Namespace) -> None:
    log = ActivationLog(redis, keys, ActivationSettings())
    for n in range(3):
        await redis.xadd(log.stream, old_format(n, user="Bob" if n == 1 else "alice"))
    log(act(3))
    log(act(4, user="bob"))
    await log.flush()
    records = await log.query()
    assert [r["id"] for r in records] == ["id4", "id3", "old2", "old1", "old0"]
    assert [r["id"] for r in await log.query(user="bob")] == ["id4", "old1"]
    old = records[-1]
    assert (old["version"], old["channel"], old["duration"]) == ("0.9.0", None, 0.0015)
    assert old["entry"] == (await redis.xrange(log.stream))[0][0]  # a stream id, as before


async def test_follow_starts_after_a_record_inside_an_entry(redis: Redis, keys: Namespace) -> None:
    log = ActivationLog(redis, keys, ActivationSettings())
    await redis.xadd(log.stream, old_format(0))
    for n in range(1, 5):
        log(act(n, function="dice" if n == 3 else "calc"))
    await log.flush()
    [second] = [r for r in await log.query() if r["id"] == "id2"]
    following = log.follow(function="calc", after=second["entry"], poll=0.05)
    assert (await anext(following))["id"] == "id4"  # id3 is dice's
    log(act(5))
    await log.flush()
    assert (await anext(following))["id"] == "id5"
    await following.aclose()
    old = log.follow(after=(await redis.xrange(log.stream))[0][0], poll=0.05)
    assert (await anext(old))["id"] == "id1"  # after an older entry: the next entry, whole
    await old.aclose()


def test_entries_not_written_by_rosey_are_skipped() -> None:
    assert unpack("1-0", {"records": "{not json"}) == []
    assert unpack("1-0", {"records": '[[1, 2], "x"]'}) == []
    assert unpack("1-0", {"something": "else"}) == []
    row = ["a", "f", "1", "command", None, None, None, "ok", 0.5, "", "", 1.0, "future"]
    [record] = unpack("1-0", {"records": json.dumps([row])})
    assert (record["id"], record["duration"], record["entry"]) == ("a", 0.5, "1-0/0")


async def test_old_records_are_trimmed(redis: Redis, keys: Namespace) -> None:
    old = int((time.time() - 3 * 86400) * 1000)
    for n in range(150):
        await redis.xadd(keys.join("activations"), {"id": f"old{n}"}, id=f"{old}-{n}")
    log = ActivationLog(redis, keys, ActivationSettings(retention=86400))
    assert log.stream == keys.prefix + "activations"  # the stream is a key under the prefix
    log(act(1))
    await log.flush()
    remaining = [record["id"] for record in await stored(redis, log.stream)]
    # XTRIM MINID ~ keeps a partly old node; the node of 100 wholly old entries goes.
    assert remaining[-1] == "id1"
    assert len(remaining) <= 51


async def test_unreachable_redis_never_blocks_or_raises(keys: Namespace) -> None:
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", decode_responses=True)
    log = ActivationLog(dead, keys, ActivationSettings(buffer=3))
    try:
        for n in range(5):
            log(act(n))  # returns at once, Redis or not
        assert [a.id for a in log.buffer] == ["id2", "id3", "id4"]
        assert log.dropped == 2
        with pytest.raises(StoreError, match="write activation records"):
            await log.flush()
        assert [a.id for a in log.buffer] == ["id2", "id3", "id4"]  # kept, in order
        reply = await log.answer(b'{"user": "alice"}')
        assert reply["success"] is False and reply["error_code"] == "DATABASE_ERROR"
    finally:
        await dead.aclose()


@pytest.mark.parametrize(
    ("request_body", "problem"),
    [
        (b"[1]", "expected a JSON object"),
        (b'{"user": 5}', "user: expected a string"),
        (b'{"limit": 0}', "limit: expected a whole number from 1 to 100"),
        (b'{"exclude": "why"}', "exclude: expected a list of function names"),
        (b"{nope", "rosey.activations.query: "),
    ],
)
async def test_bad_queries_are_refused(
    redis: Redis, keys: Namespace, request_body: bytes, problem: str
) -> None:
    log = ActivationLog(redis, keys, ActivationSettings())
    reply = await log.answer(request_body)
    assert reply["success"] is False and reply["error_code"] == "INVALID_INPUT"
    assert problem in reply["error"]


async def test_query_over_nats(make_runtime: MakeRuntime, redis_url: str, bus: Bus) -> None:
    async with operations(make_runtime, redis_url) as operate:
        _, ops = await operate()
        await say(bus, "!ok", user="carol")
        await say(bus, "!secret", user="carol")

        async def two() -> bool:
            reply = await bus.request(activations.QUERY, {"user": "carol"})
            return len(reply["data"]["records"]) == 2

        await until(two)
        reply = await bus.request(activations.QUERY, {"user": "Carol", "function": "calc"})
        found = {(r["command"], r["outcome"], r["reason"]) for r in reply["data"]["records"]}
        assert found == {
            ("ok", "ok", ""),
            ("secret", "denied", "!secret needs rank 2 (you have 0)"),
        }
        reply = await bus.request(activations.QUERY, {"user": "carol", "limit": 1})
        assert len(reply["data"]["records"]) == 1
        reply = await bus.request(activations.QUERY, {"limit": 1000})
        assert reply["success"] is False and "limit" in reply["error"]
        assert ops.activations is not None and ops.activations.written == 2
