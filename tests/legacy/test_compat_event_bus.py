"""`core.event_bus` as the plugin guide uses it: EventBus(nc) over a plain nats-py connection."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client

from runtime.errors import ContractError
from runtime.legacy import coreimport
from tests.conftest import wait_for

coreimport.install()
from core.event_bus import Event, EventBus, Priority  # noqa: E402 - needs the finder first


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    client = await nats.connect(nats_url)
    yield client
    await client.close()


async def test_publish_subscribe_with_wildcards(nc: Client) -> None:
    bus = EventBus(nc)
    one: list[Event] = []
    all_: list[Event] = []
    await bus.subscribe("plugin.quote-db.event.*", one.append)  # sync handlers work too

    async def collect(event: Event) -> None:
        all_.append(event)

    await bus.subscribe("plugin.quote-db.>", collect)
    await bus.publish("plugin.quote-db.event.quote_added", {"id": 1})
    await bus.publish("plugin.quote-db.event.deep.er", {"id": 2}, priority=Priority.HIGH)
    # Not `flush()` then `busy == 0`: nats-server may answer a client's PING before the messages
    # that client published to itself, so a flush does not prove they arrived.
    await wait_for(lambda: len(one) == 1 and len(all_) == 2 and bus.busy == 0)
    assert [(e.subject, e.data) for e in one] == [("plugin.quote-db.event.quote_added", {"id": 1})]
    assert [e.data["id"] for e in all_] == [1, 2]
    assert [e.priority for e in all_] == [Priority.NORMAL, Priority.HIGH]
    assert all(isinstance(e.timestamp, float) for e in all_)
    await bus.close()


async def test_request_reply_and_timeouts(nc: Client) -> None:
    bus = EventBus(nc)

    async def answer(event: Event) -> dict[str, object]:
        if event.data.get("slow"):
            await asyncio.sleep(0.4)  # outlives the request's timeout, which is under test
        return {"success": True, "data": {"echo": event.data["action"]}}

    await bus.subscribe("plugin.quote-db.request", answer)
    reply = await bus.request("plugin.quote-db.request", {"action": "random"}, timeout=5)
    assert reply == {"success": True, "data": {"echo": "random"}}
    with pytest.raises(asyncio.TimeoutError, match=r"within 0\.2s"):
        await bus.request("plugin.quote-db.request", {"action": "x", "slow": True}, timeout=0.2)
    with pytest.raises(asyncio.TimeoutError, match="no one answers"):
        await bus.request("plugin.nobody.request", {}, timeout=1)
    await bus.close()


async def test_command_subjects_share_a_queue_group(nats_url: str) -> None:
    """Two standalone instances of a plugin answer each command once, like Rosey functions."""
    clients = [await nats.connect(nats_url) for _ in range(3)]
    seen: list[str] = []
    instances = [EventBus(client) for client in clients[:2]]
    for instance in instances:
        await instance.subscribe("plugin.my-plugin.command", lambda e: seen.append(e.data["n"]))
    sender = EventBus(clients[2])
    for n in range(20):
        await sender.publish(
            "plugin.my-plugin.command", {"command": "x", "args": [], "user": "u", "rank": 0, "n": n}
        )
    await clients[2].flush()  # the server has routed all 20 ...
    for client in clients[:2]:
        await client.flush()  # ... and each instance has read its share
    await wait_for(lambda: sum(instance.busy for instance in instances) == 0)
    assert sorted(seen) == list(range(20))
    for client in clients:
        await client.close()


async def test_contract_and_failing_handlers(nc: Client) -> None:
    bus = EventBus(nc)
    with pytest.raises(ContractError, match=r"cytube\.send\.chat"):
        await bus.publish("cytube.send.chat", {"text": "wrong field"})
    calls: list[int] = []

    async def flaky(event: Event) -> None:
        calls.append(event.data["n"])
        if event.data["n"] == 0:
            raise RuntimeError("boom")

    await bus.subscribe("test.flaky", flaky)
    await bus.publish("test.flaky", {"n": 0})
    await bus.publish("test.flaky", {"n": 1})
    await wait_for(lambda: len(calls) == 2 and bus.busy == 0)
    assert calls == [0, 1]  # a handler's exception is logged; the subscription keeps going
    assert await bus.close() == 0
    # A subscriber on the same connection, opened after close(): once it has handled n=2, a
    # subscription close() failed to end would have been handed n=2 as well.
    witness = EventBus(nc)
    later: list[int] = []
    await witness.subscribe("test.flaky", lambda e: later.append(e.data["n"]))
    await bus.publish("test.flaky", {"n": 2})
    await nc.flush()
    await wait_for(lambda: later == [2] and witness.busy == 0)
    assert calls == [0, 1]
    await witness.close()


def test_core_event_bus_in_a_fresh_process(tmp_path: Path) -> None:
    """The installed rosey-core.pth makes the guide's import work in any process, as a
    standalone plugin needs; a project's own core package still wins."""
    probe = "from core.event_bus import EventBus, Event, Priority; print(EventBus.__module__)"
    ours = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert ours.stdout.strip() == "runtime.legacy.event_bus"
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "__init__.py").write_text("")
    (tmp_path / "core" / "event_bus.py").write_text("EventBus = Event = Priority = None\n")
    theirs = subprocess.run(
        [sys.executable, "-c", probe.replace("EventBus.__module__", "__import__('core').__file__")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert theirs.stdout.strip() == str(tmp_path / "core" / "__init__.py")
