"""Query filters and ordering: parsing, matching records, sorting, and choosing an index.

Semantics (docs/database.md has the table): equality is strict about types (1 == 1.0, but
true != 1); comparisons match only values of the operand's type (numbers with numbers, strings
with strings); a missing field equals nothing, so `$ne`/`$nin` match it. Ordering follows
dbcodec.value_key, and ties are broken by id in the direction of the last order_by entry, so
an index walk and an in-memory sort give the same page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from runtime.database import codec as dbcodec
from runtime.database.codec import MISSING, Bound, RecordId
from runtime.errors import StoreError

OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$contains")
MAX_ORDER_KEYS = 8


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: Any


@dataclass(frozen=True)
class Order:
    field: str
    descending: bool = False


def parse_filter(spec: Mapping[str, Any] | None) -> list[Condition]:
    """`{"score": {"$gt": 5}, "user": "bob"}` → conditions; bad operators name their field."""
    conditions: list[Condition] = []
    for name, value in (spec or {}).items():
        where = f"filter.{name}"
        ops = isinstance(value, dict) and [k for k in value if k.startswith("$")]
        if not ops:  # a plain value, an object without operators included, means equality
            conditions.append(Condition(name, "$eq", value))
            continue
        if len(ops) != len(value):
            raise ValueError(f'{where}: mixes operators with plain keys; use {{"$eq": {{...}}}}')
        for op, operand in value.items():
            if op not in OPERATORS:
                raise ValueError(
                    f"{where}: unknown operator {op}; expected one of {', '.join(OPERATORS)}"
                )
            if op in ("$in", "$nin") and not isinstance(operand, list):
                raise ValueError(f"{where}.{op}: expected a list of values")
            if op in ("$gt", "$gte", "$lt", "$lte") and not _comparable(operand):
                raise ValueError(f"{where}.{op}: expected a number or a string, got {operand!r}")
            conditions.append(Condition(name, op, operand))
    return [_with_ids(c) if c.field == "id" else c for c in conditions]


def _with_ids(c: Condition) -> Condition:
    # Ids are normalized on the way in ("42" is 42), so filters on id must compare the same way.
    if c.op in ("$eq", "$ne"):
        return Condition(c.field, c.op, _soft_id(c.value))
    if c.op in ("$in", "$nin"):
        return Condition(c.field, c.op, [_soft_id(v) for v in c.value])
    return c


def _soft_id(value: Any) -> Any:
    try:
        return dbcodec.normalize_id(value)
    except ValueError:
        return value


def parse_order(spec: str | list[str] | None) -> list[Order]:
    """`"score DESC"` or `["score DESC", "name"]` → Order entries."""
    items = [spec] if isinstance(spec, str) else list(spec or [])
    if len(items) > MAX_ORDER_KEYS:
        raise ValueError(f"order_by: at most {MAX_ORDER_KEYS} entries")
    orders: list[Order] = []
    for i, item in enumerate(items):
        where = "order_by" if isinstance(spec, str) else f"order_by[{i}]"
        if not isinstance(item, str):
            raise ValueError(f'{where}: expected "field ASC" or "field DESC", got {item!r}')
        name, _, direction = item.strip().rpartition(" ")
        if direction.upper() not in ("ASC", "DESC"):
            name, direction = item.strip(), "ASC"
        name = name.strip()
        if not name:
            raise ValueError(f'{where}: expected "field ASC" or "field DESC", got {item!r}')
        orders.append(Order(name, direction.upper() == "DESC"))
    return orders


def _comparable(value: Any) -> bool:
    return isinstance(value, str) or (
        isinstance(value, int | float) and not isinstance(value, bool)
    )


def same(a: Any, b: Any) -> bool:
    """JSON equality: numbers by value, everything else only with its own type."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _compare(value: Any, op: str, operand: Any) -> bool:
    if isinstance(operand, str) != isinstance(value, str) or not _comparable(value):
        return False
    if op == "$gt":
        return bool(value > operand)
    if op == "$gte":
        return bool(value >= operand)
    if op == "$lt":
        return bool(value < operand)
    return bool(value <= operand)


