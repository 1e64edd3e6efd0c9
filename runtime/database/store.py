"""The database: one Redis hash per record, with id and field indexes kept by Lua scripts."""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError, ResponseError

from runtime.config.keys import DEFAULT_PREFIX, Namespace
from runtime.config.settings import DatabaseSettings
from runtime.database import codec as dbcodec
from runtime.database import query as dbquery
from runtime.database import scripts as dbscripts
from runtime.database.codec import RecordId
from runtime.errors import ContractError, StoreError

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
INDEX_CACHE_SECONDS = 5.0  # how soon an index another process declared is used here
BATCH = 500  # ids read, or records fetched (one pipeline), per round trip
DEFAULT_SCAN_LIMIT = DatabaseSettings.scan_limit

# Shared with the benchmark's baseline so both measure the same client. Short connect timeout
# and a few quick retries: a restarted Redis is found again, a dead one is reported in ~1 s.
# The pool is not a blocking one (that costs a timer per command): callers bound their own
# concurrency (DatabaseService: max_in_flight), and max_connections only guards against a leak.
CLIENT_OPTIONS: dict[str, Any] = {
    "decode_responses": True,
    "socket_connect_timeout": 1.0,
    "socket_timeout": 5.0,
    "socket_keepalive": True,
    "health_check_interval": 5,
    "max_connections": 1024,
}


def client_retry() -> Retry:
    return Retry(ExponentialBackoff(cap=0.25, base=0.02), retries=3)


def connect_client(url: str) -> Redis:
    pool = ConnectionPool.from_url(url, retry=client_retry(), **CLIENT_OPTIONS)
    return Redis.from_pool(pool)


async def open_client(url: str) -> Redis:
    """A process's one Redis client, which every component shares, after one PING proves Redis
    answers (StoreError if it does not). Its opener closes it, after every component stopped."""
    redis = connect_client(url)
    try:
        await redis.ping()
    except RedisError as e:
        await redis.aclose()
        raise StoreError("connect", f"{url}: {e or type(e).__name__}") from e
    return redis


@dataclass(frozen=True)
class Page:
    """One page of a query: the records in order, and how many records matched in all."""

    records: list[dict[str, Any]]
    count: int

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)


