"""Zero lost commands under faults, at most one answer each: durable delivery measured for real.

Each test says `!pid` at 200 lines a second from distinct users, through a real `rosey run` (and
`rosey worker`) on real nats-server (JetStream, file store) and redis-server, breaks something in
the middle of the load, and then counts every user's answers."""

from __future__ import annotations

import json
import signal
import subprocess
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from nats.aio.msg import Msg
from redis.asyncio import Redis

from runtime.host.servers import EmbeddedNats, free_port
from runtime.wire.bus import Bus
from tests.clitools import rosey
from tests.conftest import wait_for
from tests.deliverykit import Load, durable_project, spawn
from tests.natscluster import NatsCluster

COUNT, RATE, FAULT_AT = 800, 200.0, 300
pytestmark = pytest.mark.timeout(120)


def kill9(process: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(10)


class Processes:
    def __init__(self) -> None:
        self.running: list[subprocess.Popen[str]] = []

    def add(self, process: subprocess.Popen[str]) -> subprocess.Popen[str]:
        self.running.append(process)
        return process

    def stop(self) -> None:
        for process in self.running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.running:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def processes() -> Iterator[Processes]:
    running = Processes()
    yield running
    running.stop()


@pytest.fixture
async def load(jetstream: EmbeddedNats) -> AsyncIterator[Load]:
    bus = await Bus.connect(jetstream.url, name="test-load", timeout=1)
    yield Load(bus)
    await bus.close()


async def _check(load: Load) -> None:
    await load.settle(COUNT)
    lost, twice = load.report(COUNT)
    assert (lost, twice) == ([], []), f"lost {len(lost)}, answered twice {len(twice)}"


async def test_nats_server_kill_9_and_restart_loses_nothing(
    tmp_path: Path, jetstream: EmbeddedNats, redis_url: str, load: Load, processes: Processes
) -> None:
    project = durable_project(tmp_path / "p", jetstream.url, redis_url)
    server = processes.add(spawn(project, "run", "--no-console"))
    await load.start()
    port = int(jetstream.url.rsplit(":", 1)[1])
    await wait_for(lambda: (project / ".rosey" / "runtime.json").exists(), timeout=30)

    def restart() -> None:
        assert jetstream.process is not None
        kill9(jetstream.process)  # type: ignore[arg-type]
        jetstream.process = None
        jetstream.start(port=port)

    try:
        await load.run(COUNT, RATE, at=FAULT_AT, fault=restart)
        await _check(load)
    finally:
        await load.stop()
    assert server.poll() is None, "rosey run died with NATS"


async def test_a_worker_killed_9_loses_nothing(
    tmp_path: Path, jetstream: EmbeddedNats, redis_url: str, load: Load, processes: Processes
) -> None:
    project = durable_project(tmp_path / "p", jetstream.url, redis_url)
    processes.add(spawn(project, "run", "--no-console"))
    await wait_for(lambda: (project / ".rosey" / "runtime.json").exists(), timeout=30)
    worker = processes.add(spawn(project, "worker"))
    await load.start()
    try:
        await load.warm(2)
        await load.run(COUNT, RATE, at=FAULT_AT, fault=lambda: kill9(worker))
        await _check(load)
    finally:
        await load.stop()
    assert worker.pid in load.by, "the worker never answered: nothing was at stake"


async def test_rosey_run_killed_9_with_a_worker_up_loses_nothing(
    tmp_path: Path, jetstream: EmbeddedNats, redis_url: str, load: Load, processes: Processes
) -> None:
    project = durable_project(tmp_path / "p", jetstream.url, redis_url)
    server = processes.add(spawn(project, "run", "--no-console"))
    await wait_for(lambda: (project / ".rosey" / "runtime.json").exists(), timeout=30)
    processes.add(spawn(project, "worker"))
    await load.start()
    try:
        await load.warm(2)
        await load.run(COUNT, RATE, at=FAULT_AT, fault=lambda: kill9(server))
        await _check(load)
    finally:
        await load.stop()


async def test_a_cluster_node_killed_9_loses_nothing(
    tmp_path: Path, redis_url: str, processes: Processes
) -> None:
    cluster = NatsCluster(tmp_path / "cluster")
    cluster.start()
    try:
        await cluster.formed()
        project = durable_project(tmp_path / "p", cluster.url, redis_url, replicas=3)
        processes.add(spawn(project, "run", "--no-console"))
        await wait_for(lambda: (project / ".rosey" / "runtime.json").exists(), timeout=40)
        bus = await Bus.connect(cluster.url, name="test-load", timeout=1)
        load = Load(bus)
        await load.start()
        try:
            await load.run(COUNT, RATE, at=FAULT_AT, fault=lambda: cluster.kill(0))
            await _check(load)
        finally:
            await load.stop()
            await bus.close()
    finally:
        processes.stop()
        cluster.stop()


ADDQUOTE_MANIFEST = """\
name: book
version: "1.0.0"
description: adds quotes; the first runtime to add one dies before answering
handler: "book:add"
collections: [quotes]
commands:
  addquote:
    cooldown: {seconds: 10, per: user}
"""
ADDQUOTE_CODE = """\
import asyncio
import os
from pathlib import Path

async def add(event, ctx):
    record_id = await ctx.db.set("quotes", None, {"text": event.text, "by": event.user})
    marker = Path(__file__).parent / "died-once"
    if not marker.exists():
        marker.write_text(str(os.getpid()))  # the test kills this process now
        await asyncio.Event().wait()
    return f"Quote #{record_id} added by {event.user} ({os.getpid()})"
"""


async def test_addquote_redelivered_after_its_write_applies_once(
    tmp_path: Path, jetstream: EmbeddedNats, redis_url: str, load: Load, processes: Processes
) -> None:
    """The runtime running `!addquote` dies after the quote is written and before it answers:
    another runtime gets the command again, runs it again, and its write (same token) and its
    cooldown booking (same id) are those of the first run: one quote, one answer."""
    project = durable_project(tmp_path / "p", jetstream.url, redis_url)
    (project / "manifests" / "book.yaml").write_text(ADDQUOTE_MANIFEST)
    (project / "functions" / "book.py").write_text(ADDQUOTE_CODE)
    processes.add(spawn(project, "run", "--no-console"))
    await wait_for(lambda: (project / ".rosey" / "runtime.json").exists(), timeout=30)
    processes.add(spawn(project, "worker"))
    await load.start()
    try:
        await load.warm(2)  # both pull
        payload = {"user": "ann", "message": "!addquote hello", "channel": "t", "rank": 0}
        said: list[str] = []

        async def collect(msg: Msg) -> None:
            said.append(json.loads(msg.data)["message"])

        sub = await load.bus.nc.subscribe("cytube.send.chat", cb=collect)
        load.publisher.put("cytube.chat", json.dumps({**payload, "time": 1}).encode(), "aq-1")
        marker = project / "functions" / "died-once"
        await wait_for(marker.exists, timeout=20)
        dying = int(marker.read_text())
        victim = next(p for p in processes.running if p.pid == dying)
        kill9(victim)
        await wait_for(lambda: any(line.startswith("Quote #") for line in said), timeout=20)
        await sub.unsubscribe()
    finally:
        await load.stop()
    redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        ids = await redis.zrange("rosey:db:{quotes}:ids", 0, -1)
    finally:
        await redis.aclose()
    [answer] = [line for line in said if line.startswith("Quote #")]
    assert len(ids) == 1, ids
    assert answer.startswith("Quote #1 added by ann") and f"({dying})" not in answer
    assert not any("cooling down" in line for line in said), said


async def test_a_stale_command_is_counted_and_logged_not_run(
    tmp_path: Path, jetstream: EmbeddedNats, redis_url: str, load: Load, processes: Processes
) -> None:
    """A line older than delivery.max_age when it arrives is not run: counted in /metrics and
    logged (here every line is that old: max_age is a microsecond)."""
    port = free_port()
    project = durable_project(tmp_path / "p", jetstream.url, redis_url, max_age=1e-6)
    server = processes.add(spawn(project, "run", "--no-console", http=f"127.0.0.1:{port}"))
    await wait_for(lambda: (project / ".rosey" / "runtime.json").exists(), timeout=30)
    await load.start()
    try:
        load.say(0)
        await wait_for(lambda: 'rosey_chat_lines_total{outcome="stale"} 1.0' in _metrics(port))
    finally:
        await load.stop()
    server.send_signal(signal.SIGTERM)
    server.wait(20)
    log = next(project.glob("run-*.log")).read_text()
    assert "delivery.max_age 1e-06s): not run" in log, log
    assert load.answers == {}


def _metrics(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            return r.read().decode()
    except OSError:
        return ""


def test_a_nats_without_jetstream_is_a_clear_start_error(
    tmp_path: Path, project: Path, redis_url: str
) -> None:
    plain = EmbeddedNats(tmp_path / "plain")
    url = plain.start()
    try:
        config = f"nats: {{url: '{url}'}}\nredis: {{url: '{redis_url}'}}\n"
        (project / "rosey.yaml").write_text(config)
        refused = rosey(project, "run", stdin="!roll 2d6\n")
        (project / "rosey.yaml").write_text(config + "delivery: {mode: at-most-once}\n")
        kept = rosey(project, "run", stdin="!roll 2d6\n")
    finally:
        plain.stop()
    assert refused.returncode == 1
    assert "delivery.mode: durable delivery needs JetStream on the NATS server: start " in (
        refused.stderr
    )
    assert "Traceback" not in refused.stderr
    assert kept.returncode == 0, kept.stderr
    assert "rosey: console rolled 2d6: [" in kept.stdout