def test(record: Mapping[str, Any], c: Condition) -> bool:
    value = record.get(c.field, MISSING)
    if c.op == "$eq":
        return same(value, c.value)
    if c.op == "$ne":
        return not same(value, c.value)
    if c.op == "$in":
        return any(same(value, v) for v in c.value)
    if c.op == "$nin":
        return not any(same(value, v) for v in c.value)
    if c.op == "$contains":
        if isinstance(value, list):
            return any(same(v, c.value) for v in value)
        return isinstance(value, str) and isinstance(c.value, str) and c.value in value
    return _compare(value, c.op, c.value)


def matches(record: Mapping[str, Any], conditions: list[Condition]) -> bool:
    return all(test(record, c) for c in conditions)


def sort(records: list[dict[str, Any]], orders: list[Order]) -> list[dict[str, Any]]:
    """Records in query order (see the module docstring for ties)."""
    last_desc = orders[-1].descending if orders else False
    out = sorted(records, key=lambda r: dbcodec.id_key(r["id"]).encode(), reverse=last_desc)
    for order in reversed(orders):  # stable sorts, least significant key first
        out.sort(key=_by(order.field), reverse=order.descending)
    return out


def select(
    records: list[dict[str, Any]],
    conditions: list[Condition],
    orders: list[Order],
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """The page a query returns from `records` (each with its `id`), and how many matched.

    What the Store computes for the records it read; its index walks give the same page (a
    test holds them to it), so an in-memory stand-in for the database can use this alone.
    """
    matched = [r for r in records if matches(r, conditions)]
    if limit == 0:
        return [], len(matched)
    return sort(matched, orders)[offset : offset + limit], len(matched)


def _by(name: str) -> Callable[[dict[str, Any]], bytes]:
    return lambda record: dbcodec.value_key(record.get(name, MISSING))


@dataclass
class Plan:
    """How to answer a query.

    `page`: walk one sorted set (`index` is "" for the id index) over `ranges[0]` and read only
    the page; exact, so no record is filtered afterwards. `candidates`: read the ids in `ranges`
    of `index` (or `ids`, for an id lookup), then filter and sort them. `scan`: read the whole
    collection (the Store refuses that above its `scan_limit`; `index_hint` names the fix).
    """

    kind: Literal["page", "candidates", "scan"]
    index: str = ""
    ranges: list[tuple[Bound, Bound]] = field(default_factory=list)
    descending: bool = False
    ids: list[RecordId] | None = None


def _ranges(conditions: list[Condition]) -> tuple[list[tuple[Bound, Bound]], bool] | None:
    """Index ranges covering every record that can satisfy `conditions` (all on one field).

    Returns (ranges, exact): exact when the ranges hold precisely the matches, in one range.
    None when no condition narrows the field through its index.
    """
    usable = [c for c in conditions if _narrows(c)]
    if not usable:
        return None
    exact = len(usable) == len(conditions)
    for c in usable:
        if c.op == "$eq":
            return [dbcodec.eq_range(c.value)], exact and len(conditions) == 1
    for c in usable:
        if c.op == "$in":
            values = list({dbcodec.value_key(v): v for v in c.value}.values())
            return [dbcodec.eq_range(v) for v in values], False
    bounds = [c for c in usable if c.op in ("$gt", "$gte", "$lt", "$lte")]
    kinds = {isinstance(c.value, str) for c in bounds}
    if len(kinds) > 1:  # a value cannot be a number and a string at once
        return [], exact
    lows = [dbcodec.type_range(bounds[0].value)[0]]
    highs = [dbcodec.type_range(bounds[0].value)[1]]
    for c in bounds:
        if c.op in ("$gt", "$gte"):
            lows.append(dbcodec.lower_bound(c.value, c.op == "$gte"))
        else:
            highs.append(dbcodec.upper_bound(c.value, c.op == "$lte"))
    return [(dbcodec.tighter(lows, True), dbcodec.tighter(highs, False))], exact


def _narrows(c: Condition) -> bool:
    if c.op == "$eq":
        return dbcodec.is_scalar(c.value)
    if c.op == "$in":
        return all(dbcodec.is_scalar(v) for v in c.value)
    return c.op in ("$gt", "$gte", "$lt", "$lte")


def plan(conditions: list[Condition], orders: list[Order], indexed: frozenset[str]) -> list[Plan]:
    """Candidate plans, best first; the store picks the cheapest `candidates` plan by counting."""
    by_field: dict[str, list[Condition]] = {}
    for c in conditions:
        by_field.setdefault(c.field, []).append(c)
    if not conditions:
        if not orders or (len(orders) == 1 and orders[0].field == "id"):
            return [Plan("page", "", [(b"-", b"+")], bool(orders and orders[0].descending))]
        if len(orders) == 1 and orders[0].field in indexed:
            return [Plan("page", orders[0].field, [(b"-", b"+")], orders[0].descending)]
        return [Plan("scan")]
    plans: list[Plan] = []
    for name, conds in by_field.items():
        if name == "id":
            ids = _id_lookup(conds)
            if ids is not None:
                plans.append(Plan("candidates", ids=ids))
            continue
        if name not in indexed:
            continue
        found = _ranges(conds)
        if found is None:
            continue
        ranges, exact = found
        single = exact and len(by_field) == 1 and len(ranges) == 1
        is_eq = all(c.op == "$eq" for c in conds)
        if single and not orders and is_eq:
            return [Plan("page", name, ranges)]  # equal values: the index is in id order
        if single and len(orders) == 1 and orders[0].field == name:
            return [Plan("page", name, ranges, orders[0].descending)]
        plans.append(Plan("candidates", name, ranges))
    return plans or [Plan("scan")]


def index_hint(conditions: list[Condition], orders: list[Order]) -> list[str]:
    """Fields an index on which would let `plan` avoid reading the whole collection: those the
    conditions narrow (equality, `$in`, ranges), or, without conditions, the one `order_by`
    field; [] when no index can help (`$ne`, `$contains`, several orders, ...)."""
    if not conditions:
        return [orders[0].field] if len(orders) == 1 and orders[0].field != "id" else []
    by_field: dict[str, list[Condition]] = {}
    for c in conditions:
        by_field.setdefault(c.field, []).append(c)
    return [n for n, conds in by_field.items() if n != "id" and _ranges(conds) is not None]


class ScanRefused(StoreError):
    """A query no index can answer, of a collection too big to read whole (`scan_limit`)."""

    def __init__(
        self, operation: str, collection: str, size: int, limit: int, fields: list[str]
    ) -> None:
        self.collection, self.size, self.fields = collection, size, fields
        over = (
            f"collection {collection} has {size:,} records, more than database.scan_limit "
            f"({limit:,})"
        )
        if fields:
            which = "it" if len(fields) == 1 else "one of them"
            detail = (
                f"{over}; a query by {' or '.join(fields)} without an index would read them "
                f"all: declare an index on {which} in the manifest "
                f"(indexes: {{{collection}: [{fields[0]}]}})"
            )
        else:
            detail = (
                f"{over}, and no index can answer this filter, so it would read them all: add "
                "a condition on an indexed field ($eq, $in or a range), or raise "
                "database.scan_limit"
            )
        super().__init__(operation, detail)


def _id_lookup(conds: list[Condition]) -> list[RecordId] | None:
    for c in conds:
        values = [c.value] if c.op == "$eq" else c.value if c.op == "$in" else None
        if values is None:
            continue
        ids: list[RecordId] = []
        for v in values:
            try:
                ids.append(dbcodec.normalize_id(v))
            except ValueError:
                continue  # no record has such an id
        return list(dict.fromkeys(ids))
    return None
