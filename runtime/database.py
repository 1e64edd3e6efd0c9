"""`database.*` over NATS: the service that answers from the Store, and the client handlers use."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from functools import partial
from typing import Any

from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from . import contract
from .bus import Binding, Bindings, Bus, MessageHandler
from .constants import ErrorCode
from .dbcodec import RecordId
from .errors import BusError, CollectionDenied, ContractError, StoreError
from .store import DEFAULT_LIMIT, Page, Store

log = logging.getLogger("rosey.database")

OPERATIONS = ("get", "set", "update", "query", "delete", "count")
DEFAULT_QUEUE = "rosey.database"
MAX_IN_FLIGHT = 256


def subject(operation: str) -> str:
    return f"database.{operation}"


class DatabaseFailure(StoreError):
    """A database request was answered with a failure (or not at all); `code` says which."""

    def __init__(self, operation: str, code: ErrorCode | str, detail: str) -> None:
        super().__init__(operation, detail)
        try:
            self.code = ErrorCode(code)
        except ValueError:
            self.code = ErrorCode.DATABASE_ERROR


class _BoundedBinding(Binding):
    """A Binding that takes the next message only once a slot is free.

    nats-py delivers a subscription's messages one at a time to this callback, so waiting here
    leaves a flood queued in the client (bounded by its pending limits) instead of turning it
    into an unbounded number of tasks. The handler releases the slot.
    """

    def __init__(
        self, bus: Bus, subject: str, handler: MessageHandler, queue: str, slots: asyncio.Semaphore
    ) -> None:
        super().__init__(bus, subject, handler, queue)
        self.slots = slots

    async def _dispatch(self, msg: Msg) -> None:
        await self.slots.acquire()
        await super()._dispatch(msg)


class DatabaseService:
    """Answers database.get/set/update/query/delete/count from a Store, in a queue group."""

    def __init__(
        self,
        bus: Bus,
        store: Store,
        queue: str = DEFAULT_QUEUE,
        request_timeout: float = 5.0,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self.bus, self.store, self.queue = bus, store, queue
        # Answer a little before a requester using the same timeout gives up.
        self.deadline = request_timeout * 0.9
        self.slots = asyncio.Semaphore(max_in_flight)
        self.failures: dict[str, int] = {}
        self.bindings = Bindings(
            _BoundedBinding(bus, subject(op), partial(self._serve, op), queue, self.slots)
            for op in OPERATIONS
        )

    async def start(self) -> None:
        await self.bindings.start()

    async def stop(self, timeout: float = 10.0) -> int:
        """Stop taking requests and finish those received; returns how many were drained."""
        return await self.bindings.stop(timeout)

    @property
    def busy(self) -> int:
        return self.bindings.busy

    async def _serve(self, operation: str, msg: Msg) -> None:
        try:
            reply = await self.answer(operation, msg.data)
            await self._respond(msg, reply)
        finally:
            self.slots.release()

    async def answer(self, operation: str, data: bytes) -> dict[str, Any]:
        """The reply envelope for one raw request."""
        name = subject(operation)
        try:
            request = contract.decode(name, data)
        except ContractError as e:
            return self._failed(ErrorCode.INVALID_INPUT, str(e))
        try:
            async with asyncio.timeout(self.deadline):
                return await self._call(operation, request)
        except ContractError as e:
            return self._failed(ErrorCode.INVALID_INPUT, str(e))
        except StoreError as e:
            log.warning("%s", e)
            return self._failed(ErrorCode.DATABASE_ERROR, str(e))
        except TimeoutError:
            detail = f"database {operation} failed: no answer from Redis within {self.deadline:g}s"
            log.warning("%s", detail)
            return self._failed(ErrorCode.DATABASE_ERROR, detail)

    async def _call(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        store, collection = self.store, request["collection"]
        if operation == "get":
            record = await store.get(collection, request["id"])
            return contract.ok(record) if record is not None else self._missing(request)
        if operation == "set":
            return contract.ok(id=await store.set(collection, request["id"], request["data"]))
        if operation == "update":
            record = await store.update(
                collection, request["id"], request.get("data"), request.get("inc")
            )
            return contract.ok(record) if record is not None else self._missing(request)
        if operation == "query":
            page = await store.query(
                collection,
                request.get("filter"),
                request.get("order_by"),
                request.get("limit", DEFAULT_LIMIT),
                request.get("offset", 0),
            )
            return contract.ok(page.records, count=page.count)
        if operation == "delete":
            deleted = await store.delete(collection, request["id"])
            return contract.ok() if deleted else self._missing(request)
        return contract.ok(count=await store.count(collection, request.get("filter")))

    def _missing(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._failed(
            ErrorCode.RECORD_NOT_FOUND,
            f"{request['collection']}: no record with id {request['id']!r}",
        )

    def _failed(self, code: ErrorCode, message: str) -> dict[str, Any]:
        self.failures[code] = self.failures.get(code, 0) + 1
        return contract.failure(code, message)

    async def _respond(self, msg: Msg, reply: dict[str, Any]) -> None:
        try:
            await self.bus.respond(msg, reply)
        except BusError as e:
            size = len(contract.encode(reply))
            if size <= self.bus.nc.max_payload:
                log.warning("could not answer %s: %s", msg.subject, e)
                return
            # Too big for NATS (a query page of large records): say so instead of going silent.
            problem = (
                f"{msg.subject}: the reply would be {size} bytes, over the NATS server's "
                f"max_payload of {self.bus.nc.max_payload}; ask for fewer records (limit)"
            )
            try:
                await self.bus.respond(msg, self._failed(ErrorCode.INVALID_INPUT, problem))
            except BusError as again:
                log.warning("could not answer %s: %s", msg.subject, again)


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
        payload: dict[str, Any] = {"id": record_id}
        if data:
            payload["data"] = dict(data)
        if inc:
            payload["inc"] = dict(inc)
        reply = await self._ask("update", collection, payload)
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
