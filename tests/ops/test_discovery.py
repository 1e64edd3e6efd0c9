"""Every function as a NATS micro service, asked the way NATS tooling asks: $SRV.PING/INFO/STATS."""

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client

from runtime.config import manifest
from runtime.wire.bus import Bus
from tests.conftest import Chat, MakeRuntime, write_project
from tests.opskit import CALC, CALC_CODE, Operate, operations, until


@pytest.fixture
async def operate(make_runtime: MakeRuntime, redis_url: str) -> AsyncIterator[Operate]:
    async with operations(make_runtime, redis_url) as start:
        yield start


@pytest.fixture
async def plain(nats_url: str) -> AsyncIterator[Client]:
    """A plain nats-py client, as `nats micro ls` would use."""
    client = await nats.connect(nats_url)
    yield client
    await client.close()


async def gather(client: Client, subject: str, want: int) -> list[dict[str, Any]]:
    """Answers to a request every instance answers (PING/INFO/STATS), until `want` came."""
    inbox = client.new_inbox()
    answers: list[dict[str, Any]] = []

    async def collect(msg: Any) -> None:
        answers.append(json.loads(msg.data))

    sub = await client.subscribe(inbox, cb=collect)
    await client.publish(subject, b"", reply=inbox)

    async def enough() -> bool:
        return len(answers) >= want

    await until(enough)
    await client.flush()
    await sub.unsubscribe()
    return answers


async def ask(client: Client, subject: str) -> dict[str, Any]:
    answer: dict[str, Any] = json.loads((await client.request(subject, b"", timeout=5)).data)
    return answer


async def test_info_lists_functions_versions_and_endpoints(operate: Operate, plain: Client) -> None:
    await operate()
    info = await ask(plain, "$SRV.INFO.calc")
    assert info["type"] == "io.nats.micro.v1.info_response"
    assert (info["name"], info["version"]) == ("calc", "1.0.0")
    assert info["description"] == "Test function with every outcome."
    assert info["metadata"]["commands"] == "ok boom slow secret"
    endpoints = {e["name"]: (e["subject"], e["queue_group"]) for e in info["endpoints"]}
    assert endpoints == {
        "command": ("plugin.calc.command", "rosey.calc"),
        "request": ("plugin.calc.request", "rosey.calc"),
        "event-test_calc_ping": ("test.calc.ping", "rosey.calc"),
        "event-test_calc_pong": ("test.calc.pong", "rosey.calc"),
    }
    names = {i["name"] for i in await gather(plain, "$SRV.INFO", want=3)}
    assert {"calc", "why", "rosey"} <= names
    own = await ask(plain, "$SRV.INFO.rosey")
    assert [(e["name"], e["subject"]) for e in own["endpoints"]] == [
        ("activations", "rosey.activations.query")
    ]
    ping = await ask(plain, "$SRV.PING.why")
    assert (ping["type"], ping["version"]) == ("io.nats.micro.v1.ping_response", "1.0.0")


async def test_stats_count_requests_and_errors(
    operate: Operate, plain: Client, chat: Chat, bus: Bus
) -> None:
    await operate()
    for line in ("!ok", "!boom", "!slow", "!ok"):
        await chat.say(line)
    await chat.lines(4)
    reply = await bus.request("plugin.calc.request", {"x": 1})
    assert reply == {"success": True, "data": "ok None"}
    stats = await ask(plain, "$SRV.STATS.calc")
    assert stats["type"] == "io.nats.micro.v1.stats_response"
    by_name = {e["name"]: e for e in stats["endpoints"]}
    command = by_name["command"]
    assert (command["num_requests"], command["num_errors"]) == (4, 2)
    assert command["last_error"] == "calc 1.0.0 timed out after 0.3s"
    assert command["processing_time"] >= command["average_processing_time"] > 0
    assert (by_name["request"]["num_requests"], by_name["request"]["num_errors"]) == (1, 0)
    counters = command["data"]["function"]
    assert (counters["invocations"], counters["errors"], counters["timeouts"]) == (5, 1, 1)


async def test_queue_group_is_not_shared_with_discovery(operate: Operate, bus: Bus) -> None:
    """Discovery adds no subscriber to the function's subjects: two runtimes share the work
    of `plugin.calc.request` between their Invokers only, and every request is answered once."""
    first, _ = await operate()
    second, _ = await operate()
    replies = await asyncio.gather(*(bus.request("plugin.calc.request", {}) for _ in range(40)))
    assert all(r["success"] for r in replies)
    received = [
        next(b.received for b in rt.invokers["calc"].bindings if b.subject.endswith(".request"))
        for rt in (first, second)
    ]
    assert sum(received) == 40


async def test_follows_swaps_and_removals(operate: Operate, plain: Client, tmp_path: Path) -> None:
    runtime, ops = await operate()
    before = await ask(plain, "$SRV.PING.calc")
    new = write_project(
        tmp_path / "v2", {"calc": CALC["calc"].replace('"1.0.0"', '"2.0.0"')}, CALC_CODE
    )
    await runtime.swap(manifest.load(new.manifests_dir / "calc.yaml"), new.functions_dir)
    await ops.discovery.sync()  # what Runtime's swap hook calls
    pings = await gather(plain, "$SRV.PING.calc", want=1)
    assert [(p["version"], p["id"] != before["id"]) for p in pings] == [("2.0.0", True)]
    info = await ask(plain, "$SRV.INFO.calc")
    assert (info["version"], info["metadata"]["version"]) == ("2.0.0", "2.0.0")

    await runtime.remove("calc")
    await ops.discovery.sync()
    # The runtime's control subscriptions answer for every function it serves, and no longer
    # for calc: the request finds a subscriber but no answer.
    with pytest.raises(nats.errors.TimeoutError):
        await plain.request("$SRV.PING.calc", b"", timeout=0.5)
    assert (await ask(plain, "$SRV.PING.why"))["name"] == "why"


async def test_stop_deregisters_everything(operate: Operate, plain: Client) -> None:
    _, ops = await operate()
    await ops.stop()
    for subject in ("$SRV.PING.calc", "$SRV.PING.rosey", "$SRV.INFO.why"):
        with pytest.raises(nats.errors.NoRespondersError):
            await plain.request(subject, b"", timeout=5)
