"""A function reaches the database through ctx.db only, limited to its manifest's collections:
ctx.publish and ctx.request refuse the database.* namespace (and Rosey's control subjects), in
the runtime's process and from a worker process alike."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from nats.aio.subscription import Subscription

from runtime.config.manifest import parse
from runtime.constants import ErrorCode
from runtime.core.context import Context, Event, SyncContext
from runtime.database.client import DatabaseClient
from runtime.database.service import DatabaseService
from runtime.database.store import Store
from runtime.errors import SubjectDenied
from runtime.wire.bus import Bus
from tests.conftest import Chat, MakeRuntime, wait_for

SECRET_RECORD = {"id": 1, "note": "someone else's record"}

CODE = {
    "peek.py": """\
    import json

    ASK = {"collection": "other", "id": 1}

    async def raw(event, ctx):
        return "read " + json.dumps(await ctx.request("database.get", ASK))

    def raw_sync(event, ctx):
        return "read " + json.dumps(ctx.request("database.get", ASK))

    async def raw_publish(event, ctx):
        await ctx.publish("database.delete", ASK)
        return "deleted"

    async def via_db(event, ctx):
        return "read " + json.dumps(await ctx.db.get("other", 1))

    async def own(event, ctx):
        await ctx.db.set("mine", 1, {"n": 1})
        return "own " + json.dumps(await ctx.db.get("mine", 1))

    async def why(event, ctx):
        try:
            await ctx.request("database.get", ASK)
        except Exception as e:
            return f"{type(e).__name__}: {e}"
        return "not refused"

    async def bypass(event, ctx):
        # In a worker: skip the worker's own check and ask the runtime directly.
        return "read " + json.dumps(await ctx._ask("request", "database.get", ASK, 5.0))
    """
}

MANIFEST = """\
name: peek
version: "1.0.0"
description: tries to read a collection it does not declare
handler: peek:raw
collections: [mine]
quarantine: {failures: 0}
commands:
  raw: {}
  rawsync: {handler: "peek:raw_sync"}
  rawpub: {handler: "peek:raw_publish"}
  viadb: {handler: "peek:via_db"}
  own: {handler: "peek:own"}
  why: {handler: "peek:why"}
  bypass: {handler: "peek:bypass"}
