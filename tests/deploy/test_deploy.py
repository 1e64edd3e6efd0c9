import asyncio
import json
import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from itertools import pairwise
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest

from runtime.config import manifest
from runtime.config.manifest import display_path
from runtime.config.settings import Settings
from runtime.core.bundle import Bundle
from runtime.core.runtime import Runtime
from runtime.deploy.service import DeployService
from runtime.deploy.versions import Versions
from runtime.wire.bus import Bus
from runtime.wire.signing import Signer
from tests.conftest import Chat, wait_for, write_project
from tests.echokit import echo_bundle, echo_code, echo_manifest

TOKEN = "s3cret"


Start = Callable[..., Awaitable[tuple[Runtime, DeployService]]]


@pytest.fixture
async def cluster(tmp_path: Path, nats_url: str, redis_url: str) -> AsyncIterator[Start]:
    """Factory: runtimes sharing one NATS and one Redis (under a prefix of this test's own)."""
    made: list[tuple[Runtime, DeployService, Versions]] = []
    prefix = f"test:{uuid.uuid4().hex}:"

    async def start(with_echo: bool = True) -> tuple[Runtime, DeployService]:
        manifests = {"echo": echo_manifest("1.0.0")} if with_echo else {}
        functions = {"echo.py": echo_code("1.0.0")} if with_echo else {}
        settings = write_project(tmp_path / f"runtime{len(made)}", manifests, functions)
        bus = await Bus.connect(nats_url)
        runtime = Runtime(settings, bus)
        versions = Versions.connect(redis_url, prefix=prefix)
        service = DeployService(runtime, bus, TOKEN, versions, ack_window=0.1)
        on_disk = manifest.load_dir(settings.manifests_dir)
        await runtime.start(service.choose(on_disk, *await service.deployed()))
        await service.start()
        made.append((runtime, service, versions))
        return runtime, service

    yield start
    for runtime, service, versions in made:
        await service.stop()
        if runtime.started_at:
            await runtime.stop()
        await runtime.bus.close()
        await versions.close()


async def deploy(bus: Bus, bundle: Bundle, token: str = TOKEN, **extra: Any) -> dict[str, Any]:
    request = {"token": token, "action": "deploy", "bundle": json.loads(bundle.to_json()), **extra}
    reply: dict[str, Any] = await bus.request("rosey.deploy", request, timeout=20)
    return reply


async def ask(chat: Chat, text: str) -> str:
    before = len(chat.sent)
    await chat.say(text)
    return (await chat.lines(before + 1))[-1]


async def test_deploy_new_function_then_invoke(cluster: Start, bus: Bus, chat: Chat) -> None:
    _, service = await cluster(with_echo=False)
    hello = Bundle.create(
        "hello",
        "1.0.0",
        dedent("""\
        name: hello
        version: "1.0.0"
        description: x
        handler: hello:hi
        commands:
          hi: {aliases: [hey]}
        """),
        {"hello.py": "async def hi(event, ctx):\n    return 'hi ' + event.user\n"},
    )
    reply = await deploy(bus, hello)
    assert reply["success"], reply
    report = reply["data"]["report"]
    assert (report["old_version"], report["new_version"], report["added"]) == (
        None,
        "1.0.0",
        ["hi"],
    )
    assert report["lost"] == 0
    assert await ask(chat, "!hey") == "hi alice"
    assert service.hashes["hello"] == hello.hash


async def test_unchanged_bundle_is_skipped(cluster: Start, bus: Bus) -> None:
    await cluster()
    first = await deploy(bus, echo_bundle("1.1.0"))
    again = await deploy(bus, echo_bundle("1.1.0"))
    assert first["data"]["status"] == "swapped"
    assert again["data"] == {"status": "unchanged", "name": "echo", "version": "1.1.0", "peers": []}


def answered_by(chat: Chat, version: str) -> bool:
    return any(p["message"].startswith(f"v{version}:") for _, p in chat.sent)


