"""The Store against a real redis-server: every operation and operator, indexes, concurrency."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.crc import key_slot

from runtime.config.keys import Namespace
from runtime.constants import ErrorCode
from runtime.database import codec as dbcodec
from runtime.database import query as dbquery
from runtime.database import scripts as dbscripts
from runtime.database.service import DatabaseFailure
from runtime.database.store import Store, connect_client
from runtime.errors import ConfigError, ContractError, StoreError
from runtime.host.servers import free_port
from tests.fakedb import FakeDb


def new_name() -> str:
    return "t" + uuid.uuid4().hex[:12]


def strict(value: Any) -> str:
    """Equality that tells 1 from 1.0 and True from 1."""
    return json.dumps(value, sort_keys=True)


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[Store]:
    s = await Store.connect(redis_url)
    yield s
    await s.close()


@pytest.fixture
def coll() -> str:
    return new_name()


@pytest.fixture
def sync_store(redis_url: str) -> Iterator[tuple[asyncio.Runner, Store]]:
    """For hypothesis, which drives sync tests: a Store on a loop of the test's own."""
    with asyncio.Runner() as runner:
        s = runner.run(Store.connect(redis_url))
        yield runner, s
        runner.run(s.close())


# Operations


async def test_set_allocates_ids_and_get_returns_the_record(store: Store, coll: str) -> None:
    first = await store.set(coll, None, {"text": "hi", "n": 1})
    second = await store.set(coll, None, {"text": "yo"})
    assert (first, second) == (1, 2)
    assert await store.get(coll, 1) == {"id": 1, "text": "hi", "n": 1}
    assert await store.get(coll, "1") == {"id": 1, "text": "hi", "n": 1}  # "1" is the id 1
    assert await store.get(coll, 3) is None


async def test_string_ids_and_explicit_integer_ids(store: Store, coll: str) -> None:
    assert await store.set(coll, "alice", {"score": 3}) == "alice"
    assert await store.set(coll, "007", {}) == "007"  # not the canonical form of 7: a string
    assert await store.set(coll, 2, {"x": 1}) == 2
    # Allocation skips ids already taken explicitly.
    assert [await store.set(coll, None, {}) for _ in range(3)] == [1, 3, 4]
    assert await store.get(coll, "alice") == {"id": "alice", "score": 3}
    assert await store.get(coll, "007") == {"id": "007"}


async def test_set_replaces_the_whole_record(store: Store, coll: str) -> None:
    await store.set(coll, 5, {"a": 1, "b": 2})
    await store.set(coll, 5, {"c": 3, "id": 5})  # repeating the same id in data is allowed
    assert await store.get(coll, 5) == {"id": 5, "c": 3}


async def test_ids_are_never_reused_after_delete(store: Store, coll: str) -> None:
    assert await store.set(coll, None, {}) == 1
    assert await store.delete(coll, 1)
    assert await store.set(coll, None, {}) == 2


async def test_delete(store: Store, coll: str) -> None:
    await store.set(coll, "x", {"a": 1})
    assert await store.delete(coll, "x") is True
    assert await store.get(coll, "x") is None
    assert await store.delete(coll, "x") is False
    assert await store.count(coll) == 0


async def test_update_sets_fields_and_adds_atomically(store: Store, coll: str) -> None:
    await store.set(coll, 1, {"name": "a", "score": 10, "ratio": 0.5, "keep": [1]})
    after = await store.update(coll, 1, {"name": "b"}, {"score": 5, "ratio": 0.25, "new": 2})
    assert after == {"id": 1, "name": "b", "score": 15, "ratio": 0.75, "keep": [1], "new": 2}
    assert strict(after) == strict(await store.get(coll, 1))


