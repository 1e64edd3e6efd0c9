"""`rosey run` says where the console is, and `rosey console` gives a link that logs in."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from subprocess import PIPE

import aiohttp

from runtime.web.auth import COOKIE
from tests.clitools import ROSEY, clean_env, start_until


def start(project: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    """`rosey run --no-console`, read up to the line giving the console's address."""
    return start_until(project, env, "rosey: console ", "run", "--no-console")


async def test_rosey_console_logs_in_to_the_running_rosey(project: Path) -> None:
    env = {**clean_env(), "ROSEY_HTTP_LISTEN": "127.0.0.1:0"}
    server, console_url = start(project, env)
    try:
        assert console_url.startswith("http://127.0.0.1:")
        assert console_url.endswith("/")
        asked = await asyncio.create_subprocess_exec(
            ROSEY, "console", cwd=project, env=env, stdout=PIPE, stderr=PIPE
        )
        out, err = await asyncio.wait_for(asked.communicate(), 30)
        assert asked.returncode == 0, err.decode()
        link = out.decode().strip()
        assert link.startswith(console_url + "login/link?")
        assert "logs in once" in err.decode()
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            assert (await http.get(console_url + "api/functions")).status == 401
            assert (await http.get(link)).status == 200
            assert COOKIE in {c.key for c in jar}
            answer = await http.get(console_url + "api/functions")
            assert answer.status == 200
            names = {f["name"] for f in (await answer.json())["functions"]}
    finally:
        server.terminate()
        server.communicate(timeout=20)
    assert {"dice", "help"} <= names  # the shipped functions
    assert server.returncode == 0


def test_rosey_run_refuses_an_exposed_console_without_a_token(project: Path) -> None:
    env = {**clean_env(), "ROSEY_HTTP_LISTEN": "0.0.0.0:0"}
    done = subprocess.run(
        [ROSEY, "run", "--no-console"],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert done.returncode == 1
    assert "console.token" in done.stderr
    assert "not a loopback address" in done.stderr
