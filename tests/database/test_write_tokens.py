"""Idempotent writes: a write repeated with its token is applied once (durable delivery's
redelivered commands, or any caller's retry)."""

from __future__ import annotations

import json
from typing import Any
from unittest.mock import MagicMock

import pytest

from runtime.database.client import DatabaseClient, request
from runtime.database.service import DatabaseService
from runtime.database.store import Store
from runtime.wire.bus import Bus
from runtime.wire.scope import CURRENT, Scope


async def test_a_repeated_write_applies_once(database: DatabaseService) -> None:
    store: Store = database.store
    first = await store.set("quotes", None, {"text": "a"}, token="ROSEY_CHAT-1.w1")
    again = await store.set("quotes", None, {"text": "a"}, token="ROSEY_CHAT-1.w1")
    other = await store.set("quotes", None, {"text": "a"}, token="ROSEY_CHAT-2.w1")
    assert first == again != other
    assert (await store.query("quotes")).count == 2

    await store.set("counters", "n", {"n": 0})
    for _ in range(3):
        after = await store.update("counters", "n", inc={"n": 5}, token="ROSEY_CHAT-3.w1")
    assert after is not None and after["n"] == 5

    assert await store.delete("quotes", first, token="ROSEY_CHAT-4.w1") is True
    assert await store.delete("quotes", first, token="ROSEY_CHAT-4.w1") is True  # as the first
    assert await store.delete("quotes", first, token="ROSEY_CHAT-5.w1") is False


async def test_tokens_travel_in_the_contract(bus: Bus, database: DatabaseService) -> None:
    payload = {"collection": "quotes", "id": None, "data": {"t": 1}, "token": "tok-1"}
    first = await request(bus, "set", payload)
    again = await request(bus, "set", payload)
    raw = json.dumps({**payload, "token": "has space"}).encode()
    bad = json.loads((await bus.nc.request("database.set", raw, timeout=5)).data)
    assert first["success"] and again["id"] == first["id"]
    assert bad["success"] is False and bad["error_code"] == "INVALID_INPUT"
    assert "token" in bad["error"]


async def test_a_handler_writes_under_its_commands_tokens(
    bus: Bus, database: DatabaseService
) -> None:
    """ctx.db inside a durable command: the n-th write carries `<command id>.w<n>`, so running
    the command again adds nothing."""
    db = DatabaseClient(bus, "quotes", ("quotes",))

    async def addquote() -> Any:
        return await db.set("quotes", None, {"text": "twice?"})

    ids = []
    for _ in range(2):  # the same command, delivered twice
        token = CURRENT.set(Scope("ROSEY_CHAT-42", MagicMock(), 1.0))
        try:
            ids.append(await addquote())
        finally:
            CURRENT.reset(token)
    outside = await addquote()  # no command: no token, a new record each time
    assert ids[0] == ids[1] != outside
    assert (await db.count("quotes")) == 2


@pytest.mark.parametrize("operation", ["get", "query", "count"])
async def test_reads_carry_no_token(
    bus: Bus, database: DatabaseService, operation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[dict[str, Any]] = []
    real = request

    async def spy(b: Bus, op: str, payload: dict[str, Any], timeout: float = 5.0) -> Any:
        sent.append(dict(payload))
        return await real(b, op, payload, timeout)

    monkeypatch.setattr("runtime.database.client.request", spy)
    db = DatabaseClient(bus, "quotes", ("quotes",))
    token = CURRENT.set(Scope("ROSEY_CHAT-7", MagicMock(), 1.0))
    try:
        if operation == "get":
            await db.get("quotes", 1)
        elif operation == "query":
            await db.query("quotes")
        else:
            await db.count("quotes")
    finally:
        CURRENT.reset(token)
    assert sent and "token" not in sent[0]