async def test_increment_keeps_number_types(store: Store, coll: str) -> None:
    await store.set(coll, 1, {"i": 1, "f": 1.5, "whole": 2.0})
    after = await store.update(coll, 1, inc={"i": 2, "f": 0.5, "whole": 1, "g": 1.0, "h": -3})
    assert after is not None
    assert strict(after) == strict({"id": 1, "i": 3, "f": 2.0, "whole": 3.0, "g": 1.0, "h": -3})
    after = await store.update(coll, 1, inc={"i": 0.1, "f": 0.1})
    assert after is not None
    assert after["i"] == 3.1 and after["f"] == 2.1  # float addition, exactly as Python does it
    assert (after["i"], after["f"]) == (3 + 0.1, 2.0 + 0.1)


async def test_update_of_a_missing_record_is_none(store: Store, coll: str) -> None:
    assert await store.update(coll, 9, {"a": 1}) is None
    assert await store.update(coll, 9, inc={"a": 1}) is None
    assert await store.count(coll) == 0


async def test_increment_refusals_write_nothing(store: Store, coll: str) -> None:
    await store.set(coll, 1, {"s": "text", "n": 1, "big": 2**53})
    with pytest.raises(ContractError, match=r"inc\.s: the stored value is not a number"):
        await store.update(coll, 1, {"other": 5}, {"n": 1, "s": 1})
    with pytest.raises(ContractError, match=r"inc\.big: integers"):
        await store.update(coll, 1, inc={"big": 1})
    with pytest.raises(ContractError, match=r"inc\.n: the field is also in data"):
        await store.update(coll, 1, {"n": 2}, {"n": 1})
    with pytest.raises(ContractError, match=r"inc\.n: expected a number"):
        await store.update(coll, 1, inc={"n": True})
    with pytest.raises(ContractError, match=r"inc\.id"):
        await store.update(coll, 1, inc={"id": 1})
    assert await store.get(coll, 1) == {"id": 1, "s": "text", "n": 1, "big": 2**53}


async def test_bad_arguments_name_the_field(store: Store, coll: str) -> None:
    cases: list[tuple[Any, str]] = [
        (store.get("no space", 1), "collection"),
        (store.get(coll, -1), "id"),
        (store.get(coll, True), "id"),
        (store.get(coll, "a\nb"), "id"),
        (store.set(coll, None, {"id": 3}), "data.id"),
        (store.set(coll, 1, {"id": 2}), "data.id"),
        (store.set(coll, 1, {"x": float("nan")}), "data.x"),
        (store.set(coll, 1, {"x": "\ud800"}), "data.x"),
        (store.query(coll, {"a": {"$regex": "x"}}), "filter.a: unknown operator $regex"),
        (store.query(coll, {"a": {"$in": 3}}), "filter.a.$in"),
        (store.query(coll, {"a": {"$gt": [1]}}), "filter.a.$gt"),
        (store.query(coll, {"a": {"$gt": 1, "b": 2}}), "filter.a: mixes"),
        (store.query(coll, order_by=["a", "b SIDEWAYS x", " "]), "order_by[2]"),
        (store.query(coll, limit=1001), "limit"),
        (store.query(coll, offset=-1), "offset"),
    ]
    for call, field in cases:
        with pytest.raises(ContractError) as info:
            await call
        assert field in str(info.value)
        assert info.value.code == ErrorCode.INVALID_INPUT
    assert await store.count(coll) == 0


async def test_prefix_must_not_break_the_hash_tag(redis_url: str) -> None:
    with pytest.raises(ConfigError) as info:
        Namespace("a{b}:")
    assert (info.value.key, info.value.problem) == (
        "redis.prefix",
        "'a{b}:' must not contain braces",
    )
    with pytest.raises(ConfigError, match="braces"):
        await Store.connect(redis_url, prefix="a}b:")


async def test_keys_are_as_before_the_namespace(redis_url: str, coll: str) -> None:
    """Data written before every key had the prefix stays readable: the same keys, by default
    and under a configured prefix."""
    for prefix in ("rosey:db:", f"mine{coll}:"):
        client = connect_client(redis_url)
        try:
            store = Store(client, Namespace(prefix))
            await store.set(coll, "amy", {"n": 1})
            assert await client.hget(f"{prefix}{{{coll}}}:r:amy", "n") is not None
            assert await client.zscore(f"{prefix}{{{coll}}}:ids", dbcodec.id_key("amy")) == 0
            await store.close()  # not its client: still open
            assert await client.ping()
        finally:
            await client.aclose()


