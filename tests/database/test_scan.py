"""Queries no index answers: refused above `scan_limit` with the index to declare, read in
bounded chunks below it, and indexed queries untouched by the limit."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from runtime.config.settings import load as load_settings
from runtime.database import query as dbquery
from runtime.database import store as dbstore
from runtime.database.query import ScanRefused
from runtime.database.service import DatabaseService
from runtime.database.store import Store
from runtime.errors import ConfigError, StoreError
from runtime.wire.bus import Bus


@pytest.fixture
def coll() -> str:
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[Store]:
    s = await Store.connect(redis_url, scan_limit=20)
    yield s
    await s.close()


async def fill(store: Store, coll: str, count: int) -> list[dict[str, Any]]:
    """`count` records with a few fields to filter and sort on; returns them as stored."""
    rows = [
        {"author": f"a{n % 5}", "score": n % 13, "tags": ["x"] if n % 3 else []}
        for n in range(count)
    ]
    for start in range(0, count, 100):  # concurrent, within the client's connections
        chunk = range(start, min(start + 100, count))
        await asyncio.gather(*(store.set(coll, n, rows[n]) for n in chunk))
    return [{"id": n, **row} for n, row in enumerate(rows)]


async def test_above_the_limit_the_query_is_refused_naming_the_index(
    store: Store, coll: str
) -> None:
    await fill(store, coll, 21)
    with pytest.raises(ScanRefused) as refused:
        await store.query(coll, {"author": "a1"})
    assert str(refused.value) == (
        f"database query failed: collection {coll} has 21 records, more than "
        "database.scan_limit (20); a query by author without an index would read them all: "
        f"declare an index on it in the manifest (indexes: {{{coll}: [author]}})"
    )
    assert isinstance(refused.value, StoreError) and refused.value.fields == ["author"]
    with pytest.raises(ScanRefused, match=r"database count failed: .* by author or score"):
        await store.count(coll, {"author": "a1", "score": {"$gt": 3}})
    with pytest.raises(ScanRefused, match=r"indexes: \{t\w+: \[score\]\}"):
        await store.query(coll, order_by="score DESC")  # sorting needs the whole collection too
    with pytest.raises(ScanRefused, match="no index can answer this filter"):
        await store.query(coll, {"tags": {"$contains": "x"}})


async def test_below_the_limit_the_answer_is_what_reading_everything_gives(
    redis_url: str, coll: str
) -> None:
    store = await Store.connect(redis_url, scan_limit=1500)
    try:
        everything = await fill(store, coll, 1200)  # more than two chunks of ids and records
        cases: list[tuple[dict[str, Any], Any]] = [
            ({"author": "a1"}, None),
            ({"score": {"$gte": 7}, "author": {"$ne": "a0"}}, ["score DESC", "author"]),
            ({"tags": {"$contains": "x"}}, "author"),
            ({}, ["author DESC", "score"]),
        ]
        for flt, order in cases:
            conditions, orders = dbquery.parse_filter(flt), dbquery.parse_order(order)
            expected, matched = dbquery.select(everything, conditions, orders, 50, 10)
            page = await store.query(coll, flt, order, limit=50, offset=10)
            assert (page.records, page.count) == (expected, matched), flt
            assert await store.count(coll, flt) == matched
    finally:
        await store.close()


async def test_the_scan_reads_in_bounded_chunks(
    redis_url: str, coll: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dbstore, "BATCH", 7)
    store = await Store.connect(redis_url, scan_limit=100)
    try:
        await fill(store, coll, 30)
        reads: list[int] = []
        zrangebylex = store.redis.zrangebylex

        def counted(*args: Any, **kwargs: Any) -> Any:
            reads.append(args[4])  # LIMIT's count
            return zrangebylex(*args, **kwargs)

        def whole(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("the whole id index was read in one call")

        monkeypatch.setattr(store.redis, "zrangebylex", counted)
        monkeypatch.setattr(store.redis, "zrange", whole)
        page = await store.query(coll, {"author": "a2"})
        assert [r["id"] for r in page] == [2, 7, 12, 17, 22, 27]
        assert reads == [7, 7, 7, 7, 7]  # 30 ids, 7 at a time
    finally:
        await store.close()


async def test_indexed_queries_ignore_the_limit(store: Store, coll: str) -> None:
    await store.declare_indexes(coll, ["score", "author"])
    everything = await fill(store, coll, 60)  # three times the limit
    assert [r["id"] for r in await store.query(coll, {"score": 3})] == [3, 16, 29, 42, 55]
    page = await store.query(coll, {"score": {"$gte": 11}}, "score DESC", limit=3)
    assert [(r["score"], r["id"]) for r in page] == [(12, 51), (12, 38), (12, 25)]
    # Candidates from an index, filtered by an unindexed field: read only the index's range.
    assert await store.count(coll, {"author": "a1", "tags": {"$contains": "x"}}) == len(
        [r for r in everything if r["author"] == "a1" and r["tags"]]
    )
    assert [r["id"] for r in await store.query(coll, {"id": {"$in": [59, 0]}})] == [0, 59]
    assert (await store.query(coll, limit=0)).count == 60
    assert await store.count(coll) == 60


async def test_a_limit_of_zero_refuses_every_scan_but_not_an_empty_collection(
    redis_url: str, coll: str
) -> None:
    store = await Store.connect(redis_url, scan_limit=0)
    try:
        assert (await store.query(coll, {"author": "a1"})).records == []
        await store.set(coll, 1, {"author": "a1"})
        with pytest.raises(ScanRefused, match=r"has 1 records, more than database\.scan_limit"):
            await store.query(coll, {"author": "a1"})
        assert await store.get(coll, 1) == {"id": 1, "author": "a1"}
    finally:
        await store.close()


async def test_over_nats_the_refusal_is_a_database_error(bus: Bus, store: Store, coll: str) -> None:
    await fill(store, coll, 25)
    service = DatabaseService(bus, store)
    await service.start()
    try:
        data = json.dumps({"collection": coll, "filter": {"author": "a1"}}).encode()
        reply = json.loads((await bus.nc.request("database.query", data, timeout=5)).data)
    finally:
        await service.stop()
    assert reply["success"] is False and reply["error_code"] == "DATABASE_ERROR"
    assert (
        f"declare an index on it in the manifest (indexes: {{{coll}: [author]}})"
        in (reply["error"])
    )


def test_index_hint_names_only_fields_an_index_helps() -> None:
    def hint(flt: dict[str, Any], order: Any = None) -> list[str]:
        return dbquery.index_hint(dbquery.parse_filter(flt), dbquery.parse_order(order))

    assert hint({"author": "bob", "score": {"$lt": 3}}) == ["author", "score"]
    assert hint({"author": {"$in": ["a", "b"]}, "tags": {"$contains": "x"}}) == ["author"]
    assert hint({"author": {"$ne": "bob"}}) == []
    assert hint({"author": ["a", "list"]}) == []  # only scalars are looked up in an index
    assert hint({}, "score DESC") == ["score"]
    assert hint({}, ["score", "author"]) == []  # one index orders by one field only


def test_scan_limit_is_a_setting(tmp_path: Path) -> None:
    path = tmp_path / "rosey.yaml"
    path.write_text("database: {scan_limit: 5000}\n")
    assert load_settings(path, environ={}).database.scan_limit == 5000
    assert load_settings(path, environ={"ROSEY_DATABASE_SCAN_LIMIT": "0"}).database.scan_limit == 0
    assert load_settings(None, environ={}).database.scan_limit == dbstore.DEFAULT_SCAN_LIMIT
    path.write_text("database: {scan_limit: -1}\n")
    settings = load_settings(path, environ={})
    with pytest.raises(ConfigError, match=r"database\.scan_limit: expected 0 or more"):
        settings.check(plugins=False)
