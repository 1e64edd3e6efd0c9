"""Legacy plugin packages in a runtime: the guide's plugins, ranks, migrations, deploys, hot swap."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from itertools import pairwise
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest

from runtime.config.settings import PluginsSettings
from runtime.core import bundle
from runtime.core.runtime import Runtime
from runtime.database.service import DatabaseService
from runtime.deploy import collect
from runtime.deploy.service import DeployService
from runtime.deploy.versions import Versions
from runtime.errors import ConfigError, DeployError, RegistryError
from runtime.legacy import plugin as legacy
from runtime.legacy.host import LegacyPlugins
from runtime.wire.bus import Bus
from tests.clitools import ROOT
from tests.conftest import Chat, MakeRuntime, wait_for

PLUGINS = ROOT / "tests" / "legacy_plugins"
TOKEN = "s3cret"

Serve = Callable[..., Awaitable[tuple[Runtime, LegacyPlugins]]]


@pytest.fixture
async def serve(make_runtime: MakeRuntime) -> AsyncIterator[Serve]:
    """Factory: a started runtime with legacy plugins from `folder` (default tests/legacy_plugins)."""
    hosts: list[LegacyPlugins] = []

    async def start(
        enabled: list[str],
        folder: Path = PLUGINS,
        ranks: dict[str, float] | None = None,
        standalone: list[str] | None = None,
    ) -> tuple[Runtime, LegacyPlugins]:
        plugins = PluginsSettings(
            enabled=enabled, standalone=standalone or [], dir=folder, ranks=ranks or {}
        )
        runtime = await make_runtime({}, {}, settings={"plugins": plugins})
        host = LegacyPlugins(runtime)
        hosts.append(host)
        await host.start()
        return runtime, host

    yield start
    for host in hosts:
        await host.stop()


async def ask(chat: Chat, text: str, rank: float = 0) -> str:
    before = len(chat.sent)
    await chat.say(text, rank=rank)
    return (await chat.lines(before + 1))[-1]


async def test_guide_plugins_serve_chat_in_a_runtime(
    serve: Serve, chat: Chat, database: DatabaseService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "rosey.legacy")
    runtime, host = await serve(
        ["simple-plugin", "my-plugin", "fortune", "quote-db"], ranks={"addquote": 1}
    )
    assert sorted(host.running) == ["fortune", "my-plugin", "quote-db", "simple-plugin"]
    quotes = runtime.registry.get("quote-db")
    assert quotes is not None and quotes.external
    assert {c.name: c.rank for c in quotes.commands.values()} == {
        "quote": 0,
        "addquote": 1,
        "delquote": 0,
    }
    warned = [r.getMessage() for r in caplog.records if "NOT applied" in r.getMessage()]
    assert len(warned) == 1 and "fortune/migrations/001_create_tables.sql" in warned[0]

    assert await ask(chat, "!simple") == "Simple response!"
    assert await ask(chat, "!mycommand") == "Hello, alice!"
    fortune = await ask(chat, "!fortune")
    assert fortune.startswith("🥠 ")
    assert await ask(chat, "!fortune favorite") == "🥠 Your favorite: " + fortune.removeprefix(
        "🥠 "
    )

    assert await ask(chat, "!addquote hello world") == (
        "alice: !addquote needs registered rank or higher (you are guest)."
    )
    assert await ask(chat, "!addquote hello world", rank=1) == "Added quote #1"
    assert await ask(chat, "!quote") == "Quote #1: hello world (alice)"
    assert await ask(chat, "!delquote 1", rank=2) == "❌ This command requires admin privileges"
    assert await ask(chat, "!quote mine") == "You have 1 quote(s): #1: hello world"
    assert chat.sent[-1][0] == "cytube.send.pm"
    assert await ask(chat, "!delquote 1", rank=3) == "Deleted quote #1"
    assert await ask(chat, "!quote") == "No quotes yet."


def echo_plugin(folder: Path, version: str, broken: str = "") -> Path:
    """A plugin that says which version answered, and when it starts and stops."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "__init__.py").write_text(
        dedent(f"""\
        from core.event_bus import EventBus, Event
        {broken}
        PLUGIN_INFO = {{"name": "echo", "version": "{version}", "commands": ["echo"],
                       "description": "Echo"}}
        _bus = None

        async def start(event_bus: EventBus):
            global _bus
            _bus = event_bus

            async def handle(event: Event):
                await event_bus.publish(
                    "cytube.send.chat", {{"message": "v{version}:" + " ".join(event.data["args"])}}
                )

            await event_bus.subscribe("plugin.echo.command", handle)
            await event_bus.publish("cytube.send.chat", {{"message": "started v{version}"}})
            return "v{version}"

        async def stop(state):
            await _bus.publish("cytube.send.chat", {{"message": "stopped " + state}})
        """)
    )
    return folder