async def test_collection_keys_share_one_cluster_slot(store: Store, coll: str) -> None:
    await store.declare_indexes(coll, ["score"])
    await store.set(coll, None, {"score": 1})
    await store.set(coll, "bob", {"score": 2})
    await store.update(coll, "bob", inc={"score": 1})
    keys = [k async for k in store.redis.scan_iter(f"rosey:db:{{{coll}}}:*")]
    assert {k.split(":", 3)[3].split(":")[0] for k in keys} >= {"r", "ids", "seq", "meta", "i"}
    assert len({key_slot(k.encode()) for k in keys}) == 1


async def test_redis_failures_are_store_errors(redis_url: str) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    with pytest.raises(StoreError) as info:
        await Store.connect(dead)
    assert info.value.code == ErrorCode.DATABASE_ERROR
    client = connect_client(dead)
    store = Store(client, Namespace())
    try:
        for call in (store.get("c", 1), store.set("c", None, {}), store.query("c")):
            with pytest.raises(StoreError) as info:
                await call
            assert info.value.code == ErrorCode.DATABASE_ERROR
    finally:
        await client.aclose()


# Concurrency


async def test_200_concurrent_writers_get_distinct_ids_without_gaps(
    store: Store, coll: str
) -> None:
    ids = await asyncio.gather(*(store.set(coll, None, {"n": i}) for i in range(200)))
    assert sorted(ids) == list(range(1, 201))  # type: ignore[type-var]
    assert await store.count(coll) == 200


async def test_concurrent_increments_are_not_lost(store: Store, coll: str) -> None:
    await store.declare_indexes(coll, ["hits"])
    await store.set(coll, "page", {"hits": 0, "time": 0.0})
    await asyncio.gather(
        *(store.update(coll, "page", inc={"hits": 1, "time": 0.5}) for _ in range(200))
    )
    record = await store.get(coll, "page")
    assert strict(record) == strict({"id": "page", "hits": 200, "time": 100.0})
    page = await store.query(coll, {"hits": 200})
    assert [r["id"] for r in page] == ["page"]


async def test_a_retried_write_is_applied_once(store: Store, coll: str) -> None:
    # redis-py resends a command whose reply was lost; the token makes the resend a no-op.
    base = store.base(coll)
    keys, args = [base + "ids", base + "meta", base + "seq"], [base, "tok1", "", "", "", "a", "1"]
    first = await store.redis.eval(dbscripts.SET, 3, *keys, *args)
    again = await store.redis.eval(dbscripts.SET, 3, *keys, *args)
    assert first == again == "i0000000000000001"
    assert await store.count(coll) == 1
    update = [base, "tok2", "1", "i0000000000000001", 0, "a", "5"]
    await store.redis.eval(dbscripts.UPDATE, 1, base + "meta", *update)
    await store.redis.eval(dbscripts.UPDATE, 1, base + "meta", *update)
    assert await store.get(coll, 1) == {"id": 1, "a": 6}


# Queries

ROWS: list[tuple[Any, dict[str, Any]]] = [
    (1, {"name": "ann", "score": 10, "tags": ["a", "b"], "ok": True}),
    (2, {"name": "bob", "score": 7.5, "tags": ["b"], "ok": False}),
    (3, {"name": "cid", "score": 10, "tags": [], "ok": None}),
    (4, {"name": "dee", "score": "ten"}),
    (5, {"name": "Éva", "score": -2}),
    ("z", {"name": "zed", "score": 1, "nested": {"a": 1}}),
]