async def test_swap_under_load_loses_nothing(cluster: Start, bus: Bus, chat: Chat) -> None:
    runtime, _ = await cluster()
    deploys_done = asyncio.Event()
    sent = 0

    async def load() -> None:
        # Commands keep coming before, during and after the three swaps.
        nonlocal sent
        while not deploys_done.is_set() or sent < 300:
            await chat.say(f"!echo {sent}")
            sent += 1
            if sent % 10 == 0:
                await asyncio.sleep(0.005)  # pacing, so the sender does not starve the rest

    sender = asyncio.create_task(load())
    reports = []
    for old, new in pairwise(("1.0.0", "2.0.0", "3.0.0", "4.0.0")):
        await wait_for(partial(answered_by, chat, old))  # the version in service is under load
        reply = await deploy(bus, echo_bundle(new))
        assert reply["success"], reply
        reports.append(reply["data"]["report"])
    await wait_for(partial(answered_by, chat, "4.0.0"))
    deploys_done.set()
    await sender
    await chat.lines(sent, timeout=30)
    await chat.settle(runtime)
    messages = [p["message"] for _, p in chat.sent]
    assert all(":" in m for m in messages), [m for m in messages if ":" not in m]
    answered = Counter(m.split(":", 1)[1] for m in messages)
    assert answered == Counter(str(i) for i in range(sent))  # every command exactly once
    assert {m.split(":", 1)[0] for m in messages} >= {"v1.0.0", "v4.0.0"}
    assert all(r["lost"] == 0 for r in reports)
    assert runtime.registry.get("echo").version == "4.0.0"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("bundle", "expected"),
    [
        (
            echo_bundle("2.0.0", "def answer(event, ctx)\n    return 1\n"),
            "echo: cannot load echo: syntax error at functions/echo.py:1: expected ':'",
        ),
        (
            echo_bundle("2.0.0", "import no_such_module_here\n"),
            "ModuleNotFoundError at functions/echo.py:1",
        ),
        (
            echo_bundle("2.0.0", "raise RuntimeError('at import')\n"),
            "RuntimeError at functions/echo.py:1: at import",
        ),
        (
            echo_bundle("2.0.0", "def answer(event):\n    return 1\n"),
            "a handler must accept (event, ctx)",
        ),
        (
            echo_bundle("2.0.0", extra="timeout: never\n"),
            "timeout: 'never' is not of type 'number'",
        ),
        (
            echo_bundle("2.0.0", extra="examples:\n  - {input: '!echo x', expect: '^v9'}\n"),
            "examples[0] '!echo x': reply 'v2.0.0:x' does not match '^v9'",
        ),
        (
            echo_bundle(
                "2.0.0",
                "def answer(event, ctx):\n    raise ValueError('bad')\n",
                extra="examples:\n  - {input: '!echo x', expect: 'x'}\n",
            ),
            "examples[0] '!echo x': echo 2.0.0 failed: ValueError: bad",
        ),
    ],
)
async def test_broken_deploys_keep_the_old_version(
    cluster: Start, bus: Bus, chat: Chat, bundle: Bundle, expected: str
) -> None:
    runtime, _ = await cluster()
    reply = await deploy(bus, bundle)
    assert reply["success"] is False
    assert expected in reply["error"]
    assert await ask(chat, "!echo still") == "v1.0.0:still"
    assert runtime.registry.get("echo").version == "1.0.0"  # type: ignore[union-attr]
    assert len(runtime.invokers["echo"].bindings[0].bus.nc._subs) > 0
    assert not [
        m
        for m in __import__("sys").modules
        if m.startswith("_rosey_fn_echo_")
        and m
        not in {
            runtime.invokers["echo"].code.prefix,
            runtime.invokers["echo"].code.prefix + ".echo",
        }
    ]


async def test_unauthorised_deploy_refused(cluster: Start, bus: Bus, chat: Chat) -> None:
    await cluster()
    reply = await deploy(bus, echo_bundle("2.0.0"), token="guess")
    assert reply == {
        "success": False,
        "error": "deploy token rejected",
        "error_code": "PERMISSION_DENIED",
    }
    assert await ask(chat, "!echo x") == "v1.0.0:x"