class Store:
    """Records of named collections in Redis; every write keeps its indexes consistent."""

    def __init__(self, redis: Redis, keys: Namespace, scan_limit: int = DEFAULT_SCAN_LIMIT) -> None:
        """`redis` is the process's client (decode_responses=True), shared and closed by its
        owner; every key is under `keys`. A query no index answers reads the whole collection,
        so above `scan_limit` records it is refused (query.ScanRefused) instead."""
        self.redis, self.keys = redis, keys
        self.scan_limit = scan_limit
        self._owned = False
        self._ready: dict[str, tuple[float, frozenset[str]]] = {}
        self._bases: dict[str, str] = {}
        self._set = redis.register_script(dbscripts.SET)
        self._update = redis.register_script(dbscripts.UPDATE)
        self._delete = redis.register_script(dbscripts.DELETE)
        self._page = redis.register_script(dbscripts.PAGE)
        self._backfill = redis.register_script(dbscripts.BACKFILL)

    @classmethod
    async def connect(
        cls, url: str, prefix: str = DEFAULT_PREFIX, scan_limit: int = DEFAULT_SCAN_LIMIT
    ) -> Store:
        """A Store with a client of its own (tests, tools), after one PING to prove Redis answers;
        `close()` closes that client."""
        keys = Namespace(prefix)  # ConfigError before anything is opened
        store = cls(await open_client(url), keys, scan_limit)
        store._owned = True
        return store

    async def close(self) -> None:
        """Closes the client if `connect` opened it; a shared one is its owner's to close."""
        if self._owned:
            await self.redis.aclose()

    def base(self, collection: str) -> str:
        """The key prefix of a collection's keys (raises ValueError for a bad name)."""
        base = self._bases.get(collection)
        if base is None:
            base = self.keys.tag(dbcodec.check_collection(collection))
            if len(self._bases) < 10_000:  # a cache, not a record of every name ever tried
                self._bases[collection] = base
        return base

    async def get(self, collection: str, record_id: RecordId) -> dict[str, Any] | None:
        """The record, with its `id`; None when there is none."""
        with _Invalid("get"):
            base = self.base(collection)
            key = base + "r:" + dbcodec.raw_id(dbcodec.normalize_id(record_id))
        with _Failing("get"):
            flat: Any = await self.redis.hgetall(key)
        return dbcodec.decode_record(flat) if flat else None

    async def set(
        self,
        collection: str,
        record_id: RecordId | None,
        data: Mapping[str, Any],
        token: str | None = None,
    ) -> RecordId:
        """Create or replace a record; `record_id` None allocates the next integer id. A write
        repeated with the same `token` (within ten minutes) is applied once."""
        with _Invalid("set"):
            base = self.base(collection)
            rid = None if record_id is None else dbcodec.normalize_id(record_id)
            pairs = _pairs(data, rid)
        if rid is None:
            ident = ["", "", ""]
            token = token or _token()  # allocation is not idempotent: guard retries
        else:
            ident = [
                dbcodec.id_key(rid),
                dbcodec.raw_id(rid),
                dbcodec.encode_value(rid, "id").decode(),
            ]
            token = token or ""
        with _Failing("set"):
            key = await self._set(
                keys=[base + "ids", base + "meta", base + "seq"], args=[base, token, *ident, *pairs]
            )
        return dbcodec.id_from_key(str(key))

    async def update(
        self,
        collection: str,
        record_id: RecordId,
        data: Mapping[str, Any] | None = None,
        inc: Mapping[str, int | float] | None = None,
        token: str | None = None,
    ) -> dict[str, Any] | None:
        """Set some fields and add to numeric ones, atomically; None when there is no record.
        An update repeated with the same `token` is applied once."""
        with _Invalid("update"):
            base = self.base(collection)
            rid = dbcodec.normalize_id(record_id)
            pairs = _pairs(data or {}, rid)
            amounts = _amounts(inc or {}, data or {})
        with _Failing("update"):
            flat = await self._update(
                keys=[base + "meta"],
                args=[
                    base,
                    token or (_token() if amounts else ""),
                    dbcodec.raw_id(rid),
                    dbcodec.id_key(rid),
                    len(pairs),
                    *pairs,
                    *amounts,
                ],
            )
        return dbcodec.decode_record(flat) if flat else None

    async def delete(self, collection: str, record_id: RecordId, token: str | None = None) -> bool:
        """True when a record was deleted, False when there was none (a delete repeated with
        the same `token` answers as the first did)."""
        with _Invalid("delete"):
            base = self.base(collection)
            rid = dbcodec.normalize_id(record_id)
        with _Failing("delete"):
            deleted = await self._delete(
                keys=[base + "ids", base + "meta"],
                args=[base, token or _token(), dbcodec.raw_id(rid), dbcodec.id_key(rid)],
            )
        return bool(deleted)

    async def query(
        self,
        collection: str,
        filter: Mapping[str, Any] | None = None,
        order_by: str | list[str] | None = None,
        limit: int = DEFAULT_LIMIT,
        offset: int = 0,
    ) -> Page:
        """Matching records in order; `count` is the number of matches, not of this page."""
        with _Invalid("query"):
            base = self.base(collection)
            conditions = dbquery.parse_filter(filter)
            orders = dbquery.parse_order(order_by)
            limit, offset = _page_args(limit, offset)
        with _Failing("query"):
            return await self._query("query", collection, base, conditions, orders, limit, offset)

    async def count(self, collection: str, filter: Mapping[str, Any] | None = None) -> int:
        with _Invalid("count"):
            base = self.base(collection)
            conditions = dbquery.parse_filter(filter)
        with _Failing("count"):
            return (await self._query("count", collection, base, conditions, [], 0, 0)).count

    async def declare_indexes(self, collection: str, fields: Iterable[str]) -> None:
        """Index `fields` of `collection`, building each new index from the records already there."""
        with _Invalid("declare_indexes"):
            base = self.base(collection)
            names = [dbcodec.check_index_field(f, f"indexes.{collection}") for f in fields]
        with _Failing("declare_indexes"):
            states = await self.redis.hgetall(base + "meta")
            for name in names:
                if states.get(name) == "ready":
                    continue
                # Writes index the field from this moment; the backfill covers older records.
                await self.redis.hsetnx(base + "meta", name, "building")
                await self._build(base, name)
                await self.redis.hset(base + "meta", name, "ready")
        self._ready.pop(collection, None)

    async def drop_indexes(self, collection: str, fields: Iterable[str]) -> None:
        with _Invalid("drop_indexes"):
            base = self.base(collection)
            names = [dbcodec.check_index_field(f, f"indexes.{collection}") for f in fields]
        with _Failing("drop_indexes"):
            for name in names:
                await self.redis.hdel(base + "meta", name)  # first, so no write re-adds entries
                await self.redis.delete(base + "i:" + name)
        self._ready.pop(collection, None)

    async def indexes(self, collection: str) -> dict[str, str]:
        """Declared index fields and their state: building or ready."""
        with _Invalid("indexes"):
            base = self.base(collection)
        with _Failing("indexes"):
            states: Any = await self.redis.hgetall(base + "meta")
        return dict(states)

    async def _build(self, base: str, name: str) -> None:
        start = "-"
        while True:
            keys: Any = await self.redis.zrangebylex(base + "ids", start, "+", 0, BATCH)
            if not keys:
                return
            await self._backfill(keys=[base + "i:" + name], args=[base, name, *keys])
            start = "(" + keys[-1]

    async def _indexed(self, collection: str, base: str, refresh: bool) -> frozenset[str]:
        cached = self._ready.get(collection)
        if cached and not refresh and cached[0] > time.monotonic():
            return cached[1]
        states: Any = await self.redis.hgetall(base + "meta")
        ready = frozenset(f for f, state in states.items() if state == "ready")
        self._ready[collection] = (time.monotonic() + INDEX_CACHE_SECONDS, ready)
        return ready

    async def _query(
        self,
        operation: str,
        collection: str,
        base: str,
        conditions: list[dbquery.Condition],
        orders: list[dbquery.Order],
        limit: int,
        offset: int,
    ) -> Page:
        for attempt in range(2):
            indexed = await self._indexed(collection, base, refresh=attempt > 0)
            plans = dbquery.plan(conditions, orders, indexed)
            if plans[0].kind == "page":
                page = await self._walk(base, plans[0], limit, offset)
            else:
                records = (
                    await self._scan(operation, collection, base, conditions, orders)
                    if plans[0].kind == "scan"
                    else await self._candidates(base, plans)
                )
                page = (
                    None if records is None else _finish(records, conditions, orders, limit, offset)
                )
            if page is not None:
                return page
        raise StoreError("query", "the collection's indexes changed during the query; try again")

    async def _walk(self, base: str, plan: dbquery.Plan, limit: int, offset: int) -> Page | None:
        key = base + ("i:" + plan.index if plan.index else "ids")
        low, high = plan.ranges[0]
        try:
            out = await self._page(
                keys=[key, base + "meta"],
                args=[base, plan.index, low, high, int(plan.descending), offset, limit],
            )
        except ResponseError as e:
            if str(e).startswith("ROSEY-STALE"):
                return None  # the index was dropped since it was cached
            raise
        return Page([dbcodec.decode_record(flat) for flat in out[1:] if flat], int(out[0]))

    async def _scan(
        self,
        operation: str,
        collection: str,
        base: str,
        conditions: list[dbquery.Condition],
        orders: list[dbquery.Order],
    ) -> list[dict[str, Any]]:
        """The whole collection, for a query no index answers: refused above `scan_limit`
        records (ZCARD is O(1)), else read in chunks of BATCH ids and BATCH records, so no one
        Redis call is long and the event loop gets its turn between round trips."""
        size = await self.redis.zcard(base + "ids")
        ids: list[RecordId] = []
        start = "-"
        while size <= self.scan_limit:
            keys: Any = await self.redis.zrangebylex(base + "ids", start, "+", 0, BATCH)
            ids += [dbcodec.id_from_key(k) for k in keys]
            if len(keys) < BATCH:
                return await self._fetch(base, ids)
            start = "(" + keys[-1]
            size = max(size, len(ids))  # it may grow while it is read
        hint = dbquery.index_hint(conditions, orders)
        raise dbquery.ScanRefused(operation, collection, size, self.scan_limit, hint)

    async def _candidates(
        self, base: str, plans: list[dbquery.Plan]
    ) -> list[dict[str, Any]] | None:
        """Records that may match, from the most selective index (or the ids asked for)."""
        best = await self._cheapest(base, [p for p in plans if p.kind == "candidates"])
        ids: list[RecordId]
        if best.ids is not None:
            ids = best.ids
        else:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hget(base + "meta", best.index)
                for low, high in best.ranges:
                    pipe.zrangebylex(base + "i:" + best.index, low, high)
                state, *found = await pipe.execute()
            if state != "ready":
                return None
            ids = [dbcodec.id_from_member(m) for members in found for m in members]
        return await self._fetch(base, list(dict.fromkeys(ids)))

    async def _cheapest(self, base: str, choices: list[dbquery.Plan]) -> dbquery.Plan:
        by_ids = [p for p in choices if p.ids is not None]
        if by_ids:
            return min(by_ids, key=lambda p: len(p.ids or ()))
        async with self.redis.pipeline(transaction=False) as pipe:
            for plan in choices:
                for low, high in plan.ranges:
                    pipe.zlexcount(base + "i:" + plan.index, low, high)
            counts = iter(await pipe.execute())
        sizes = [sum(next(counts) for _ in plan.ranges) for plan in choices]
        return choices[sizes.index(min(sizes))]

    async def _fetch(self, base: str, ids: list[RecordId]) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        for i in range(0, len(ids), BATCH):
            async with self.redis.pipeline(transaction=False) as pipe:
                for rid in ids[i : i + BATCH]:
                    pipe.hgetall(base + "r:" + dbcodec.raw_id(rid))
                found = await pipe.execute()
            records += [dbcodec.decode_record(flat) for flat in found if flat]
        return records


