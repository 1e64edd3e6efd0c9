"""Faults survived for real: nats-server restarted under a runtime; a `rosey worker` killed -9."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from runtime.host.servers import EmbeddedNats
from runtime.wire.bus import Bus
from tests.clitools import ROSEY, clean_env, start_server
from tests.conftest import Chat, MakeRuntime, wait_for

CODE = {
    "slow.py": """\
    import asyncio
    import os

    async def run(event, ctx):
        await ctx.publish("test.slow.started", {"pid": os.getpid()})
        await asyncio.sleep(float(event.args[0]) if event.args else 0)  # a call that takes time
        return f"done {event.text} by {os.getpid()}"
    """
}
MANIFEST = {
    "slow": """\
    name: slow
    version: "1.0.0"
    description: answers after a while
    handler: slow:run
    concurrency: 100
    commands:
      slow: {}
    """
}


async def test_nats_restart_under_a_runtime(
    make_runtime: MakeRuntime, fresh_nats: EmbeddedNats, chat: Chat
) -> None:
    """A reply finished during the outage is delivered after it; subscriptions come back."""
    runtime = await make_runtime(MANIFEST, CODE)
    port = int(fresh_nats.url.rsplit(":", 1)[1])
    await chat.say("!slow 1 during")
    async with asyncio.timeout(10):
        while runtime.invokers["slow"].in_flight == 0:
            await asyncio.sleep(0.01)
    fresh_nats.stop()
    # Publishing while disconnected is buffered by the client, not an error that ends anything.
    beat = {"timestamp": 1.0, "uptime": 1.0, "plugins_active": 1, "nats_connected": False}
    await runtime.bus.publish("platform.heartbeat", beat)
    fresh_nats.start(port=port)
    async with asyncio.timeout(20):
        while not (runtime.bus.connected and chat.bus.connected):
            await asyncio.sleep(0.05)
    assert await chat.lines(1) == [f"done 1 during by {os.getpid()}"]
    await chat.say("!slow 0 after")  # the router's and the function's subscriptions are back
    assert (await chat.lines(2))[1] == f"done 0 after by {os.getpid()}"
    assert runtime.started_at


def _project(base: Path) -> Path:
    (base / "manifests").mkdir(parents=True)
    (base / "functions").mkdir()
    (base / "manifests" / "slow.yaml").write_text(
        MANIFEST["slow"].replace("\n    ", "\n").removeprefix("    ")
    )
    (base / "functions" / "slow.py").write_text(
        CODE["slow.py"].replace("\n    ", "\n").removeprefix("    ")
    )
    (base / "rosey.yaml").write_text("log_level: WARNING\n")
    return base


async def _ask(bus: Bus, i: int, wait: float, timeout: float = 10) -> dict[str, Any] | None:
    payload = {"command": "slow", "args": [str(wait), str(i)], "user": "u", "rank": 0}
    try:
        reply: dict[str, Any] = await bus.request("plugin.slow.command", payload, timeout)
    except Exception:
        return None
    return reply


async def test_rosey_worker_shares_the_load_and_its_kill_9_loses_only_its_calls(
    tmp_path: Path,
) -> None:
    project = _project(tmp_path)
    with start_server(project, "--no-console") as server:
        state = json.loads((project / ".rosey" / "runtime.json").read_text())
        worker = subprocess.Popen(  # noqa: ASYNC220 - started once, killed on purpose
            [ROSEY, "worker"],
            cwd=project,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(),
        )
        bus = await Bus.connect(state["nats_url"], name="test-load")
        try:
            assert worker.stderr is not None
            line = ""
            while "worker serving" not in line:
                line = await asyncio.to_thread(worker.stderr.readline)
                assert line, "rosey worker ended before serving"
            assert "worker serving 1 function(s)" in line
            # Both processes take a share of the queue group.
            replies = await asyncio.gather(*(_ask(bus, i, 0.05) for i in range(60)))
            pids = {r["data"]["replies"][0].rsplit(" ", 1)[1] for r in replies if r}
            assert pids == {str(server.pid), str(worker.pid)}
            # kill -9 the worker with calls in flight on both: each call says when it begins.
            begun: set[int] = set()

            async def began(msg: Any) -> None:
                begun.add(json.loads(msg.data)["pid"])

            await bus.nc.subscribe("test.slow.started", cb=began)
            await bus.flush()
            load = [asyncio.create_task(_ask(bus, i, 1.0, timeout=5)) for i in range(60)]
            await wait_for(lambda: begun >= {server.pid, worker.pid})
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
            done = await asyncio.gather(*load)
            answered = [r["data"]["replies"][0] for r in done if r]
            # What the runtime held was answered; only what the worker held is missing.
            assert answered and all(line.endswith(f" by {server.pid}") for line in answered)

            # Until the server has read the end of the dead connection, it may still route a
            # request there. Wait for the state where it has: a round of requests all answered.
            async def all_answered() -> bool:
                probe = await asyncio.gather(*(_ask(bus, i, 0.0, timeout=1) for i in range(20)))
                return all(r and r["success"] for r in probe)

            await wait_for(all_answered, timeout=20)
            after = await asyncio.gather(*(_ask(bus, i, 0.0) for i in range(60)))
            assert all(r and r["success"] for r in after)
        finally:
            await bus.close()
            if worker.poll() is None:
                worker.kill()
                worker.wait()
            if worker.stderr is not None:
                worker.stderr.close()
            server.send_signal(signal.SIGTERM)
            assert server.wait(30) == 0
