"""database.* through a real nats-server and redis-server: the service, the client, failures."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from nats.aio.msg import Msg

from runtime.config import manifest
from runtime.constants import MAX_PAYLOAD, ErrorCode
from runtime.database.client import DatabaseClient
from runtime.database.service import DatabaseFailure, DatabaseService
from runtime.database.store import Store
from runtime.errors import CollectionDenied, ContractError, ManifestError, StoreError
from runtime.host.servers import EmbeddedRedis
from runtime.wire.bus import Bus


@pytest.fixture
def coll() -> str:
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[Store]:
    s = await Store.connect(redis_url)
    yield s
    await s.close()


@pytest.fixture
async def service(bus: Bus, store: Store) -> AsyncIterator[DatabaseService]:
    svc = DatabaseService(bus, store)
    await svc.start()
    yield svc
    await svc.stop()


async def ask(bus: Bus, operation: str, payload: Any) -> dict[str, Any]:
    """A raw request, bypassing every client-side check."""
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    msg = await bus.nc.request(f"database.{operation}", data, timeout=5)
    reply: dict[str, Any] = json.loads(msg.data)
    return reply


async def test_every_operation_over_nats(bus: Bus, service: DatabaseService, coll: str) -> None:
    assert await ask(bus, "set", {"collection": coll, "id": None, "data": {"q": "hi", "n": 1}}) == {
        "success": True,
        "id": 1,
    }
    await ask(bus, "set", {"collection": coll, "id": "bob", "data": {"q": "yo", "n": 5}})
    got = await ask(bus, "get", {"collection": coll, "id": 1})
    assert got == {"success": True, "data": {"id": 1, "q": "hi", "n": 1}}
    updated = await ask(
        bus, "update", {"collection": coll, "id": 1, "data": {"q": "hey"}, "inc": {"n": 2}}
    )
    assert updated == {"success": True, "data": {"id": 1, "q": "hey", "n": 3}}
    query = {"collection": coll, "filter": {"n": {"$gte": 2}}, "order_by": "n DESC", "limit": 1}
    assert await ask(bus, "query", query) == {
        "success": True,
        "data": [{"id": "bob", "q": "yo", "n": 5}],
        "count": 2,
    }
    assert await ask(bus, "count", {"collection": coll}) == {"success": True, "count": 2}
    assert (await ask(bus, "delete", {"collection": coll, "id": "bob"}))["success"] is True
    for operation, payload in [
        ("get", {"collection": coll, "id": "bob"}),
        ("update", {"collection": coll, "id": "bob", "inc": {"n": 1}}),
        ("delete", {"collection": coll, "id": "bob"}),
    ]:
        reply = await ask(bus, operation, payload)
        assert reply["success"] is False
        assert reply["error_code"] == "RECORD_NOT_FOUND"
        assert "bob" in reply["error"]
    assert await ask(bus, "count", {"collection": coll, "filter": {"q": "hey"}}) == {
        "success": True,
        "count": 1,
    }


def big(n: int) -> str:
    return "x" * n


INVALID: list[tuple[str, Any, str]] = [
    ("get", {"id": 1}, "collection: required field is missing"),
    ("get", {"collection": "no spaces", "id": 1}, "collection: 'no spaces' is not valid"),
    ("get", {"collection": "c" * 65, "id": 1}, "collection:"),
    ("get", {"collection": "c"}, "id: required field is missing"),
    ("get", {"collection": "c", "id": True}, "id: True is not valid"),
    ("get", {"collection": "c", "id": -5}, "id: -5 is not valid"),
    ("get", {"collection": "c", "id": 1, "extra": 1}, "extra: unknown field"),
    ("get", [1, 2], "(top level)"),
    ("get", b"{not json", "payload is not JSON"),
    ("get", b"", "(top level)"),
    ("set", {"collection": "c", "id": None}, "data: required field is missing"),
    ("set", {"collection": "c", "id": None, "data": [1]}, "data: [1] is not valid"),
    ("set", {"collection": "c", "id": None, "data": {"id": 7}}, "data.id:"),
    (
        "set",
        {"collection": "c", "id": None, "data": {"x": big(MAX_PAYLOAD)}},
        "over the 65536 limit",
    ),
    ("set", b'{"collection": "c", "id": null, "data": {"x": NaN}}', "NaN is not a finite number"),
    ("set", b"[" * 5000 + b"]" * 5000, "nested too deeply"),
    ("update", {"collection": "c", "id": 1, "inc": {"n": "1"}}, "inc.n: '1' is not valid"),
    ("update", {"collection": "c", "id": 1, "data": {"n": 1}, "inc": {"n": 1}}, "inc.n:"),
    (
        "query",
        {"collection": "c", "filter": {"a": {"$regex": "x"}}},
        "filter.a: unknown operator $regex",
    ),
    ("query", {"collection": "c", "filter": {"a": {"$in": 1}}}, "filter.a.$in"),
    ("query", {"collection": "c", "filter": [1]}, "filter: [1] is not valid"),
    ("query", {"collection": "c", "limit": 1001}, "limit: 1001 is greater than the maximum"),
    ("query", {"collection": "c", "limit": "5"}, "limit: '5' is not of type 'integer'"),
    ("query", {"collection": "c", "offset": -1}, "offset: -1 is less than the minimum"),
    ("query", {"collection": "c", "order_by": 3}, "order_by: 3 is not valid"),
    ("query", {"collection": "c", "order_by": ["a", 1]}, "order_by[1]"),
    ("count", {"collection": "c", "filter": {"a": {"$gt": [1]}}}, "filter.a.$gt"),
    ("delete", {"collection": "c", "id": ""}, "id: '' is not valid"),
]


@pytest.mark.parametrize(("operation", "payload", "problem"), INVALID)
async def test_bad_input_is_invalid_input_naming_the_field(
    bus: Bus, service: DatabaseService, store: Store, operation: str, payload: Any, problem: str
) -> None:
    await store.set("c", 1, {"n": 1, "s": "x"})
    reply = await ask(bus, operation, payload)
    assert reply["success"] is False
    assert reply["error_code"] == "INVALID_INPUT"
    assert problem in reply["error"]
    # Nothing was written: the one record is as it was, and no other appeared.
    assert await store.get("c", 1) == {"id": 1, "n": 1, "s": "x"}
    assert await store.count("c") == 1


async def test_redis_restart_gives_database_error_then_recovers(
    bus: Bus, tmp_path: Path, coll: str
) -> None:
    redis = EmbeddedRedis(tmp_path / "redis")
    url = redis.start()
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    store = await Store.connect(url)
    service = DatabaseService(bus, store, request_timeout=3.0)
    await service.start()
    try:
        assert (await ask(bus, "set", {"collection": coll, "id": 1, "data": {"a": 1}}))["success"]
        redis.stop()
        for operation, payload in [
            ("get", {"collection": coll, "id": 1}),
            ("set", {"collection": coll, "id": None, "data": {}}),
            ("query", {"collection": coll}),
        ]:
            reply = await ask(bus, operation, payload)
            assert (reply["success"], reply["error_code"]) == (False, "DATABASE_ERROR")
        redis.start(port)
        # The first request after Redis returns succeeds, and the data survived the restart.
        assert await ask(bus, "get", {"collection": coll, "id": 1}) == {
            "success": True,
            "data": {"id": 1, "a": 1},
        }
        assert (await ask(bus, "set", {"collection": coll, "id": None, "data": {}}))["id"] == 2
    finally:
        await service.stop()
        await store.close()
        redis.stop()


class SlowStore:
    """Stands in for a Store whose get waits until released, counting calls in progress."""

    def __init__(self) -> None:
        self.inside = 0
        self.most = 0
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def get(self, collection: str, record_id: Any) -> dict[str, Any]:
        self.inside += 1
        self.most = max(self.most, self.inside)
        self.entered.set()
        await self.release.wait()
        self.inside -= 1
        return {"id": record_id}


async def test_requests_in_flight_are_bounded(bus: Bus) -> None:
    slow = SlowStore()
    service = DatabaseService(bus, slow, max_in_flight=2)  # type: ignore[arg-type]
    await service.start()
    try:
        sent = [
            asyncio.create_task(ask(bus, "get", {"collection": "c", "id": i})) for i in range(10)
        ]
        await slow.entered.wait()
        # Each flush brings every request sent so far into the service's client; the yield lets
        # its dispatcher hand them on, which a broken bound does at once. (sleep(0) is a turn of
        # the loop, not a wait for time.)
        for _ in range(3):
            await bus.flush()
            await asyncio.sleep(0)
        assert slow.inside == 2
        assert sum(len(b.tasks) for b in service.bindings) == 2
        slow.release.set()
        replies = await asyncio.gather(*sent)
        assert [r["data"]["id"] for r in replies] == list(range(10))
        assert slow.most == 2
    finally:
        await service.stop()


# The client handlers get as ctx.db


async def test_client_round_trip(bus: Bus, service: DatabaseService, coll: str) -> None:
    db = DatabaseClient(bus, "quotes", (coll,))
    rid = await db.set(coll, None, {"text": "hi", "score": 1, "tags": ["x"]})
    assert await db.get(coll, rid) == {"id": rid, "text": "hi", "score": 1, "tags": ["x"]}
    assert await db.update(coll, rid, {"text": "ho"}, {"score": 2}) == {
        "id": rid,
        "text": "ho",
        "score": 3,
        "tags": ["x"],
    }
    await db.set(coll, "b", {"score": 9})
    page = await db.query(coll, {"score": {"$gt": 0}}, "score DESC", limit=1)
    assert ([r["id"] for r in page], page.count) == (["b"], 2)
    assert await db.count(coll) == 2
    assert await db.delete(coll, "b") is True
    assert await db.delete(coll, "b") is False
    assert await db.get(coll, "b") is None
    assert await db.update(coll, "b", {"x": 1}) is None


async def test_client_refuses_undeclared_collections_before_sending(
    bus: Bus, service: DatabaseService
) -> None:
    seen: list[str] = []

    async def spy(msg: Msg) -> None:
        seen.append(msg.subject)

    await bus.nc.subscribe("database.>", cb=spy)
    db = DatabaseClient(bus, "quotes", ("quotes",))
    for call in (
        db.get("users", 1),
        db.set("users", None, {}),
        db.query("users"),
        db.count("users"),
    ):
        with pytest.raises(CollectionDenied) as info:
            await call
        assert info.value.code == ErrorCode.PERMISSION_DENIED
        assert "'users'" in str(info.value) and "quotes" in str(info.value)
    await db.count("quotes")  # a request that is sent, to show the spy works
    await bus.flush()
    assert seen == ["database.count"]


async def test_client_raises_store_errors_with_the_reply_code(
    bus: Bus, service: DatabaseService, coll: str
) -> None:
    db = DatabaseClient(bus, "f", (coll, "bad name"))
    with pytest.raises(DatabaseFailure) as info:
        await db.query(coll, {"a": {"$nope": 1}})
    assert isinstance(info.value, StoreError)
    assert info.value.code == ErrorCode.INVALID_INPUT
    assert "filter.a: unknown operator $nope" in str(info.value)
    with pytest.raises(ContractError, match="collection"):  # refused locally, by the contract
        await db.get("bad name", 1)


async def test_client_without_a_service(fresh_nats: Any) -> None:
    bus = await Bus.connect(fresh_nats.url)
    try:
        with pytest.raises(DatabaseFailure) as info:
            await DatabaseClient(bus, "f", ("c",), timeout=1).get("c", 1)
        assert info.value.code == ErrorCode.NATS_ERROR
    finally:
        await bus.close()


async def test_large_query_replies_pass_up_to_the_server_limit(
    bus: Bus, service: DatabaseService, store: Store, coll: str
) -> None:
    for i in range(40):
        await store.set(coll, i, {"text": "x" * 5000})
    db = DatabaseClient(bus, "f", (coll,))
    page = await db.query(coll, limit=40)  # ~200 kB: over MAX_PAYLOAD, under max_payload
    assert len(page) == 40
    for i in range(40, 260):
        await store.set(coll, i, {"text": "x" * 5000})
    with pytest.raises(DatabaseFailure, match="max_payload") as info:
        await db.query(coll, limit=260)
    assert info.value.code == ErrorCode.INVALID_INPUT


# Manifests declare indexes


def test_manifest_indexes() -> None:
    base = {"name": "q", "version": "1.0.0", "description": "x", "handler": "q:h"}
    f = manifest.parse(
        {**base, "collections": ["quotes"], "indexes": {"quotes": ["score", "user"]}}
    )
    assert f.indexes == {"quotes": ("score", "user")}
    assert manifest.parse(base).indexes == {}
    for indexes, problem in [
        ({"users": ["a"]}, "indexes.users: not one of the manifest's collections"),
        ({"quotes": ["id"]}, "indexes.quotes[0]"),
        ({"quotes": "score"}, "indexes.quotes"),
    ]:
        with pytest.raises(ManifestError) as info:
            manifest.parse({**base, "collections": ["quotes"], "indexes": indexes})
        assert problem in str(info.value)