async def test_malformed_deploy_request(cluster: Start, bus: Bus) -> None:
    await cluster()
    msg = await bus.nc.request(
        "rosey.deploy", b'{"token": "s3cret", "action": "deploy"}', timeout=5
    )
    reply = json.loads(msg.data)
    assert reply["error_code"] == "INVALID_INPUT"
    assert "bundle: required field is missing" in reply["error"]


async def test_rollback_and_history(cluster: Start, bus: Bus, chat: Chat) -> None:
    await cluster()
    for version in ("2.0.0", "3.0.0"):
        assert (await deploy(bus, echo_bundle(version)))["success"]
    back = await bus.request("rosey.deploy", {"token": TOKEN, "action": "rollback", "name": "echo"})
    assert back["data"]["report"]["new_version"] == "2.0.0"
    assert await ask(chat, "!echo a") == "v2.0.0:a"
    to = await bus.request(
        "rosey.deploy", {"token": TOKEN, "action": "rollback", "name": "echo", "version": "3.0.0"}
    )
    assert to["success"], to
    assert await ask(chat, "!echo b") == "v3.0.0:b"
    missing = await bus.request(
        "rosey.deploy", {"token": TOKEN, "action": "rollback", "name": "echo", "version": "9.9.9"}
    )
    assert missing["success"] is False
    assert "no version 9.9.9 in the history (kept: 3.0.0, 2.0.0)" in missing["error"]


async def test_every_runtime_converges(cluster: Start, bus: Bus) -> None:
    first, _ = await cluster()
    second, _ = await cluster()
    reply = await deploy(bus, echo_bundle("2.0.0"))
    assert reply["success"], reply
    assert [p["ok"] for p in reply["data"]["peers"]] == [True]
    assert first.registry.get("echo").version == "2.0.0"  # type: ignore[union-attr]
    assert second.registry.get("echo").version == "2.0.0"  # type: ignore[union-attr]
    late, _ = await cluster()
    assert late.registry.get("echo").version == "2.0.0"  # type: ignore[union-attr]
    command = {"command": "echo", "args": ["z"], "user": "u", "rank": 0}
    answer = await bus.request("plugin.echo.command", command)
    assert answer["data"]["replies"] == ["v2.0.0:z"]


async def test_remove(cluster: Start, bus: Bus, chat: Chat) -> None:
    runtime, _ = await cluster()
    reply = await bus.request("rosey.deploy", {"token": TOKEN, "action": "remove", "name": "echo"})
    assert reply["data"]["report"]["removed"] == ["echo"]
    assert "echo" not in runtime.registry
    await chat.say("!echo gone")
    assert await chat.settle(runtime) == []
    late, _ = await cluster()
    assert "echo" not in late.registry  # removal outlives restarts


async def test_status(cluster: Start, bus: Bus) -> None:
    _, service = await cluster()
    status = (await bus.request("rosey.status", {}))["data"]
    assert status["runtime"] == service.id
    [echo] = status["functions"]
    assert (echo["name"], echo["version"], echo["commands"]) == ("echo", "1.0.0", {"echo": 0})


async def test_unsigned_announcements_are_refused(cluster: Start, bus: Bus) -> None:
    runtime, _ = await cluster()
    forged = Signer("not-the-token").sign(
        {"action": "remove", "name": "echo", "origin": "intruder", "generation": 10**9}
    )
    [ack] = await _gather(bus, forged)
    assert ack["ok"] is False
    assert ack["error"] == "refused: not signed with this runtime's deploy token"
    assert "echo" in runtime.registry


class Recorder:
    """Captures the raw bytes of every deploy announcement, as an intruder on `>` would."""

    def __init__(self) -> None:
        self.captured: list[bytes] = []

    async def start(self, bus: Bus) -> None:
        async def keep(msg: Any) -> None:
            self.captured.append(msg.data)

        await bus.nc.subscribe("rosey.deploy.apply", cb=keep)
        await bus.flush()

    def last(self, action: str) -> bytes:
        return next(b for b in reversed(self.captured) if json.loads(b)["action"] == action)


