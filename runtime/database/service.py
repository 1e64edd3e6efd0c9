"""`database.*` over NATS: the service that answers from the Store, and the client handlers use."""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any

from nats.aio.msg import Msg

from runtime.constants import ErrorCode
from runtime.database.store import DEFAULT_LIMIT, Store
from runtime.errors import BusError, ContractError, StoreError
from runtime.wire import contract
from runtime.wire.bus import Binding, Bindings, Bus, MessageHandler

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
        token = request.get("token")  # the caller's idempotency token, for a write repeated
        if operation == "set":
            record_id = await store.set(collection, request["id"], request["data"], token)
            return contract.ok(id=record_id)
        if operation == "update":
            record = await store.update(
                collection, request["id"], request.get("data"), request.get("inc"), token
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
            deleted = await store.delete(collection, request["id"], token)
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