def _finish(
    records: list[dict[str, Any]],
    conditions: list[dbquery.Condition],
    orders: list[dbquery.Order],
    limit: int,
    offset: int,
) -> Page:
    page, count = dbquery.select(records, conditions, orders, limit, offset)
    return Page(page, count)


def _pairs(data: Mapping[str, Any], rid: RecordId | None) -> list[str | bytes]:
    if not isinstance(data, Mapping):
        raise ValueError(f"data: expected an object of fields, got {data!r}")
    pairs: list[str | bytes] = []
    for name, value in data.items():
        if name == "id":
            # `id` mirrors the record's key; repeating the same id is harmless, changing it is not.
            if rid is not None and dbquery.same(_soft_id(value), rid):
                continue
            raise ValueError("data.id: `id` is the record's key and cannot be set as a field")
        pairs += [name, dbcodec.encode_value(value, f"data.{name}")]
    return pairs


def _soft_id(value: Any) -> Any:
    try:
        return dbcodec.normalize_id(value)
    except ValueError:
        return value


def _amounts(inc: Mapping[str, Any], data: Mapping[str, Any]) -> list[str]:
    if not isinstance(inc, Mapping):
        raise ValueError(f"inc: expected an object of numbers, got {inc!r}")
    out: list[str] = []
    for name, amount in inc.items():
        where = f"inc.{name}"
        if name == "id":
            raise ValueError(f"{where}: the id cannot be incremented")
        if name in data:
            raise ValueError(f"{where}: the field is also in data; set it or add to it, not both")
        if isinstance(amount, bool) or not isinstance(amount, int | float):
            raise ValueError(f"{where}: expected a number, got {amount!r}")
        if isinstance(amount, int) and abs(amount) >= 2**53:
            raise ValueError(f"{where}: integers are added exactly only below 2^53")
        if not math.isfinite(amount):
            raise ValueError(f"{where}: expected a finite number")
        out += [name, repr(amount)]
    return out