async def _replay(bus: Bus, data: bytes) -> list[dict[str, Any]]:
    """Republish captured bytes, exactly as captured, and collect the acknowledgements."""
    inbox = bus.nc.new_inbox()
    got: list[dict[str, Any]] = []
    arrived = asyncio.Event()

    async def collect(msg: Any) -> None:
        got.append(json.loads(msg.data))
        arrived.set()

    sub = await bus.nc.subscribe(inbox, cb=collect)
    await bus.nc.publish("rosey.deploy.apply", data, reply=inbox)
    async with asyncio.timeout(5):
        await arrived.wait()
    await sub.unsubscribe()
    return got


async def test_a_replayed_announcement_does_not_bring_back_an_old_version(
    cluster: Start, bus: Bus, chat: Chat
) -> None:
    first, _ = await cluster()
    second, _ = await cluster()
    recorder = Recorder()
    await recorder.start(bus)
    assert (await deploy(bus, echo_bundle("2.0.0")))["success"]
    old = recorder.last("apply")
    assert json.loads(old)["hash"] == echo_bundle("2.0.0").hash
    assert (await deploy(bus, echo_bundle("3.0.0")))["success"]
    [ack] = await _replay(bus, old)  # the origin ignores its own; the peer answers
    assert ack["ok"] is False
    assert "replay" in ack["error"]
    for runtime in (first, second):
        assert runtime.registry.get("echo").version == "3.0.0"  # type: ignore[union-attr]
    assert {await ask(chat, "!echo x") for _ in range(6)} == {"v3.0.0:x"}
    # A runtime started after the deploys has no memory of nonces: the generation refuses it.
    third, _ = await cluster()
    assert third.registry.get("echo").version == "3.0.0"  # type: ignore[union-attr]
    acks = await _replay(bus, old)
    assert acks and all(not a["ok"] and "replay" in a["error"] for a in acks)
    assert third.registry.get("echo").version == "3.0.0"  # type: ignore[union-attr]


async def test_a_replayed_removal_does_not_drop_the_function_again(
    cluster: Start, bus: Bus
) -> None:
    _, _ = await cluster()
    second, _ = await cluster()
    recorder = Recorder()
    await recorder.start(bus)
    removal = await bus.request(
        "rosey.deploy", {"token": TOKEN, "action": "remove", "name": "echo"}, 20
    )
    assert removal["success"], removal
    captured = recorder.last("remove")
    assert "echo" not in second.registry
    assert (await deploy(bus, echo_bundle("2.0.0")))["success"]
    assert "echo" in second.registry
    [ack] = await _replay(bus, captured)
    assert ack["ok"] is False
    assert "replay" in ack["error"]
    assert "echo" in second.registry


def test_signed_messages_expire_and_are_used_once() -> None:
    now = [1000.0]
    signer = Signer(TOKEN, window=30, clock=lambda: now[0])
    message = signer.sign({"name": "echo"})
    assert signer.problem(message) is None
    assert signer.problem(message) == "already used (a replay)"
    stale = signer.sign({"name": "echo"})
    now[0] += 31
    assert signer.problem(stale) is not None
    assert "outside the 30s window" in str(signer.problem(stale))
    ahead = Signer(TOKEN, clock=lambda: now[0] + 60).sign({"name": "echo"})
    assert "outside" in str(signer.problem(ahead))
    tampered = {**signer.sign({"name": "echo"}), "name": "other"}
    assert signer.problem(tampered) == "not signed with this runtime's deploy token"


async def test_runtimes_with_another_token_do_not_follow(
    cluster: Start, bus: Bus, tmp_path: Path, nats_url: str, redis_url: str
) -> None:
    first, _ = await cluster()
    other_bus = await Bus.connect(nats_url)
    other = Runtime(
        write_project(
            tmp_path / "other", {"echo": echo_manifest("1.0.0")}, {"echo.py": echo_code("1.0.0")}
        ),
        other_bus,
    )
    await other.start()
    service = DeployService(other, other_bus, "another-token", None, ack_window=0.1)
    await service.start()
    await service.bindings[0].stop()  # so the deploy itself goes to the first runtime
    try:
        reply = await deploy(bus, echo_bundle("2.0.0"))
        assert reply["success"], reply
        assert [p["ok"] for p in reply["data"]["peers"]] == [False]
        assert first.registry.get("echo").version == "2.0.0"  # type: ignore[union-attr]
        assert other.registry.get("echo").version == "1.0.0"  # type: ignore[union-attr]
    finally:
        await service.stop()
        await other.stop()
        await other_bus.close()


