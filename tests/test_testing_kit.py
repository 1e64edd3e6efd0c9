"""rosey.testing, the pytest plugin for authors: mock_event_bus, bot, and guide tests as written."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rosey.bot import Bot
from rosey.mockbus import MockEventBus
from runtime.config.settings import PluginsSettings, Settings
from runtime.errors import ContractError
from runtime.legacy.event_bus import Event
from tests.clitools import ROOT
from tests.conftest import write_project

PLUGINS = Path(__file__).parent / "legacy_plugins"


async def test_mock_bus_delivers_records_and_settles(mock_event_bus: MockEventBus) -> None:
    bus = mock_event_bus
    seen: list[str] = []

    async def relay(event: object) -> None:
        await asyncio.sleep(0.01)  # publish returns only after slow handlers too
        await bus.publish("cytube.send.chat", {"message": "relayed"})
        await bus.publish("plugin.x.event.relayed", {"n": 1})  # taken by `watch`, still listed

    await bus.subscribe("plugin.x.command", relay)
    await bus.subscribe("plugin.x.event.*", lambda e: seen.append(e.subject))
    await bus.publish("plugin.x.command", {"command": "x", "args": [], "user": "u", "rank": 0})
    assert bus.published_events == [
        {"subject": "cytube.send.chat", "data": {"message": "relayed"}},
        {"subject": "plugin.x.event.relayed", "data": {"n": 1}},
    ]
    assert bus.all_events[0]["subject"] == "plugin.x.command"
    assert seen == ["plugin.x.event.relayed"]
    with pytest.raises(ContractError):
        await bus.publish("cytube.send.pm", {"message": "no recipient"})
    with pytest.raises(asyncio.TimeoutError):
        await bus.request("plugin.nobody.request", {"action": "x"}, timeout=0.1)


ASKING_PLUGIN = """\
class AskingPlugin:
    def __init__(self, event_bus):
        self.event_bus = event_bus
        self.heard = []

    async def register(self):
        await self.event_bus.subscribe("plugin.x.event.*", self.on_event)

    async def on_event(self, event):
        self.heard.append(event.subject)

    async def handle_command(self, event):
        await self.event_bus.publish("plugin.x.event.asked", {"user": event.data["user"]})
        await self.event_bus.publish("cytube.send.chat", {"message": "asked"})