"""


@pytest.fixture
async def database(bus: Bus, redis_url: str) -> AsyncIterator[DatabaseClient]:
    """A database service with a record in collection `other`; yields the client of its owner."""
    store = await Store.connect(redis_url, prefix=f"rosey:test{uuid.uuid4().hex[:8]}:")
    service = DatabaseService(bus, store)
    await service.start()
    owner = DatabaseClient(bus, "owner", ("other",))
    await owner.set("other", 1, {"note": SECRET_RECORD["note"]})
    yield owner
    await service.stop()
    await store.close()


@pytest.fixture(params=["in-process", "process"])
def manifest(request: pytest.FixtureRequest) -> dict[str, str]:
    isolation = "isolation: process\n" if request.param == "process" else ""
    return {"peek": MANIFEST + isolation}


@pytest.fixture
async def spy(bus: Bus) -> AsyncIterator[Subscription]:
    """Every database.* message on the server, from any client."""
    subscription = await bus.nc.subscribe("database.>")
    await bus.flush()
    yield subscription
    await subscription.unsubscribe()


async def quiet(bus: Bus, spy: Subscription) -> int:
    """How many database.* messages reached the server so far (after a round trip)."""
    await bus.flush()
    return spy.pending_msgs


async def test_raw_database_requests_are_refused(
    make_runtime: MakeRuntime,
    chat: Chat,
    bus: Bus,
    database: DatabaseClient,
    spy: Subscription,
    manifest: dict[str, str],
) -> None:
    runtime = await make_runtime(
        manifest, CODE, db=lambda f: DatabaseClient(bus, f.name, f.collections)
    )
    for word in ("raw", "rawsync", "rawpub", "viadb"):
        await chat.say(f"!{word}")
    assert sorted(await chat.lines(4)) == [
        "Sorry, raw failed.",
        "Sorry, rawpub failed.",
        "Sorry, rawsync failed.",
        "Sorry, viadb failed.",
    ]
    await chat.settle(runtime)
    assert await quiet(bus, spy) == 0  # nothing was asked of the database service
    assert await database.get("other", 1) == SECRET_RECORD  # not deleted either
    # ctx.db works for the declared collection, and the spy sees it: it would have seen the rest.
    await chat.say("!own")
    assert (await chat.lines(5))[4] == 'own {"id": 1, "n": 1}'
    await wait_for(lambda: spy.pending_msgs >= 2)


async def test_the_author_is_told_to_use_ctx_db(
    make_runtime: MakeRuntime,
    chat: Chat,
    bus: Bus,
    database: DatabaseClient,
    manifest: dict[str, str],
) -> None:
    await make_runtime(manifest, CODE, db=lambda f: DatabaseClient(bus, f.name, f.collections))
    await chat.say("!why")
    assert await chat.lines(1) == [
        "SubjectDenied: function 'peek' may not send to 'database.get': use ctx.db, which is "
        "limited to the collections the manifest declares"
    ]


async def test_a_worker_skipping_its_own_check_is_refused_by_the_runtime(
    make_runtime: MakeRuntime,
    chat: Chat,
    bus: Bus,
    database: DatabaseClient,
    spy: Subscription,
) -> None:
    runtime = await make_runtime(
        {"peek": MANIFEST + "isolation: process\n"},
        CODE,
        db=lambda f: DatabaseClient(bus, f.name, f.collections),
    )
    await chat.say("!bypass")
    assert await chat.lines(1) == ["Sorry, bypass failed."]
    await chat.settle(runtime)
    assert await quiet(bus, spy) == 0


# The rule itself, on a Context whose publish and request record what reaches them.

ALLOWED = [
    "plugin.other.request",  # asking another function
    "rosey.activations.query",  # !why
    "rosey.stats",  # !stats
    "rosey.status",
    "cytube.send.chat",
    "games.trivia.started",
    "databases.x",
    "rosey.deployment",
]
REFUSED = [
    "database.get",
    "database.query",
    "database",
    "rosey.deploy",
    "rosey.deploy.apply",
    "rosey.enable",
    "cytube.chat",
    "cytube.pm",
    "plugin.other.command",
    "database.get _INBOX.abc",  # NATS would read the rest as a reply subject
    "database.get\r\nPUB x 0",
    "database.*",
    "a.>",
    "a..b",
    "",
]


def context(sent: list[str]) -> Context:
    async def publish(subject: str, data: Any) -> None:
        sent.append(subject)

    async def request(subject: str, data: Any, timeout: float) -> Any:
        sent.append(subject)
        return {"success": True}

    function = parse({"name": "f", "version": "1.0.0", "description": "d", "handler": "m:h"})
    return Context(function, Event(kind="request", subject="plugin.f.request"), publish, request)


@pytest.mark.parametrize("subject", ALLOWED)
async def test_other_subjects_pass(subject: str) -> None:
    sent: list[str] = []
    ctx = context(sent)
    await ctx.publish(subject, {})
    assert await ctx.request(subject, {}) == {"success": True}
    assert sent == [subject, subject]


@pytest.mark.parametrize("subject", REFUSED)
async def test_refused_subjects_never_reach_nats(subject: str) -> None:
    sent: list[str] = []
    ctx = context(sent)
    sync = SyncContext(ctx, asyncio.get_running_loop())
    for attempt in (
        lambda: ctx.publish(subject, {}),
        lambda: ctx.request(subject, {}),
        lambda: asyncio.to_thread(sync.publish, subject, {}),
        lambda: asyncio.to_thread(sync.request, subject, {}),
    ):
        with pytest.raises(SubjectDenied) as info:
            await attempt()
        assert info.value.code == ErrorCode.PERMISSION_DENIED
        assert info.value.function == "f" and info.value.subject == subject
    assert sent == []
