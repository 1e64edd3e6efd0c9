"""A process a handler forks ends with its call, in process and in a worker; a worker's death is
reported as a failure even while something it forked holds its pipe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runtime.wire.bus import Bus
from tests.conftest import MakeRuntime, wait_for

CODE = {
    "forks.py": """\
    import ctypes
    import os
    import time

    def fork(event, ctx):
        pid = os.fork()
        if pid == 0:
            time.sleep(300)  # a child left running
        return f"child {pid}"

    def through(event, ctx):
        # The child returns from the handler too, as a copy of the process that forked it.
        return f"child {os.fork() or 0}"

    def forkdie(event, ctx):
        pid = os.fork()
        if pid == 0:
            time.sleep(300)  # holds the worker's pipe open
        with open(event.args[0], "w") as f:
            f.write(str(pid))
        ctypes.string_at(0)

    async def afork(event, ctx):
        pid = os.fork()
        if pid == 0:
            time.sleep(300)
        return f"child {pid}"
    """
}

MANIFEST = """\
name: forks
version: "1.0.0"
description: forks
handler: forks:fork
timeout: 5
{isolation}
quarantine: {{failures: 0}}
commands:
  fork: {{}}
  through: {{handler: "forks:through"}}
  forkdie: {{handler: "forks:forkdie"}}
  afork: {{handler: "forks:afork"}}
"""


def running(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def command(bus: Bus, word: str, *args: str) -> dict[str, Any]:
    payload = {"command": word, "args": list(args), "user": "alice", "rank": 0, "channel": "t"}
    reply: dict[str, Any] = await bus.request("plugin.forks.command", payload, 10)
    return reply


def child_of(reply: dict[str, Any]) -> int:
    [line] = reply["data"]["replies"]
    return int(line.split()[1])


@pytest.mark.parametrize("isolation", ["none", "process"])
async def test_a_forked_child_ends_with_the_call(
    make_runtime: MakeRuntime, bus: Bus, isolation: str
) -> None:
    await make_runtime({"forks": MANIFEST.format(isolation=f"isolation: {isolation}")}, CODE)
    for word in ("fork", "afork"):
        child = child_of(await command(bus, word))
        await wait_for(lambda child=child: not running(child))


async def test_a_forked_copy_returning_through_the_handler_exits(
    make_runtime: MakeRuntime, bus: Bus
) -> None:
    await make_runtime({"forks": MANIFEST.format(isolation="")}, CODE)
    reply = await command(bus, "through")
    child = child_of(reply)
    assert child != 0  # the parent's answer; the child did not answer
    await wait_for(lambda: not running(child))


async def test_a_worker_death_with_a_forked_child_is_a_failure(
    make_runtime: MakeRuntime, bus: Bus, tmp_path: Path
) -> None:
    await make_runtime({"forks": MANIFEST.format(isolation="isolation: process")}, CODE)
    told = tmp_path / "child"
    for _ in range(2):  # and again, in the same run, with the next worker
        reply = await command(bus, "forkdie", str(told))
        assert reply["success"] is False and reply["error"] == "Sorry, forkdie failed."
        child = int(told.read_text())
        await wait_for(lambda child=child: not running(child))
        await wait_for(lambda: answers(bus), timeout=20)  # restarted


async def answers(bus: Bus) -> bool:
    try:
        return (await command(bus, "fork"))["success"] is True
    except Exception:
        return False
