"""The function tests' in-memory ctx.db: the DatabaseClient's API with the Store's semantics."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from runtime.constants import ErrorCode
from runtime.database import codec as dbcodec
from runtime.database import query as dbquery
from runtime.database import store as dbstore
from runtime.database.client import update_payload
from runtime.database.codec import RecordId
from runtime.database.service import DatabaseFailure, subject
from runtime.database.store import Page
from runtime.errors import ContractError
from runtime.wire import contract


class FakeDb:
    """get/set/update/query/delete/count in memory, as the sync ctx.db of a worker thread.

    Nothing here decides what a query means: requests are checked against the NATS contract as
    DatabaseClient checks them, arguments by the Store's own validation, values are stored as
    the Store stores them (JSON), and queries are answered by runtime.database.query (the
    filter parser, matching and ordering the Store uses; tests/database/test_store.py holds the
    two to the same answers). Bad arguments raise DatabaseFailure(INVALID_INPUT), as ctx.db does.
    """

    def __init__(self) -> None:
        self.data: dict[str, dict[RecordId, dict[str, Any]]] = {}
        self.seq: dict[str, int] = {}

    def _coll(self, operation: str, collection: str, payload: dict[str, Any]) -> dict:
        contract.check(subject(operation), {"collection": collection, **payload})
        with _invalid(operation):
            dbcodec.check_collection(collection)
        return self.data.setdefault(collection, {})

    def get(self, collection: str, rid: RecordId) -> dict[str, Any] | None:
        records = self._coll("get", collection, {"id": rid})
        with _invalid("get"):
            key = dbcodec.normalize_id(rid)
        return _copy(records[key]) if key in records else None

    def set(self, collection: str, rid: RecordId | None, data: Mapping[str, Any]) -> RecordId:
        records = self._coll("set", collection, {"id": rid, "data": dict(data)})
        with _invalid("set"):
            key = None if rid is None else dbcodec.normalize_id(rid)
            fields = _decoded(dbstore._pairs(data, key))
        if key is None:
            # The Store's allocation (scripts.SET): the counter always moves on, then skips
            # numbers a caller used as explicit ids; a deleted id is never handed out again.
            key = self.seq.get(collection, 0) + 1
            while key in records:
                key += 1
            self.seq[collection] = key
        records[key] = {**fields, "id": key}
        return key

    def update(
        self,
        collection: str,
        rid: RecordId,
        data: Mapping[str, Any] | None = None,
        inc: Mapping[str, int | float] | None = None,
    ) -> dict[str, Any] | None:
        records = self._coll("update", collection, update_payload(rid, data, inc))
        with _invalid("update"):
            key = dbcodec.normalize_id(rid)
            fields = _decoded(dbstore._pairs(data or {}, key))
            amounts = dbstore._amounts(inc or {}, data or {})
        record = records.get(key)
        if record is None:
            return None
        added = {}
        for name, amount in zip(amounts[::2], amounts[1::2], strict=True):
            added[name] = _add(record.get(name, 0), json.loads(amount), name)
        record.update({**fields, **added})
        return _copy(record)

    def delete(self, collection: str, rid: RecordId) -> bool:
        records = self._coll("delete", collection, {"id": rid})
        with _invalid("delete"):
            key = dbcodec.normalize_id(rid)
        return records.pop(key, None) is not None

    def query(
        self,
        collection: str,
        filter: Mapping[str, Any] | None = None,
        order_by: str | list[str] | None = None,
        limit: int = dbstore.DEFAULT_LIMIT,
        offset: int = 0,
    ) -> Page:
        payload: dict[str, Any] = {"limit": limit, "offset": offset}
        if filter:
            payload["filter"] = dict(filter)
        if order_by:
            payload["order_by"] = order_by
        records = self._coll("query", collection, payload)
        with _invalid("query"):
            conditions = dbquery.parse_filter(filter)
            orders = dbquery.parse_order(order_by)
            limit, offset = dbstore._page_args(limit, offset)
        page, count = dbquery.select(list(records.values()), conditions, orders, limit, offset)
        return Page([_copy(r) for r in page], count)

    def count(self, collection: str, filter: Mapping[str, Any] | None = None) -> int:
        records = self._coll("count", collection, {"filter": dict(filter)} if filter else {})
        with _invalid("count"):
            conditions = dbquery.parse_filter(filter)
        return dbquery.select(list(records.values()), conditions, [], 0, 0)[1]


@contextmanager
def _invalid(operation: str) -> Iterator[None]:
    """The Store's ValueError, as the handler gets it back through the DatabaseService."""
    try:
        yield
    except ValueError as e:
        problem = str(ContractError(subject(operation), str(e)))
        raise DatabaseFailure(operation, ErrorCode.INVALID_INPUT, problem) from e


def _decoded(pairs: list[str | bytes]) -> dict[str, Any]:
    return {str(k): json.loads(v) for k, v in zip(pairs[::2], pairs[1::2], strict=True)}


def _copy(record: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(record))


def _add(current: Any, amount: int | float, name: str) -> int | float:
    """The update script's addition (runtime/database/scripts.py UPDATE)."""
    if isinstance(current, bool) or not isinstance(current, int | float):
        problem = f"inc.{name}: the stored value is not a number"
        raise DatabaseFailure("update", ErrorCode.INVALID_INPUT, f"database.update: {problem}")
    total = current + amount
    if isinstance(total, int) and max(abs(current), abs(total)) >= 2**53:
        problem = f"inc.{name}: integers are added exactly only below 2^53"
        raise DatabaseFailure("update", ErrorCode.INVALID_INPUT, f"database.update: {problem}")
    return total