async def _gather(bus: Bus, payload: dict[str, Any]) -> list[dict[str, Any]]:
    inbox = bus.nc.new_inbox()
    got: list[dict[str, Any]] = []

    async def collect(msg: Any) -> None:
        got.append(json.loads(msg.data))

    await bus.nc.subscribe(inbox, cb=collect)
    await bus.nc.publish("rosey.deploy.apply", json.dumps(payload).encode(), reply=inbox)
    await bus.flush()
    async with asyncio.timeout(5):
        while not got:
            await asyncio.sleep(0.01)
    return got


async def test_removing_twice_says_it_was_removed_already(cluster: Start, bus: Bus) -> None:
    await cluster()
    remove = {"token": TOKEN, "action": "remove", "name": "echo"}
    assert (await bus.request("rosey.deploy", remove))["success"]
    again = await bus.request("rosey.deploy", remove)
    unknown = await bus.request("rosey.deploy", {**remove, "name": "nothing"})
    assert (again["success"], again["error_code"]) == (False, "RECORD_NOT_FOUND")
    assert again["error"].startswith("echo is not served (it was removed already); nothing changed")
    assert unknown["error"].startswith("nothing is not served (no function has that name)")


async def test_rollback_after_remove_brings_back_the_removed_version(
    cluster: Start, bus: Bus, chat: Chat
) -> None:
    await cluster()
    for version in ("2.0.0", "3.0.0"):
        assert (await deploy(bus, echo_bundle(version)))["success"]
    remove = {"token": TOKEN, "action": "remove", "name": "echo"}
    assert (await bus.request("rosey.deploy", remove))["success"]
    back = await bus.request("rosey.deploy", {"token": TOKEN, "action": "rollback", "name": "echo"})
    assert back["success"], back
    assert (back["data"]["report"]["old_version"], back["data"]["report"]["new_version"]) == (
        None,
        "3.0.0",
    )
    assert await ask(chat, "!echo a") == "v3.0.0:a"
    before = await bus.request(
        "rosey.deploy", {"token": TOKEN, "action": "rollback", "name": "echo"}
    )
    assert before["data"]["report"]["new_version"] == "2.0.0"  # then the one before, as usual


async def test_start_up_says_when_redis_wins_over_disk(
    cluster: Start, bus: Bus, caplog: pytest.LogCaptureFixture
) -> None:
    await cluster()
    assert (await deploy(bus, echo_bundle("2.0.0")))["success"]
    caplog.set_level(logging.WARNING, "rosey.deploy")
    late, _ = await cluster()  # its disk holds echo 1.0.0
    assert late.registry.get("echo").version == "2.0.0"  # type: ignore[union-attr]
    assert (
        "echo: serving the deployed 2.0.0 (from Redis), not the different 1.0.0 on disk"
        in caplog.text
    )
    caplog.clear()
    remove = {"token": TOKEN, "action": "remove", "name": "echo"}
    assert (await bus.request("rosey.deploy", remove))["success"]
    later, _ = await cluster()
    assert "echo" not in later.registry
    assert "echo is on disk but was removed with `rosey remove`: not served" in caplog.text


async def test_start_up_warns_without_functions_on_disk(
    tmp_path: Path, bus: Bus, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(functions_dir=tmp_path / "functions", manifests_dir=tmp_path / "manifests")
    service = DeployService(Runtime(settings, bus), bus, TOKEN)
    caplog.set_level(logging.WARNING, "rosey.deploy")
    assert service.choose([]) == []
    assert (
        f"no functions folder {display_path(tmp_path / 'functions')} (functions_dir): "
        "no function on disk is served"
    ) in caplog.text
    caplog.clear()
    (tmp_path / "functions").mkdir()
    (tmp_path / "manifests").mkdir()
    assert service.choose([]) == []
    assert f"{display_path(tmp_path / 'manifests')} holds no manifests" in caplog.text
