"""`rosey run` against a (fake, protocol-faithful) CyTube server, as an operator would run it."""

import asyncio
import subprocess
from pathlib import Path

from tests.clitools import ROSEY, clean_env
from tests.cytube_helpers import fake, make_fake  # noqa: F401 - fixtures
from tests.fake_cytube import FakeCytube


def configure(project: Path, server: FakeCytube, password: str) -> None:
    (project / "rosey.yaml").write_text(
        f"log_level: WARNING\ncytube:\n  url: {server.url}\n  channel: {server.channel}\n"
        f"  username: rosey\n  password: {password}\n"
    )


async def run(project: Path) -> asyncio.subprocess.Process:
    """`rosey run` as a child of this test's event loop, which also serves the fake server."""
    return await asyncio.create_subprocess_exec(
        ROSEY,
        "run",
        cwd=project,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
    )


async def test_roll_in_the_channel(fake: FakeCytube, project: Path) -> None:  # noqa: F811
    configure(project, fake, "secret")
    proc = await run(project)
    try:
        await fake.until(lambda: "rosey" in fake.bots(), timeout=30)
        await fake.join("alice", 1)
        await fake.say("alice", "!roll 2d6")
        [line] = await fake.until(lambda: fake.said("rosey"), timeout=20)
        assert line.startswith("alice rolled 2d6: [")
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0


async def test_bad_credentials_exit_non_zero(fake: FakeCytube, project: Path) -> None:  # noqa: F811
    configure(project, fake, "wrong")
    proc = await run(project)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1
    assert "login as 'rosey' failed: Invalid username/password combination" in err.decode()
    assert "Traceback" not in err.decode()
