"""SIGTERM ends `rosey run` within drain_timeout + 1 s whatever functions do, and says which
calls it abandoned."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from runtime.wire.bus import Bus
from tests.clitools import ROSEY, clean_env
from tests.conftest import wait_for

MANIFEST = """\
name: hang
version: "1.0.0"
description: never returns
handler: hang:run
timeout: 30
concurrency: 5
commands:
  hang: {}
"""
CODE = """\
import time

def run(event, ctx):
    with open(event.args[0], "a") as f:
        f.write(event.args[1] + "\\n")
    while True:
        time.sleep(1)
"""


async def test_sigterm_ends_a_run_with_hung_sync_handlers(tmp_path: Path) -> None:
    (tmp_path / "manifests").mkdir()
    (tmp_path / "functions").mkdir()
    (tmp_path / "manifests" / "hang.yaml").write_text(MANIFEST)
    (tmp_path / "functions" / "hang.py").write_text(CODE)
    (tmp_path / "rosey.yaml").write_text("log_level: INFO\ndrain_timeout: 1\n")
    started, log = tmp_path / "started", tmp_path / "stderr"
    with log.open("w") as err:
        server = subprocess.Popen(  # noqa: ASYNC220 - the process under test
            [ROSEY, "run"],
            cwd=tmp_path,
            stdin=subprocess.PIPE,  # console chat on a pipe that stays open
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=clean_env(),
        )
    try:
        state = tmp_path / ".rosey" / "runtime.json"
        await wait_for(lambda: state.exists() or server.poll() is not None, timeout=20)
        bus = await Bus.connect(json.loads(state.read_text())["nats_url"], name="test")
        payload = {"command": "hang", "user": "u", "rank": 0}
        for i in range(3):
            await bus.publish("plugin.hang.command", {**payload, "args": [str(started), str(i)]})
        await bus.close()
        await wait_for(lambda: len(started.read_text().split()) == 3 if started.exists() else False)
        began = time.monotonic()
        server.send_signal(signal.SIGTERM)
        code = server.wait(5)
        took = time.monotonic() - began
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        if server.stdin is not None:
            server.stdin.close()
    assert code == 0, log.read_text()
    assert took < 1 + 1, took
    text = log.read_text()
    assert "hang 1.0.0: 3 call(s) still running after drain_timeout (1s) were abandoned" in text
    assert text.count("abandoned hang 1.0.0 !hang [") == 3, text
    assert "Traceback" not in text and not state.exists()


def test_the_watchdog_ends_a_process_whose_shutdown_outlives_its_bound() -> None:
    script = "import time\nfrom runtime.process import Watchdog\nWatchdog(0.2, 'shutdown')\ntime.sleep(30)\n"
    began = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", "import logging; logging.basicConfig()\n" + script],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.returncode == 1
    assert time.monotonic() - began < 10
    assert "shutdown did not finish within 0.2s; exiting now" in result.stderr


STUCK = """\
import asyncio, logging
from runtime.process import Watchdog
logging.basicConfig()

async def hang():
    await asyncio.Event().wait()

async def main():
    asyncio.get_running_loop().create_task(hang(), name="stuck-drain")
    Watchdog(0.2, "shutdown", asyncio.get_running_loop())
    await asyncio.Event().wait()

asyncio.run(main())
"""


def test_the_watchdog_names_the_tasks_a_shutdown_hangs_in() -> None:
    result = subprocess.run(
        [sys.executable, "-c", STUCK], capture_output=True, text=True, timeout=10
    )
    assert result.returncode == 1
    assert "still running: stuck-drain at <string>:6 in hang" in result.stderr, result.stderr