OPERATOR_CASES: list[tuple[dict[str, Any], list[Any]]] = [
    ({"score": 10}, [1, 3]),
    ({"score": 10.0}, [1, 3]),
    ({"score": {"$eq": "ten"}}, [4]),
    ({"score": {"$ne": 10}}, [2, 4, 5, "z"]),
    ({"score": {"$gt": 7.5}}, [1, 3]),
    ({"score": {"$gte": 7.5}}, [1, 2, 3]),
    ({"score": {"$lt": 7.5}}, [5, "z"]),
    ({"score": {"$lte": 1}}, [5, "z"]),
    ({"score": {"$gt": 0, "$lt": 10}}, [2, "z"]),
    ({"score": {"$gt": "a"}}, [4]),
    ({"name": {"$gte": "bob", "$lt": "dee"}}, [2, 3]),
    ({"name": {"$gt": "zed"}}, [5]),  # "É" sorts after "z" (code point order)
    ({"score": {"$in": [10, "ten", 99]}}, [1, 3, 4]),
    ({"score": {"$nin": [10, "ten"]}}, [2, 5, "z"]),
    ({"tags": {"$contains": "b"}}, [1, 2]),
    ({"name": {"$contains": "e"}}, [4, "z"]),
    ({"tags": []}, [3]),
    ({"tags": ["b"]}, [2]),
    ({"nested": {"a": 1}}, ["z"]),
    ({"nested": {"$eq": {"a": 1}}}, ["z"]),
    ({"ok": True}, [1]),
    ({"ok": 1}, []),  # true is not 1
    ({"ok": None}, [3]),  # null is not missing
    ({"ok": {"$ne": None}}, [1, 2, 4, 5, "z"]),
    ({"missing": {"$nin": [1]}}, [1, 2, 3, 4, 5, "z"]),
    ({"score": 10, "name": "cid"}, [3]),
    ({"id": 3}, [3]),
    ({"id": "3"}, [3]),
    ({"id": {"$in": ["z", 1, "nope"]}}, [1, "z"]),
    ({"id": {"$gt": 3}}, [4, 5]),
    ({}, [1, 2, 3, 4, 5, "z"]),
]


@pytest.fixture
async def rows(store: Store) -> tuple[str, str]:
    """The same records in two collections: one with indexes, one without."""
    plain, indexed = new_name(), new_name()
    await store.declare_indexes(indexed, ["score", "name", "ok", "tags"])
    for rid, data in ROWS:
        await store.set(plain, rid, data)
        await store.set(indexed, rid, data)
    return plain, indexed


@pytest.mark.parametrize(("flt", "expected"), OPERATOR_CASES)
async def test_operators(
    store: Store, rows: tuple[str, str], flt: dict[str, Any], expected: list[Any]
) -> None:
    for coll in rows:
        page = await store.query(coll, flt)
        assert [r["id"] for r in page] == expected, coll
        assert page.count == len(expected)
        assert await store.count(coll, flt) == len(expected)


ORDER_CASES: list[tuple[Any, list[Any]]] = [
    (None, [1, 2, 3, 4, 5, "z"]),
    ("id DESC", ["z", 5, 4, 3, 2, 1]),
    ("score", [5, "z", 2, 1, 3, 4]),  # numbers before strings; ties by id
    ("score DESC", [4, 3, 1, 2, "z", 5]),  # ties by id, in the last entry's direction
    ("score asc", [5, "z", 2, 1, 3, 4]),
    (["score DESC", "name DESC"], [4, 3, 1, 2, "z", 5]),
    (["score DESC", "name"], [4, 1, 3, 2, "z", 5]),
    ("ok", [4, 5, "z", 3, 2, 1]),  # missing, null, false, true
    (["tags", "name DESC"], [5, "z", 4, 3, 2, 1]),  # "É" > "z"; lists tie
]


@pytest.mark.parametrize(("order", "expected"), ORDER_CASES)
async def test_order_by(
    store: Store, rows: tuple[str, str], order: Any, expected: list[Any]
) -> None:
    for coll in rows:
        page = await store.query(coll, order_by=order)
        assert [r["id"] for r in page] == expected, coll


