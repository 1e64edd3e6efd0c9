"""The embedded redis-server: acknowledged writes survive kill -9, and no server is orphaned."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.database.store import Store
from runtime.host.servers import START_TIMEOUT, EmbeddedRedis, find_binary, free_port

CHILD = """
import asyncio, sys
from pathlib import Path
from runtime.host.servers import EmbeddedRedis
from runtime.database.store import Store

redis = EmbeddedRedis(Path(sys.argv[1]))
url = redis.start()

async def write():
    store = await Store.connect(url)
    await store.declare_indexes("durable", ["n"])
    for i in range(50):
        await store.set("durable", None, {"n": i, "text": "é"})
    await store.update("durable", 1, inc={"n": 100})
    await store.close()

asyncio.run(write())
print("written", redis.process.pid, flush=True)
sys.stdin.read()  # until killed
"""


def gone(pid: int) -> bool:
    """No such process, or only its zombie (dead, waiting for a parent to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def wait_gone(pid: int) -> bool:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if gone(pid):
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def child(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """A Python process that started Rosey's embedded Redis in tmp_path and wrote to it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path / "data")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    assert line[:1] == ["written"], line
    with proc:  # closes the pipes
        yield proc, int(line[1])
        proc.kill()


async def read_back(data_dir: Path) -> None:
    redis = EmbeddedRedis(data_dir)
    store = await Store.connect(redis.start())
    try:
        assert await store.count("durable") == 50
        assert await store.get("durable", 1) == {"id": 1, "n": 100, "text": "é"}
        # The index came back with the records.
        assert [r["id"] for r in await store.query("durable", {"n": {"$gte": 48}})] == [1, 49, 50]
        assert await store.set("durable", None, {}) == 51
    finally:
        await store.close()
        redis.stop()


async def test_writes_survive_kill_9_of_rosey_and_leave_no_orphan(
    child: tuple[subprocess.Popen[str], int], tmp_path: Path
) -> None:
    proc, redis_pid = child
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert wait_gone(redis_pid), "redis-server outlived the process that started it"
    await read_back(tmp_path / "data")


async def test_writes_survive_kill_9_of_rosey_and_redis(
    child: tuple[subprocess.Popen[str], int], tmp_path: Path
) -> None:
    # An acknowledged write is in the kernel's page cache: even a dead Redis keeps it.
    proc, redis_pid = child
    os.kill(redis_pid, signal.SIGKILL)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert wait_gone(redis_pid)
    await read_back(tmp_path / "data")


def orphan(data_dir: Path) -> subprocess.Popen[bytes]:
    """A redis-server as an earlier Rosey would have left it: same dir and pidfile, no parent."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = subprocess.Popen(
        [
            find_binary("redis-server"),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(data_dir),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--pidfile",
            str(data_dir / "redis.pid"),
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + START_TIMEOUT
    while not (data_dir / "redis.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return proc


async def test_an_orphan_on_the_same_data_is_replaced(tmp_path: Path) -> None:
    data = tmp_path / "data"
    old = orphan(data)
    try:
        redis = EmbeddedRedis(data)
        url = redis.start()
        assert old.wait(START_TIMEOUT) is not None  # stopped, so one process owns the AOF
        store = await Store.connect(url)
        await store.set("c", 1, {"a": 1})
        await store.close()
        redis.stop()
        assert redis.process is None and not redis.running
    finally:
        old.kill()
        old.wait()


async def test_a_pidfile_naming_some_other_redis_is_left_alone(tmp_path: Path) -> None:
    other = orphan(tmp_path / "other")
    data = tmp_path / "data"
    data.mkdir()
    (data / "redis.pid").write_text(str(other.pid))
    redis = EmbeddedRedis(data)
    try:
        redis.start()
        assert other.poll() is None  # it serves another data dir: not ours to stop
    finally:
        redis.stop()
        other.kill()
        other.wait()
