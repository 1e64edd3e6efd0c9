"""The web console's tests: a real `rosey run` (serve() in this test's event loop, on the test's
own nats-server and the session's redis-server), an HTTP client with or without a session, and
Debian's Chromium driven by Playwright.

Browser tests skip with a clear reason when /usr/bin/chromium is missing, except under CI (the
`CI` variable set), where they fail instead: CI installs it and must run them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from runtime.config.settings import (
    DeploySettings,
    HttpSettings,
    PluginsSettings,
    RedisSettings,
    Settings,
)
from runtime.core.bundle import Bundle
from runtime.host import instance
from runtime.host.serve import serve
from runtime.wire.bus import Bus
from tests.clitools import ROOT
from tests.conftest import wait_for, write_project
from tests.echokit import echo_code, echo_manifest

TOKEN = "console-test-token-0123456789"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
NO_CHROMIUM = "browser tests need Debian's chromium (apt-get install chromium)"


FLAKY = """\
name: flaky
version: "0.1.0"
description: Fails every time; paused after two failures.
handler: flaky:fail
quarantine: {failures: 2, window: 60}
commands:
  flaky: {}
"""
FLAKY_CODE = "def fail(event, ctx):\n    raise RuntimeError('always broken')\n"
OUTSIDE = """\
name: outside
version: "3.1.0"
description: Served by a process of its own (no handler here).
commands:
  outside: {rank: 2}
"""


@dataclass
class Running:
    """A `rosey run` in this process: its settings, HTTP base URL and the bus of the test."""

    settings: Settings
    url: str
    bus: Bus
    task: asyncio.Task[int]
    writer: Any
    said: list[dict[str, Any]] = field(default_factory=list)

    async def say(self, message: str, user: str = "alice", rank: float = 0) -> None:
        payload = {"user": user, "message": message, "channel": "test", "rank": rank, "time": 1}
        await self.bus.publish("cytube.chat", payload)

    async def deploy(self, bundle: Bundle, force: bool = False) -> dict[str, Any]:
        """What `rosey deploy` sends (`force`: swap even when unchanged)."""
        request = {"token": TOKEN, "action": "deploy", "bundle": bundle.__dict__, "force": force}
        reply: dict[str, Any] = await self.bus.request("rosey.deploy", request, 30)
        return reply

    async def answers(self, text: str) -> None:
        """Wait until the bot has said `text` in chat."""
        await wait_for(lambda: any(p["message"] == text for p in self.said), timeout=20)


async def start(
    tmp_path: Path, nats_url: str, redis_url: str, **console: Any
) -> tuple[Settings, asyncio.Task[int], Any]:
    """`rosey run` of a project with echo, flaky, outside (external) and simple-plugin (legacy),
    in this event loop, with console chat on a pipe: closing the returned writer ends it.
    `console`: console.* settings."""
    settings = write_project(
        tmp_path / "project",
        {"echo": echo_manifest("1.0.0"), "flaky": FLAKY, "outside": OUTSIDE},
        {"echo.py": echo_code("1.0.0"), "flaky.py": FLAKY_CODE},
    )
    settings.nats.url = nats_url
    settings.redis = RedisSettings(url=redis_url, prefix=f"test:{uuid.uuid4().hex}:")
    settings.deploy = DeploySettings(token=TOKEN, ack_window=0.05)
    settings.http = HttpSettings("127.0.0.1:0")
    settings.plugins = PluginsSettings(enabled=["simple-plugin"], dir=ROOT / "tests/legacy_plugins")
    for key, value in console.items():
        setattr(settings.console, key, value)
    read, write = os.pipe()
    reader, writer = os.fdopen(read, "r"), os.fdopen(write, "w")
    task = asyncio.create_task(serve(settings, stdin=reader, console_chat=True))

    async def up() -> bool:
        if task.done():
            task.result()  # raises what stopped it
            raise AssertionError("rosey run ended before it served")
        found = instance.find(settings)
        return bool(found and found.http)

    task.add_done_callback(lambda _: reader.close())
    try:
        await wait_for(up, timeout=30)
    except BaseException:
        writer.close()
        raise
    return settings, task, writer


@pytest.fixture
async def running(tmp_path: Path, nats_url: str, redis_url: str) -> AsyncIterator[Running]:
    settings, task, writer = await start(tmp_path, nats_url, redis_url)
    found = instance.find(settings)
    assert found is not None
    bus = await Bus.connect(nats_url, name="test-web")
    run = Running(settings, found.http, bus, task, writer)

    async def heard(msg: Any) -> None:
        run.said.append(json.loads(msg.data))

    await bus.nc.subscribe("cytube.send.chat", cb=heard)
    await bus.flush()
    try:
        yield run
    finally:
        await bus.close()
        writer.close()  # the end of console input ends `rosey run`
        async with asyncio.timeout(30):
            assert await task == 0


# HTTP


CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Client:
    """An aiohttp session against the console, logged in or not."""

    http: aiohttp.ClientSession
    base: str
    csrf: str = ""

    def url(self, path: str) -> str:
        return self.base + path

    async def login(self, token: str = TOKEN) -> aiohttp.ClientResponse:
        response = await self.http.post(
            self.url("/login"), data={"token": token, "next": "/"}, headers=self.origin
        )
        page = await self.http.get(self.url("/"))
        found = CSRF.search(await page.text())
        self.csrf = found.group(1) if found else ""
        return response

    @property
    def origin(self) -> dict[str, str]:
        return {"Origin": self.base}


@pytest.fixture
async def client(running: Running) -> AsyncIterator[Client]:
    jar = aiohttp.CookieJar(unsafe=True)  # cookies for an IP address such as 127.0.0.1
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        yield Client(http, running.url)


@pytest.fixture
async def logged_in(client: Client) -> Client:
    response = await client.login()
    assert response.status == 200
    assert client.csrf
    return client


# The browser


def chromium_or_skip() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"{NO_CHROMIUM}; CI must run the browser tests")
    pytest.skip(NO_CHROMIUM)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
async def page(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """A fresh Chromium page; a screenshot into the test's tmp_path if the test fails."""
    chromium_or_skip()
    from playwright.async_api import async_playwright, expect

    # Waits on state, bounded well above what a loaded CI machine needs (the default is 5 s).
    expect.set_options(timeout=15_000)

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        context = await browser.new_context()
        context.set_default_timeout(20_000)
        tab = await context.new_page()
        try:
            yield tab
        finally:
            report = getattr(request.node, "report_call", None)
            if report is not None and report.failed:
                with contextlib.suppress(Exception):
                    shot = tmp_path / "failure.png"
                    await tab.screenshot(path=str(shot), full_page=True)
                    print(f"screenshot of the failure: {shot}")
            await browser.close()