def _page_args(limit: Any, offset: Any) -> tuple[int, int]:
    limit, offset = _whole(limit), _whole(offset)
    if limit is None or not 0 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit: expected a whole number from 0 to {MAX_LIMIT}")
    if offset is None or offset < 0:
        raise ValueError("offset: expected a whole number of 0 or more")
    return limit, offset


def _whole(value: Any) -> int | None:
    if isinstance(value, float) and value.is_integer():
        return int(value)  # JSON Schema counts 10.0 as an integer
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _token() -> str:
    return secrets.token_hex(8)


class _Invalid:
    """Bad arguments (the codec and parser raise ValueError naming the field) → ContractError."""

    # A class, not @contextmanager: this wraps every request and the generator version costs more.
    def __init__(self, operation: str) -> None:
        self.operation = operation

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, e: BaseException | None, tb: Any) -> None:
        if isinstance(e, ValueError):
            raise ContractError(f"database.{self.operation}", str(e)) from e


class _Failing(_Invalid):
    """Anything Redis raises → StoreError, except a script's verdict on the request's values."""

    def __exit__(self, kind: type[BaseException] | None, e: BaseException | None, tb: Any) -> None:
        if isinstance(e, ResponseError) and str(e).startswith("ROSEY-INVALID "):
            problem = str(e).removeprefix("ROSEY-INVALID ")
            raise ContractError(f"database.{self.operation}", problem) from e
        if isinstance(e, RedisError):
            raise StoreError(self.operation, str(e) or type(e).__name__) from e
