"""isolation: process — each way a worker can die costs only its own calls, and it comes back."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

from runtime.config.manifest import parse
from runtime.core.runtime import Runtime
from runtime.isolation.host import Isolated
from runtime.wire.bus import Bus
from tests.conftest import Chat, MakeRuntime

CODE = {
    "iso.py": """\
    import asyncio
    import ctypes
    import os
    import sys

    async def pid(event, ctx):
        print("a print() does not disturb the protocol")
        return f"pid {os.getpid()}"

    def boom(event, ctx):
        raise RuntimeError("secret detail")

    def segv(event, ctx):
        ctypes.string_at(0)

    def leave(event, ctx):
        sys.exit(3)

    def spin(event, ctx):
        while True:
            pass

    def hog(event, ctx):
        block = bytearray(1 << 30)
        return str(len(block))

    def talk(event, ctx):
        ctx.send_chat("from the worker")
        return "talked " + event.text

    async def slow(event, ctx):
        await asyncio.sleep(0.5)
        return "slow " + event.text
    """
}

MANIFEST = {
    "iso": """\
    name: iso
    version: "1.0.0"
    description: isolated
    handler: iso:pid
    isolation: process
    memory: 128MB
    timeout: 2
    concurrency: 50
    quarantine: {failures: 0}
    commands:
      pid: {}
      boom: {handler: "iso:boom"}
      segv: {handler: "iso:segv"}
      leave: {handler: "iso:leave"}
      spin: {handler: "iso:spin"}
      hog: {handler: "iso:hog"}
      talk: {handler: "iso:talk"}
      slow: {handler: "iso:slow"}
    """
}


async def command(bus: Bus, word: str, *args: str) -> dict[str, Any]:
    payload = {"command": word, "args": list(args), "user": "alice", "rank": 0, "channel": "test"}
    reply: dict[str, Any] = await bus.request("plugin.iso.command", payload, 10)
    return reply


def worker(runtime: Runtime) -> Isolated:
    code = runtime.invokers["iso"].code
    assert isinstance(code, Isolated)
    return code


async def restarted(code: Isolated, count: int) -> None:
    async with asyncio.timeout(20):
        while code.restarts < count or code.pid is None:
            await asyncio.sleep(0.02)


async def test_handlers_run_in_a_worker_process(make_runtime: MakeRuntime, bus: Bus) -> None:
    runtime = await make_runtime(MANIFEST, CODE)
    reply = await command(bus, "pid")
    assert reply == {"success": True, "data": {"replies": [f"pid {worker(runtime).pid}"]}}
    assert worker(runtime).pid != os.getpid()


async def test_context_calls_go_through_the_runtime(make_runtime: MakeRuntime, chat: Chat) -> None:
    await make_runtime(MANIFEST, CODE)
    await chat.say("!talk a b")
    assert await chat.lines(2) == ["from the worker", "talked a b"]


async def test_an_exception_is_one_short_line(make_runtime: MakeRuntime, chat: Chat) -> None:
    runtime = await make_runtime(MANIFEST, CODE)
    before = worker(runtime).pid
    await chat.say("!boom")
    assert await chat.lines(1) == ["Sorry, boom failed."]
    assert worker(runtime).pid == before  # an exception is not a crash


async def test_each_way_of_dying_costs_only_that_call(
    make_runtime: MakeRuntime, bus: Bus, chat: Chat
) -> None:
    """segfault, sys.exit, memory over the manifest's limit, an endless loop in sync code."""
    runtime = await make_runtime(MANIFEST, CODE)
    code = worker(runtime)
    expected = {
        "segv": "Sorry, segv failed.",
        "leave": "Sorry, leave failed.",
        "hog": "Sorry, hog failed.",
        "spin": "Sorry, spin took too long.",
    }
    for restarts, (word, line) in enumerate(expected.items(), start=1):
        dead = code.pid
        reply = await command(bus, word)
        assert reply["success"] is False and reply["error"] == line, word
        await restarted(code, restarts)
        assert code.pid != dead, word
        assert (await command(bus, "pid"))["data"]["replies"] == [f"pid {code.pid}"]
    assert runtime.started_at  # the runtime itself never noticed


async def test_kill_9_mid_load_fails_only_the_calls_in_flight(
    make_runtime: MakeRuntime, bus: Bus
) -> None:
    runtime = await make_runtime(MANIFEST, CODE)
    code = worker(runtime)
    victim = code.pid
    assert victim is not None
    first = [asyncio.create_task(command(bus, "slow", str(i))) for i in range(20)]
    async with asyncio.timeout(10):
        while len(code.calls) < 20:
            await asyncio.sleep(0.01)
    os.kill(victim, signal.SIGKILL)
    replies = await asyncio.gather(*first)
    assert [r["error"] for r in replies] == ["Sorry, slow failed."] * 20
    await restarted(code, 1)
    after = await asyncio.gather(*(command(bus, "slow", str(i)) for i in range(20)))
    assert [r["data"]["replies"] for r in after] == [[f"slow {i}"] for i in range(20)]


async def test_hot_swap_starts_the_new_worker_and_stops_the_old(
    make_runtime: MakeRuntime, bus: Bus, tmp_path: Path
) -> None:
    runtime = await make_runtime(MANIFEST, CODE)
    old = worker(runtime)
    old_pid = old.pid
    folder = tmp_path / "v2"
    folder.mkdir()
    (folder / "iso.py").write_text("async def pid(event, ctx):\n    return 'version two'\n")
    function = parse(
        {
            "name": "iso",
            "version": "2.0.0",
            "description": "v2",
            "handler": "iso:pid",
            "isolation": "process",
            "commands": {"pid": {}},
            "examples": [{"input": "!pid", "expect": "^version two$"}],
        }
    )
    slow = asyncio.create_task(command(bus, "slow", "in flight"))
    async with asyncio.timeout(10):
        while not old.calls:
            await asyncio.sleep(0.01)
    report = await runtime.swap(function, folder)
    assert report.new_version == "2.0.0" and report.lost == 0
    assert (await slow)["data"]["replies"] == ["slow in flight"]  # drained on the old worker
    assert (await command(bus, "pid"))["data"]["replies"] == ["version two"]
    assert old.process is not None and old.process.returncode is not None
    assert worker(runtime).pid not in (None, old_pid)


async def test_a_load_error_in_the_worker_names_the_file(
    make_runtime: MakeRuntime,
) -> None:
    broken = {"iso.py": "import nothing_by_this_name\n"}
    try:
        await make_runtime(MANIFEST, broken)
    except Exception as e:
        assert "cannot load iso: ModuleNotFoundError" in str(e)
        assert "nothing_by_this_name" in str(e)
    else:
        raise AssertionError("a broken isolated function started")


async def test_config_default_isolates_every_function(make_runtime: MakeRuntime, bus: Bus) -> None:
    text = MANIFEST["iso"].replace("    isolation: process\n", "")
    manifest = {"iso": text.replace("    memory: 128MB\n", "")}
    runtime = await make_runtime(manifest, CODE)
    assert not isinstance(runtime.invokers["iso"].code, Isolated)
    from runtime.config.settings import IsolationSettings

    isolated = await make_runtime(
        manifest, CODE, settings={"isolation": IsolationSettings(default="process")}
    )
    assert isinstance(isolated.invokers["iso"].code, Isolated)
