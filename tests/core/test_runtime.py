import asyncio
import json
from pathlib import Path

import pytest

from runtime.config.settings import Settings
from runtime.core.runtime import Runtime
from runtime.errors import LoadError, RegistryError
from runtime.wire.bus import Bus
from tests.clitools import ROOT
from tests.conftest import Chat, MakeRuntime, wait_for, write_project

ONE = {
    "one": """\
    name: one
    version: "0.1.0"
    description: x
    handler: one:f
    commands:
      one: {}
    """
}
CODE = {"one.py": "def f(event, ctx):\n    return 'one'\n"}


async def collect(bus: Bus, subject: str) -> list[dict[str, object]]:
    got: list[dict[str, object]] = []

    async def cb(msg: object) -> None:
        got.append(json.loads(msg.data))  # type: ignore[attr-defined]

    await bus.nc.subscribe(subject, cb=cb)
    await bus.flush()
    return got


async def test_startup_and_shutdown_announced(make_runtime: MakeRuntime, bus: Bus) -> None:
    started = await collect(bus, "platform.startup")
    stopped = await collect(bus, "platform.shutdown")
    runtime = await make_runtime(ONE, CODE)
    await runtime.stop("test")
    await wait_for(lambda: bool(started and stopped))
    assert started[0]["plugins"] == [{"name": "one", "version": "0.1.0"}]
    assert stopped[0]["reason"] == "test"


async def test_heartbeat(make_runtime: MakeRuntime, bus: Bus) -> None:
    beats = await collect(bus, "platform.heartbeat")
    await make_runtime(ONE, CODE, settings={"heartbeat_interval": 0.05})
    async with asyncio.timeout(5):
        while not beats:
            await asyncio.sleep(0.02)
    assert beats[0]["plugins_active"] == 1
    assert beats[0]["nats_connected"] is True


async def test_broken_code_binds_nothing(
    tmp_path: Path, nats_url: str, bus: Bus, chat: Chat
) -> None:
    settings = write_project(
        tmp_path,
        {**ONE, "two": ONE["one"].replace("one", "two")},
        {**CODE, "two.py": "def f(event):\n    return 'x'\n"},
    )
    runtime_bus = await Bus.connect(nats_url)
    runtime = Runtime(settings, runtime_bus)
    with pytest.raises(LoadError) as info:
        await runtime.start()
    await runtime_bus.close()
    assert (
        str(info.value) == "function 'two': cannot load two:f: a handler must accept (event, ctx)"
    )
    await chat.say("!one")
    assert await chat.settle() == []


async def test_command_clash_between_manifests(tmp_path: Path, nats_url: str) -> None:
    clash = ONE["one"].replace("name: one", "name: other")
    settings = write_project(tmp_path, {**ONE, "other": clash}, CODE)
    bus = await Bus.connect(nats_url)
    with pytest.raises(RegistryError) as info:
        await Runtime(settings, bus).start()
    await bus.close()
    assert "commands.one: 'one' is already a command of 'one'" in str(info.value)


async def test_end_to_end_dice_from_the_repository(nats_url: str, chat: Chat) -> None:
    root = ROOT
    settings = Settings(
        manifests_dir=root / "manifests", functions_dir=root / "functions", heartbeat_interval=0
    )
    bus = await Bus.connect(nats_url)
    runtime = Runtime(settings, bus)
    await runtime.start()
    try:
        await chat.say("!roll 2d6")
        [line] = await chat.lines(1)
        assert line.startswith("alice rolled 2d6: [")
        await chat.say("!help")
        assert (await chat.lines(2))[1].startswith("Commands: ")
    finally:
        await runtime.stop()
        await bus.close()


async def test_quiesce_waits_for_answers(make_runtime: MakeRuntime, chat: Chat) -> None:
    runtime = await make_runtime(
        ONE,
        {
            "one.py": """\
        import asyncio
        async def f(event, ctx):
            await asyncio.sleep(0.2)  # the answer is still in flight when quiesce() is called
            return 'late one'
        """
        },
    )
    await chat.say("!one")
    assert await runtime.quiesce(extra=lambda: 0)
    # No runtime given to settle(): only the round trip that brings what quiesce() saw published.
    assert [p["message"] for _, p in await chat.settle()] == ["late one"]