@pytest.fixture
async def deployer(
    bus: Bus, redis_url: str
) -> AsyncIterator[Callable[[Runtime, LegacyPlugins | None], DeployService]]:
    made: list[tuple[DeployService, Versions]] = []
    prefix = f"test:{uuid.uuid4().hex}:"

    def make(runtime: Runtime, plugins: LegacyPlugins | None) -> DeployService:
        versions = Versions.connect(redis_url, prefix=prefix)
        service = DeployService(
            runtime, runtime.bus, TOKEN, versions, ack_window=0.05, plugins=plugins
        )
        made.append((service, versions))
        return service

    yield make
    for service, versions in made:
        await service.stop()
        await versions.close()


async def deploy(bus: Bus, shipped: bundle.Bundle) -> dict[str, Any]:
    request = {"token": TOKEN, "action": "deploy", "bundle": json.loads(shipped.to_json())}
    reply: dict[str, Any] = await bus.request("rosey.deploy", request, timeout=20)
    return reply


def answered_by(chat: Chat, version: str) -> bool:
    return any(p["message"].startswith(f"v{version}:") for _, p in chat.sent)


async def test_rosey_deploy_hot_swaps_a_plugin_under_load(
    serve: Serve,
    chat: Chat,
    bus: Bus,
    tmp_path: Path,
    deployer: Callable[[Runtime], DeployService],
) -> None:
    plugins = tmp_path / "plugins"
    folder = echo_plugin(plugins / "echo", "1.0.0")
    runtime, host = await serve(["echo"], folder=plugins)
    service = deployer(runtime, host)
    await service.start()
    done = asyncio.Event()
    sent = 0

    async def load() -> None:
        nonlocal sent
        while not done.is_set() or sent < 200:
            await chat.say(f"!echo {sent}")
            sent += 1
            if sent % 10 == 0:
                await asyncio.sleep(0.005)  # pacing, so the sender does not starve the rest

    sender = asyncio.create_task(load())
    reports = []
    for old, version in pairwise(("1.0.0", "2.0.0", "3.0.0")):
        await wait_for(partial(answered_by, chat, old))  # the version in service is under load
        echo_plugin(folder, version)
        # The path `rosey deploy plugins/echo` takes: bundle.collect → a legacy bundle.
        [shipped] = collect.collect([folder], tmp_path / "none", tmp_path / "none")
        assert legacy.is_legacy(shipped) and shipped.version == version
        reply = await deploy(bus, shipped)
        assert reply["success"], reply
        reports.append(reply["data"]["report"])
    await wait_for(partial(answered_by, chat, "3.0.0"))
    done.set()
    await sender
    await chat.lines(sent + 5, timeout=30)  # every answer, three starts and two stops
    messages = [p["message"] for _, p in await chat.settle(runtime, extra=lambda: host.busy)]
    lifecycle = [m for m in messages if m.startswith(("started", "stopped"))]
    # stop() of the old instance only once the new one has started and taken over.
    assert lifecycle == [
        "started v1.0.0",
        "started v2.0.0",
        "stopped v1.0.0",
        "started v3.0.0",
        "stopped v2.0.0",
    ]
    answers = [m for m in messages if m not in lifecycle]
    assert Counter(m.split(":", 1)[1] for m in answers) == Counter(str(i) for i in range(sent))
    assert {m.split(":", 1)[0] for m in answers} >= {"v1.0.0", "v3.0.0"}
    assert [r["lost"] for r in reports] == [0, 0]
    assert runtime.registry.get("echo").version == "3.0.0"  # type: ignore[union-attr]
    assert not [m for m in sys.modules if m.startswith("_rosey_legacy_echo_")][1:]

    # A runtime started later serves the deployed version from Redis, though not enabled there.
    later, later_host = await serve([], folder=tmp_path / "nothing")
    deployed, removed = await deployer(later, later_host).deployed()
    await later_host.start(deployed, removed)
    assert later.registry.get("echo").version == "3.0.0"  # type: ignore[union-attr]
    assert later_host.running["echo"].code.function.version == "3.0.0"

    await chat.settle(later, extra=lambda: later_host.busy)  # it said "started v3.0.0"
    report = await host.remove("echo")
    assert report.removed == ["echo"]
    assert "echo" not in runtime.registry and "echo" not in host.running
    assert (await chat.lines(len(chat.sent) + 1))[-1] == "stopped v3.0.0"


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        ("def oops(:\n", "syntax error at plugins/echo/__init__.py:2"),
        ("import no_such_module_here\n", "ModuleNotFoundError at plugins/echo/__init__.py:2"),
        ("start = None\n", "echo: start() failed: TypeError"),
    ],
)
async def test_failed_deploy_keeps_the_old_plugin(
    serve: Serve,
    chat: Chat,
    bus: Bus,
    tmp_path: Path,
    deployer: Callable[[Runtime], DeployService],
    broken: str,
    expected: str,
) -> None:
    folder = echo_plugin(tmp_path / "plugins" / "echo", "1.0.0")
    runtime, host = await serve(["echo"], folder=folder.parent)
    await deployer(runtime, host).start()
    await chat.lines(1)  # started v1.0.0
    bad = echo_plugin(tmp_path / "bad" / "echo", "2.0.0", broken)
    if "start = None" in broken:
        (bad / "__init__.py").write_text(
            (bad / "__init__.py").read_text().replace("async def start(", "async def _start(")
            + "\nasync def start(event_bus):\n    raise TypeError('boom')\n"
        )
    if "start = None" in broken:
        collect.collect([bad], tmp_path, tmp_path)  # it imports: only the runtime finds out
    else:
        with pytest.raises(DeployError, match=expected.split(" at ")[0]):
            collect.collect([bad], tmp_path, tmp_path)  # the deploying side refuses it already
    function = legacy.function_of(
        {"name": "echo", "version": "2.0.0", "commands": ["echo"]}, {}, "x"
    )
    reply = await deploy(bus, legacy.bundle_of(bad, function))
    assert reply["success"] is False
    assert expected in reply["error"], reply["error"]
    assert await ask(chat, "!echo still") == "v1.0.0:still"
    assert runtime.registry.get("echo").version == "1.0.0"  # type: ignore[union-attr]
    assert len([m for m in sys.modules if m.startswith("_rosey_legacy_echo_")]) == 1