async def test_limit_offset_and_count(store: Store, rows: tuple[str, str]) -> None:
    for coll in rows:
        page = await store.query(coll, {"score": {"$gte": 0}}, "score DESC", limit=2, offset=1)
        assert ([r["id"] for r in page], page.count) == ([1, 2], 4)
        page = await store.query(coll, order_by="score", limit=2, offset=5)
        assert ([r["id"] for r in page], page.count) == ([4], 6)
        page = await store.query(coll, limit=0)
        assert (page.records, page.count) == ([], 6)
        assert len(await store.query(coll, {"score": 10}, offset=9)) == 0


async def test_limit_defaults_to_100(store: Store, coll: str) -> None:
    await asyncio.gather(*(store.set(coll, None, {}) for _ in range(150)))
    page = await store.query(coll)
    assert (len(page), page.count) == (100, 150)


def test_indexed_queries_plan_without_scanning() -> None:
    indexed = frozenset({"score", "name"})

    def kinds(flt: dict[str, Any], order: Any = None) -> str:
        plans = dbquery.plan(dbquery.parse_filter(flt), dbquery.parse_order(order), indexed)
        return plans[0].kind

    assert kinds({"score": {"$gte": 5}}, "score DESC") == "page"
    assert kinds({"score": 5}) == "page"
    assert kinds({}, "name") == "page"
    assert kinds({}) == "page"
    assert kinds({"score": {"$gte": 5}}) == "candidates"
    assert kinds({"score": {"$in": [1, 2]}}, "name") == "candidates"
    assert kinds({"score": 5, "other": 1}) == "candidates"
    assert kinds({"id": 5}) == "candidates"
    assert kinds({"other": 1}) == "scan"
    assert kinds({}, "other") == "scan"


async def test_index_declared_after_the_data_is_built(store: Store, coll: str) -> None:
    for i in range(1200):  # more than one backfill batch
        await store.set(coll, None, {"n": i % 7})
    await store.declare_indexes(coll, ["n"])
    assert await store.indexes(coll) == {"n": "ready"}
    assert await store.count(coll, {"n": 3}) == len([i for i in range(1200) if i % 7 == 3])
    top = await store.query(coll, order_by="n DESC", limit=3)
    assert [r["n"] for r in top] == [6, 6, 6]


async def test_a_dropped_index_is_not_used_by_a_store_that_cached_it(
    store: Store, redis_url: str, coll: str
) -> None:
    await store.declare_indexes(coll, ["n"])
    for i in range(10):
        await store.set(coll, i, {"n": i})
    assert await store.count(coll, {"n": {"$gte": 5}}) == 5  # caches n as ready
    other = await Store.connect(redis_url)
    try:
        await other.drop_indexes(coll, ["n"])
    finally:
        await other.close()
    assert await store.count(coll, {"n": {"$gte": 5}}) == 5
    assert [r["id"] for r in await store.query(coll, {"n": {"$in": [1, 2]}})] == [1, 2]


# Property tests

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    scalars | st.integers(),  # unbounded integers too: stored values are JSON text
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
field_names = st.text(min_size=1, max_size=10).filter(lambda s: s != "id")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.dictionaries(field_names, json_values, max_size=6))
def test_values_round_trip_with_their_types(
    sync_store: tuple[asyncio.Runner, Store], data: dict[str, Any]
) -> None:
    runner, store = sync_store
    coll = new_name()
    rid = runner.run(store.set(coll, None, data))
    assert strict(runner.run(store.get(coll, rid))) == strict({"id": rid, **data})


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.lists(scalars | st.integers() | st.lists(scalars, max_size=2), max_size=30))
def test_lua_and_python_build_the_same_index_keys(
    sync_store: tuple[asyncio.Runner, Store], values: list[Any]
) -> None:
    runner, store = sync_store
    script = (
        dbscripts.PRELUDE
        + """
local out = {}
for i = 1, #ARGV do out[i] = vkey(ARGV[i]) end
out[#ARGV + 1] = vkey(false)
return out
"""
    )
    texts = [dbcodec.encode_value(v, "v") for v in values]
    got = runner.run(store.redis.eval(script, 0, *texts))
    expected = [dbcodec.value_key(v).decode() for v in values] + ["0"]
    assert got == expected


