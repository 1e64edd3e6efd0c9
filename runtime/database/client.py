"""`ctx.db`: the database over NATS for handlers, limited to the manifest's collections."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from nats.errors import Error as NatsError
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from runtime.constants import ErrorCode
from runtime.database.codec import RecordId
from runtime.database.service import DatabaseFailure, subject
from runtime.database.store import DEFAULT_LIMIT, Page
from runtime.errors import CollectionDenied, ContractError
from runtime.wire import contract
from runtime.wire.bus import Bus
from runtime.wire.scope import CURRENT

WRITES = frozenset({"set", "update", "delete"})


async def request(
    bus: Bus, operation: str, payload: Mapping[str, Any], timeout: float = 5.0
) -> dict[str, Any]:
    """One database request; returns the reply envelope, whatever its `success`.

    Unlike Bus.request, a reply may exceed MAX_PAYLOAD (a query page of large records), up to
    the NATS server's own limit. Transport problems raise DatabaseFailure.
    """
    name = subject(operation)
    contract.check(name, payload)
    try:
        msg = await bus.nc.request(name, contract.encode(payload), timeout=timeout)
    except NoRespondersError as e:
        raise DatabaseFailure(
            operation, ErrorCode.NATS_ERROR, "no database service is running"
        ) from e
    except NatsTimeout as e:
        raise DatabaseFailure(operation, ErrorCode.TIMEOUT, f"no reply within {timeout:g}s") from e
    except NatsError as e:
        raise DatabaseFailure(operation, ErrorCode.NATS_ERROR, str(e) or type(e).__name__) from e
    try:
        reply: dict[str, Any] = contract.check(name, json.loads(msg.data), key="reply")
    except (ValueError, ContractError) as e:
        raise DatabaseFailure(operation, ErrorCode.NATS_ERROR, f"bad reply: {e}") from e
    return reply


def update_payload(
    record_id: RecordId,
    data: Mapping[str, Any] | None = None,
    inc: Mapping[str, int | float] | None = None,
) -> dict[str, Any]:
    """The `database.update` payload (without its collection) for these arguments."""
    payload: dict[str, Any] = {"id": record_id}
    if data:
        payload["data"] = dict(data)
    if inc:
        payload["inc"] = dict(inc)
    return payload


class DatabaseClient:
    """`ctx.db`: the database over NATS, limited to the collections the manifest declares."""

    def __init__(
        self, bus: Bus, function: str, collections: tuple[str, ...], timeout: float = 5.0
    ) -> None:
        self.bus, self.function, self.collections, self.timeout = (
            bus,
            function,
            collections,
            timeout,
        )

    async def get(self, collection: str, record_id: RecordId) -> dict[str, Any] | None:
        """The record (with its `id`), or None when there is none."""
        reply = await self._ask("get", collection, {"id": record_id})
        return reply.get("data") if reply["success"] else None

    async def set(
        self, collection: str, record_id: RecordId | None, data: Mapping[str, Any]
    ) -> RecordId:
        """Create or replace a record; `record_id` None allocates an id. Returns the id."""
        reply = await self._ask("set", collection, {"id": record_id, "data": dict(data)})
        rid: RecordId = reply["id"]
        return rid

    async def update(
        self,
        collection: str,
        record_id: RecordId,
        data: Mapping[str, Any] | None = None,
        inc: Mapping[str, int | float] | None = None,
    ) -> dict[str, Any] | None:
        """Set `data` fields and add `inc` amounts atomically; the record after, or None."""
        reply = await self._ask("update", collection, update_payload(record_id, data, inc))
        return reply.get("data") if reply["success"] else None

    async def query(
        self,
        collection: str,
        filter: Mapping[str, Any] | None = None,
        order_by: str | list[str] | None = None,
        limit: int = DEFAULT_LIMIT,
        offset: int = 0,
    ) -> Page:
        """Matching records in order; `.count` is the number of all matches."""
        payload: dict[str, Any] = {"limit": limit, "offset": offset}
        if filter:
            payload["filter"] = dict(filter)
        if order_by:
            payload["order_by"] = order_by
        reply = await self._ask("query", collection, payload)
        return Page(list(reply.get("data") or []), int(reply.get("count", 0)))

    async def delete(self, collection: str, record_id: RecordId) -> bool:
        """True when a record was deleted, False when there was none."""
        reply = await self._ask("delete", collection, {"id": record_id})
        return bool(reply["success"])

    async def count(self, collection: str, filter: Mapping[str, Any] | None = None) -> int:
        payload = {"filter": dict(filter)} if filter else {}
        reply = await self._ask("count", collection, payload)
        return int(reply.get("count", 0))

    async def _ask(
        self, operation: str, collection: str, payload: dict[str, Any]
    ) -> dict[str, Any]:
        if collection not in self.collections:
            raise CollectionDenied(self.function, collection, self.collections)
        scope = CURRENT.get()
        if scope is not None and operation in WRITES:
            # A command under durable delivery: its writes apply once however often it is run.
            payload["token"] = scope.write_token()
        reply = await request(
            self.bus, operation, {"collection": collection, **payload}, self.timeout
        )
        if reply.get("success") or reply.get("error_code") == ErrorCode.RECORD_NOT_FOUND:
            return reply
        raise DatabaseFailure(
            operation,
            reply.get("error_code") or ErrorCode.DATABASE_ERROR,
            reply.get("error") or "failed",
        )