"""


async def test_mock_bus_lists_what_a_plugin_publishes_to_its_own_subscription(
    mock_event_bus: MockEventBus, tmp_path: Path
) -> None:
    """The guide's unit-test style: handle_command called directly, not through a publish."""
    (tmp_path / "asking.py").write_text(ASKING_PLUGIN)
    spec = importlib.util.spec_from_file_location(
        "asking_plugin_under_test", tmp_path / "asking.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    plugin = module.AskingPlugin(mock_event_bus)
    await plugin.register()
    event = Event("plugin.x.command", {"command": "ask", "args": [], "user": "alice"})
    await plugin.handle_command(event)
    assert mock_event_bus.published_events == [
        {"subject": "plugin.x.event.asked", "data": {"user": "alice"}},
        {"subject": "cytube.send.chat", "data": {"message": "asked"}},
    ]
    assert plugin.heard == ["plugin.x.event.asked"]
    # What the test itself feeds a subscriber is still not something the plugin said.
    mock_event_bus.published_events.clear()
    await mock_event_bus.publish("plugin.x.event.fed", {"n": 1})
    assert mock_event_bus.published_events == []
    assert plugin.heard == ["plugin.x.event.asked", "plugin.x.event.fed"]


async def test_mock_bus_answers_database_like_the_service(mock_event_bus: MockEventBus) -> None:
    bus = mock_event_bus
    assert await bus.request("database.set", {"collection": "q", "id": None, "data": {"n": 2}}) == {
        "success": True,
        "id": 1,
    }
    await bus.request("database.set", {"collection": "q", "id": "x", "data": {"n": 5}})
    page = await bus.request(
        "database.query", {"collection": "q", "order_by": "n DESC", "limit": 1}
    )
    assert page == {"success": True, "data": [{"id": "x", "n": 5}], "count": 2}
    missing = await bus.request("database.get", {"collection": "q", "id": 9})
    assert (missing["success"], missing["error_code"]) == (False, "RECORD_NOT_FOUND")
    with pytest.raises(ContractError, match="limit: 5000 is greater than the maximum"):
        await bus.request("database.query", {"collection": "q", "limit": 5000})
    assert (await bus.db.get("q", 1)) == {"id": 1, "n": 2}


@pytest.fixture
def rosey_settings(tmp_path: Path) -> Settings:
    """A project of this test's own: one function using ctx.db, and a guide plugin."""
    settings = write_project(
        tmp_path,
        {
            "counter": """\
                name: counter
                version: "1.0.0"
                description: Counts.
                handler: counter:count
                collections: [counts]
                commands:
                  count: {rank: 1}
            """
        },
        {
            "counter.py": """\
                async def count(event, ctx):
                    record = await ctx.db.update("counts", event.user, inc={"n": 1})
                    if record is None:
                        await ctx.db.set("counts", event.user, {"n": 1})
                        record = {"n": 1}
                    return f"{event.user}: {record['n']}"
            """
        },
    )
    settings.plugins = PluginsSettings(enabled=["my-plugin", "fortune"], dir=PLUGINS)
    return settings


async def test_bot_runs_functions_and_plugins(bot: Bot) -> None:
    assert await bot.say("!count") == [
        "alice: !count needs registered rank or higher (you are guest)."
    ]
    assert await bot.say("!count", rank=1) == ["alice: 1"]
    assert await bot.say("!count", user="bob", rank=1) == ["bob: 1"]
    assert await bot.say("!count", rank=1) == ["alice: 2"]
    assert await bot.db.get("counts", "alice") == {"id": "alice", "n": 2}
    assert await bot.say("!mycommand") == ["Hello, alice!"]
    [fortune] = await bot.say("!fortune", user="carol")
    assert (await bot.db.get("fortune_favorites", "carol"))["fortune"] == fortune[2:]
    assert await bot.say("not a command") == []


async def test_bot_on_the_repositorys_own_project(tmp_path: Path, rosey_redis: object) -> None:
    from runtime.config.settings import load

    settings = load(ROOT / "rosey.yaml")
    settings.data_dir = tmp_path
    made = Bot(settings, rosey_redis)  # type: ignore[arg-type]
    await made.start()
    try:
        [line] = await made.say("!roll 2d6")
        assert "2d6" in line and line.startswith("alice")
    finally:
        await made.stop()


def run_pytest(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_guide_tests_run_as_written_with_pytest_plugins_name() -> None:
    done = run_pytest(
        ROOT, "tests/legacy_plugins/my-plugin", "tests/legacy_plugins/fortune", "-m", "plugin"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "6 passed" in done.stdout


def test_guide_tests_in_an_authors_own_project(tmp_path: Path) -> None:
    """No rosey.yaml, no conftest, no asyncio settings: only the installed kit."""
    for name in ("fortune", "simple-plugin"):
        shutil.copytree(PLUGINS / name, tmp_path / "plugins" / name)
    failing = tmp_path / "plugins" / "simple-plugin" / "test_fails.py"
    failing.write_text(
        textwrap.dedent("""\
        def test_rewritten_asserts():
            answer = {"message": "Simple response!"}
            assert answer["message"] == "something else"
        """)
    )
    done = run_pytest(tmp_path, "plugins")
    assert "1 failed, 4 passed" in done.stdout, done.stdout + done.stderr
    # pytest's assertion rewriting works in a folder whose name is no identifier.
    assert "AssertionError: assert 'Simple response!' == 'something else'" in done.stdout