async def test_collect_bundles_every_plugin_of_a_folder(tmp_path: Path) -> None:
    shipped = collect.collect([PLUGINS], tmp_path, tmp_path, plugin_ranks={"delquote": 3})
    assert sorted(b.name for b in shipped) == ["fortune", "my-plugin", "quote-db", "simple-plugin"]
    quotes = next(b for b in shipped if b.name == "quote-db")
    function = quotes.function()  # a valid external manifest: plans, history and restarts use it
    assert function.external and function.commands["delquote"].rank == 3
    assert function.commands["quote"].usage.startswith("!quote [id|mine]")
    assert {"__init__.py", "plugin.py", legacy.MARKER} <= set(quotes.files)
    assert not [f for f in quotes.files if "__pycache__" in f]


async def test_standalone_plugin_process(
    serve: Serve, chat: Chat, database: DatabaseService, nats_url: str
) -> None:
    runtime, _ = await serve([], standalone=["fortune"])
    fortune = runtime.registry.get("fortune")
    assert fortune is not None and fortune.external  # routed here, served by the process
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(PLUGINS / "fortune" / "standalone.py"),
        env={"NATS_URL": nats_url, "PATH": "/usr/bin:/bin"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 20)
        assert line.decode().strip() == "Standalone plugin running...", line
        said = await ask(chat, "!fortune")
        assert said.startswith("🥠 ")
        assert await ask(chat, "!fortune favorite") == "🥠 Your favorite: " + said[2:]
    finally:
        process.terminate()
        await process.communicate()


