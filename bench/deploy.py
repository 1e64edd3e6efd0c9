"""Deploy of 1 changed function among 11: `rosey deploy functions` until chat answers with the
new version.

`rosey run` serves 11 generated functions (`!gen0` … `!gen10`, each answering `v<N> <user>`).
One function's code and version change on disk; then the installed `rosey deploy functions` is
spawned while a chat line `!gen0` goes out every 5 ms. The figure is from spawning the CLI to
the first reply of the new version on `cytube.send.chat`; the CLI's own wall time is reported
too. The median over rounds, each round changing the same function again.
"""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
import time
from pathlib import Path

from . import Env, Report, Row, median, procs
from .chatload import ChatLoad

FUNCTIONS = 11
EVERY = 0.005


def rounds(quick: bool) -> int:
    return 1 if quick else 5


def change(folder: Path, version: int) -> None:
    name, manifest, code = procs.trivial("gen0", f"v{version}")
    (folder / "manifests" / f"{name}.yaml").write_text(
        manifest.replace('version: "1.0.0"', f'version: "1.0.{version}"')
    )
    (folder / "functions" / f"{name}.py").write_text(code)


async def once(load: ChatLoad, folder: Path, version: int) -> tuple[float, float]:
    """(seconds to the first new reply, seconds the CLI took)."""
    change(folder, version)
    new = f"v{version} u".encode()
    seen: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    def answered(sent: asyncio.Future[bytes]) -> None:
        if sent.cancelled() or sent.exception() is not None or seen.done():
            return
        if new in sent.result():
            seen.set_result(time.perf_counter())

    sending: list[asyncio.Future[bytes]] = []

    async def chat() -> None:
        while not seen.done():
            token, payload = load.line("!gen0")
            sending.append(asyncio.ensure_future(load.send(token, payload)))
            sending[-1].add_done_callback(answered)
            await asyncio.sleep(EVERY)

    chatter = asyncio.create_task(chat())
    began = time.perf_counter()
    cli = await asyncio.create_subprocess_exec(
        procs.ROSEY,
        "deploy",
        "functions",
        cwd=folder,
        env=procs.clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, err = await cli.communicate()
    done = time.perf_counter() - began
    if cli.returncode != 0:
        chatter.cancel()
        raise RuntimeError(f"rosey deploy failed: {err.decode()[-1500:]}")
    try:
        first = await asyncio.wait_for(seen, 30)
    finally:
        chatter.cancel()
        await asyncio.wait(sending, timeout=10)  # the lines still on their way
        for sent in sending:
            sent.cancel()
    return first - began, done


async def run(env: Env) -> Report:
    n = rounds(env.quick)
    load = await ChatLoad.connect(env.nats_url)
    found: list[tuple[float, float]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="rosey-bench-deploy-") as tmp:
            folder = procs.project(
                Path(tmp),
                env.nats_url,
                env.redis_url,
                library=False,
                extra=[procs.trivial(f"gen{i}", "v0") for i in range(FUNCTIONS)],
            )
            proc = await procs.start_rosey(folder, env.nats_url)
            try:
                for r in range(n):
                    found.append(await once(load, folder, r + 1))
            finally:
                proc.stop()
    finally:
        await load.close()
    rows = [
        Row(
            f"deploy 1 changed of {FUNCTIONS}, CLI start → first new reply",
            "s",
            median([f[0] for f in found]),
        ),
        Row(f"deploy 1 changed of {FUNCTIONS}, CLI wall time", "s", median([f[1] for f in found])),
    ]
    notes = [f"deploy: `rosey deploy functions` with 1 of {FUNCTIONS} changed, median of {n}."]
    return Report(rows, notes)