query_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-20, max_value=20),
    st.sampled_from([0.5, -1.5, 2.0, 1e300]),
    st.sampled_from(["", "a", "ab", "b", "a\x00", "é", "Z"]),
    st.just(["a"]),
)
conditions = st.one_of(
    query_values,
    st.builds(
        lambda op, v: {op: v},
        st.sampled_from(["$eq", "$ne", "$contains"]),
        query_values,
    ),
    st.builds(
        lambda op, v: {op: v},
        st.sampled_from(["$gt", "$gte", "$lt", "$lte"]),
        st.integers(min_value=-20, max_value=20) | st.sampled_from(["", "a", "b", "é"]),
    ),
    st.builds(
        lambda op, v: {op: v}, st.sampled_from(["$in", "$nin"]), st.lists(query_values, max_size=3)
    ),
    st.builds(
        lambda lo, hi: {"$gte": lo, "$lt": hi},
        st.integers(min_value=-20, max_value=20),
        st.integers(min_value=-20, max_value=20),
    ),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    records=st.lists(
        st.dictionaries(st.sampled_from(["a", "b"]), query_values, max_size=2), max_size=12
    ),
    flt=st.dictionaries(st.sampled_from(["a", "b"]), conditions, max_size=2),
    order=st.none() | st.sampled_from(["a", "a DESC", "b", "b DESC", ["a DESC", "b"], "id DESC"]),
    offset=st.integers(min_value=0, max_value=3),
    changes=st.lists(
        st.tuples(
            st.sampled_from(["set", "update", "inc", "delete"]),
            st.integers(min_value=0, max_value=11),
            query_values,
        ),
        max_size=6,
    ),
)
def test_indexed_queries_answer_as_unindexed_ones(
    sync_store: tuple[asyncio.Runner, Store],
    records: list[dict[str, Any]],
    flt: dict[str, Any],
    order: Any,
    offset: int,
    changes: list[tuple[str, int, Any]],
) -> None:
    runner, store = sync_store
    plain, indexed = new_name(), new_name()

    async def run() -> None:
        await store.declare_indexes(indexed, ["a", "b"])
        for i, record in enumerate(records):
            await store.set(plain, i, record)
            await store.set(indexed, i, record)
        # Later writes must move index entries, not only add them.
        for op, i, value in changes:
            for coll in (plain, indexed):
                if op == "set":
                    await store.set(coll, i, {"b": value})
                elif op == "update":
                    await store.update(coll, i, {"a": value})
                elif op == "inc":
                    with contextlib.suppress(ContractError):  # a non-number: refused alike
                        await store.update(coll, i, inc={"a": 3})
                else:
                    await store.delete(coll, i)
        expected = await store.query(plain, flt, order, limit=5, offset=offset)
        got = await store.query(indexed, flt, order, limit=5, offset=offset)
        assert strict(got.records) == strict(expected.records)
        assert got.count == expected.count
        # The indexes hold exactly one entry per record: its current value.
        everything = await store.query(plain, limit=1000)
        for name in ("a", "b"):
            key = store.base(indexed) + "i:" + name
            held = set(await store.redis.zrange(key, 0, -1))
            wanted = {
                dbcodec.member(r.get(name, dbcodec.MISSING), r["id"]).decode() for r in everything
            }
            assert held == wanted
        # And the unindexed answer is the plain reading of the filter.
        conditions = dbquery.parse_filter(flt)
        assert expected.count == len([r for r in everything if dbquery.matches(r, conditions)])

    runner.run(run())


# The function tests' in-memory ctx.db (tests/fnkit.py FakeDb) answers as the Store does.


def fake_rows() -> FakeDb:
    db = FakeDb()
    for rid, data in ROWS:
        db.set("rows", rid, data)
    return db


@pytest.mark.parametrize(("flt", "expected"), OPERATOR_CASES)
def test_fake_db_filters_as_the_store(flt: dict[str, Any], expected: list[Any]) -> None:
    db = fake_rows()
    page = db.query("rows", flt)
    assert ([r["id"] for r in page], page.count) == (expected, len(expected))
    assert db.count("rows", flt) == len(expected)