async def test_plugin_problems_are_reported(
    serve: Serve, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plugins = tmp_path / "plugins"
    echo_plugin(plugins / "echo", "1.0.0")
    (plugins / "bad").mkdir()
    (plugins / "bad" / "__init__.py").write_text("PLUGIN_INFO = {'name': 'bad', 'commands': 'x'}\n")
    _, host = await serve(["bad", "echo"], folder=plugins)
    assert list(host.running) == ["echo"]  # one bad plugin does not keep the others down
    assert "PLUGIN_INFO commands: expected a list of command names" in caplog.text
    with pytest.raises(ConfigError, match="'nope': no plugin package"):
        await serve(["nope"], folder=plugins)
    with pytest.raises(ConfigError, match=r"plugins.ranks.echo: 7 is not a CyTube rank"):
        legacy.load(plugins / "echo", {"echo": 7})


# A plugin's command that clashes with a function's is an error everywhere (issue 15, item 6).

SAYS_ECHO = {
    "other": """\
    name: other
    version: "1.0.0"
    description: Says echo too.
    handler: other:f
    commands:
      echo: {}
    """
}
SAYS_ECHO_CODE = {"other.py": "def f(event, ctx):\n    return 'other'\n"}


async def test_a_plugin_clashing_with_a_function_fails_the_start(
    make_runtime: MakeRuntime, chat: Chat, tmp_path: Path
) -> None:
    plugins = tmp_path / "plugins"
    echo_plugin(plugins / "echo", "1.0.0")
    settings = PluginsSettings(enabled=["echo"], dir=plugins)
    runtime = await make_runtime(SAYS_ECHO, SAYS_ECHO_CODE, settings={"plugins": settings})
    host = LegacyPlugins(runtime)
    with pytest.raises(RegistryError) as info:
        await host.start()
    message = str(info.value)
    assert message.startswith("plugin 'echo' (") and "plugins/echo/__init__.py): " in message
    assert "command 'echo' is already a command of function 'other' (" in message
    assert message.endswith("manifests/other.yaml)")
    assert host.running == {}
    assert not [m for m in sys.modules if m.startswith("_rosey_legacy_echo_")]
    assert await ask(chat, "!echo hi") == "other"  # the function keeps its command
    assert not [p for _, p in chat.sent if p["message"].startswith("started")]  # start() never ran


async def test_a_plugin_clashing_with_another_plugin_fails_the_start(
    serve: Serve, tmp_path: Path
) -> None:
    plugins = tmp_path / "plugins"
    echo_plugin(plugins / "echo", "1.0.0")
    (plugins / "parrot").mkdir()
    (plugins / "parrot" / "__init__.py").write_text(
        "PLUGIN_INFO = {'name': 'parrot', 'commands': ['Echo']}\n"
        "def start(bus):\n    pass\n\ndef stop(state):\n    pass\n"
    )
    with pytest.raises(RegistryError) as info:
        await serve(["echo", "parrot"], folder=plugins)
    assert "plugin 'parrot' (" in str(info.value)
    assert "command 'echo' is already a command of plugin 'echo' (" in str(info.value)


async def test_a_plugin_deploy_clashing_with_a_function_names_both(
    make_runtime: MakeRuntime,
    bus: Bus,
    tmp_path: Path,
    deployer: Callable[[Runtime, LegacyPlugins | None], DeployService],
) -> None:
    runtime = await make_runtime(SAYS_ECHO, SAYS_ECHO_CODE)
    host = LegacyPlugins(runtime, PluginsSettings(dir=tmp_path / "none"))
    await host.start()
    await deployer(runtime, host).start()
    folder = echo_plugin(tmp_path / "plugins" / "echo", "1.0.0")
    [shipped] = collect.collect([folder], tmp_path / "none", tmp_path / "none")
    reply = await deploy(bus, shipped)
    assert reply["success"] is False
    assert reply["error"].startswith("echo: plugin 'echo' (")
    assert "command 'echo' is already a command of function 'other' (" in reply["error"]
    assert host.running == {} and runtime.registry.get("echo") is None
    assert not [m for m in sys.modules if m.startswith("_rosey_legacy_echo_")]


async def test_a_function_deploy_clashing_with_a_plugin_names_both(
    serve: Serve,
    bus: Bus,
    tmp_path: Path,
    deployer: Callable[[Runtime, LegacyPlugins | None], DeployService],
) -> None:
    plugins = tmp_path / "plugins"
    echo_plugin(plugins / "echo", "1.0.0")
    runtime, host = await serve(["echo"], folder=plugins)
    await deployer(runtime, host).start()
    mine = bundle.Bundle.create(
        "mine",
        "1.0.0",
        'name: mine\nversion: "1.0.0"\ndescription: m\nhandler: "mine:f"\ncommands:\n  echo: {}\n',
        {"mine.py": "def f(event, ctx):\n    return 'mine'\n"},
        "manifests/mine.yaml",
    )
    reply = await deploy(bus, mine)
    assert reply["success"] is False
    echo = runtime.registry.get("echo")
    assert echo is not None
    assert reply["error"] == (
        "mine: manifests/mine.yaml: commands.echo: 'echo' is already a command of 'echo' "
        f"({echo.source})"
    )
    assert "mine" not in runtime.registry


def test_a_deployed_plugins_tracebacks_show_the_authors_paths(tmp_path: Path) -> None:
    """As LegacyPlugins.swap loads a deployed bundle: plugins/<name>/<file>, not the bundle
    cache's path (issue 15, item 15)."""
    import importlib
    import traceback

    folder = echo_plugin(tmp_path / "plugins" / "echo", "1.0.0")
    (folder / "helper.py").write_text("def boom():\n    return 1 / 0\n")
    function = legacy.function_of({"name": "echo", "version": "1.0.0", "commands": []}, {}, "x")
    where = legacy.bundle_of(folder, function).materialize(tmp_path / "bundles")
    code = legacy.load(where, source="plugins/echo")
    helper = importlib.import_module(f"{code.prefix}.helper")
    with pytest.raises(ZeroDivisionError) as info:
        helper.boom()
    code.purge()
    shown = "".join(traceback.format_exception(info.value))
    assert 'File "plugins/echo/helper.py", line 2, in boom\n    return 1 / 0' in shown
    assert code.module.start.__code__.co_filename == "plugins/echo/__init__.py"