@pytest.mark.parametrize(("order", "expected"), ORDER_CASES)
def test_fake_db_orders_as_the_store(order: Any, expected: list[Any]) -> None:
    assert [r["id"] for r in fake_rows().query("rows", order_by=order)] == expected


def test_fake_db_refuses_what_the_store_refuses() -> None:
    db = fake_rows()
    refused: list[tuple[Callable[[], Any], str]] = [
        (lambda: db.query("rows", {"a": {"$regex": "x"}}), "filter.a: unknown operator $regex"),
        (lambda: db.query("rows", {"a": {"$gt": 1, "b": 2}}), "filter.a: mixes"),
        (lambda: db.query("rows", order_by=["a", " "]), "order_by[1]"),
        (lambda: db.set("rows", 1, {"x": float("nan")}), "data.x"),
        (lambda: db.set("rows", 1, {"id": 2}), "data.id"),
        (lambda: db.update("rows", 4, inc={"name": 1}), "inc.name: the stored value"),
        (lambda: db.update("rows", 4, {"n": 1}, {"n": 1}), "inc.n: the field is also in data"),
    ]
    for call, problem in refused:
        with pytest.raises(DatabaseFailure) as info:
            call()
        assert problem in str(info.value)
        assert info.value.code == ErrorCode.INVALID_INPUT
    with pytest.raises(ContractError, match="limit"):  # DatabaseClient checks the contract
        db.query("rows", limit=1001)
    assert db.get("rows", 1) == {"id": 1, **ROWS[0][1]}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    records=st.lists(
        st.dictionaries(st.sampled_from(["a", "b"]), query_values, max_size=2), max_size=10
    ),
    changes=st.lists(
        st.tuples(
            st.sampled_from(["set", "new", "update", "inc", "delete"]),
            st.integers(min_value=0, max_value=9),
            query_values,
        ),
        max_size=6,
    ),
    flt=st.dictionaries(st.sampled_from(["a", "b", "id"]), conditions, max_size=2),
    order=st.none() | st.sampled_from(["a", "a DESC", "b", ["b DESC", "a"], "id DESC"]),
    offset=st.integers(min_value=0, max_value=3),
)
def test_fake_db_answers_as_the_store(
    sync_store: tuple[asyncio.Runner, Store],
    records: list[dict[str, Any]],
    changes: list[tuple[str, int, Any]],
    flt: dict[str, Any],
    order: Any,
    offset: int,
) -> None:
    runner, store = sync_store
    coll, db = new_name(), FakeDb()

    async def both(operation: str, *args: Any, **kwargs: Any) -> Any:
        """The operation on the Store and on the fake: the same answer, or both refuse."""
        try:
            expected = await getattr(store, operation)(coll, *args, **kwargs)
        except ContractError as e:
            with pytest.raises(DatabaseFailure) as info:
                getattr(db, operation)(coll, *args, **kwargs)
            assert info.value.code == ErrorCode.INVALID_INPUT
            assert e.problem in str(info.value)
            return None
        got = getattr(db, operation)(coll, *args, **kwargs)
        assert strict(got) == strict(expected)
        return got

    async def run() -> None:
        await store.declare_indexes(coll, ["a"])  # index walks and scans alike
        for i, record in enumerate(records):
            await both("set", i, record)
        for op, i, value in changes:
            if op in ("set", "new"):
                await both("set", i if op == "set" else None, {"b": value})
            elif op == "update":
                await both("update", i, {"a": value})
            elif op == "inc":
                await both("update", i, inc={"a": 3})
            else:
                await both("delete", i)
        expected = await store.query(coll, flt, order, limit=5, offset=offset)
        got = db.query(coll, flt, order, limit=5, offset=offset)
        assert (strict(got.records), got.count) == (strict(expected.records), expected.count)
        assert db.count(coll, flt) == await store.count(coll, flt)

    runner.run(run())
