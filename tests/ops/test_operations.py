"""Operations on a real runtime: health, readiness and metrics over HTTP, end to end."""

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from prometheus_client.parser import text_string_to_metric_families

from runtime.config.settings import CytubeSettings
from runtime.host.servers import free_port
from runtime.wire.bus import Bus
from tests.clitools import ROSEY, clean_env
from tests.conftest import Chat, MakeRuntime, write_project
from tests.opskit import (
    CALC,
    CALC_CODE,
    WHY,
    WHY_CODE,
    Operate,
    fetch,
    fetch_json,
    operations,
    until,
)


@pytest.fixture
async def operate(make_runtime: MakeRuntime, redis_url: str) -> AsyncIterator[Operate]:
    async with operations(make_runtime, redis_url) as start:
        yield start


def metric(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    raise AssertionError(f"no {name} {labels} in /metrics")


async def test_ready_with_nats_redis_and_console_chat(operate: Operate) -> None:
    _, ops = await operate()
    status, body = await fetch_json(ops.http.url + "/readyz")
    assert status == 200, body
    checks = body["checks"]
    assert checks["nats"]["ok"] and checks["nats"]["detail"].startswith("connected to 127.0.0.1:")
    assert checks["redis"] == {"ok": True, "detail": "answers PING"}
    assert checks["cytube"] == {"ok": True, "detail": "not configured (console chat)"}
    assert checks["functions"] == {"ok": True, "detail": "2 function(s) loaded"}
    status, body = await fetch_json(ops.http.url + "/healthz")
    assert (status, body["status"]) == (200, "ok")


async def test_unreachable_redis_is_not_ready(operate: Operate) -> None:
    _, ops = await operate(redis=f"redis://127.0.0.1:{free_port()}/0")
    status, body = await fetch_json(ops.http.url + "/readyz")
    assert status == 503
    assert body["checks"]["redis"]["ok"] is False
    assert "127.0.0.1" in body["checks"]["redis"]["detail"]
    assert body["checks"]["nats"]["ok"] is True
    status, _ = await fetch_json(ops.http.url + "/healthz")
    assert status == 200  # alive all the same: a restart would not bring Redis back


async def test_connector_state_from_nats(operate: Operate, bus: Bus) -> None:
    cytube = CytubeSettings(url="https://cytube.test", channel="lobby", username="rosey")
    _, ops = await operate(cytube=cytube)

    async def ready() -> tuple[int, dict[str, object]]:
        status, body = await fetch_json(ops.http.url + "/readyz")
        return status, body["checks"]["cytube"]

    assert await ready() == (503, {"ok": False, "detail": "no state announced yet"})

    async def announce(state: str, channel: str = "lobby", **extra: object) -> None:
        await bus.publish(
            "cytube.connection", {"state": state, "channel": channel, "time": 1, **extra}
        )
        await bus.flush()

    async def reaches(expected: tuple[int, dict[str, object]]) -> None:
        async def check() -> bool:
            return await ready() == expected

        await until(check)

    await announce("connected")
    await reaches((200, {"ok": True, "detail": "connected"}))
    await announce("disconnected", reason="kicked", retry_in=1)
    await reaches((503, {"ok": False, "detail": "disconnected (kicked)"}))
    await announce("connected", channel="elsewhere")  # another channel's connector
    await announce("standby", reason="held by host-2")
    await reaches((200, {"ok": True, "detail": "standby (held by host-2)"}))
    await announce("connected")
    await reaches((200, {"ok": True, "detail": "connected"}))
    _, _, text = await fetch(ops.http.url + "/metrics")
    assert metric(text, "rosey_cytube_reconnects_total") == 1


async def test_connector_probes_take_precedence(operate: Operate) -> None:
    cytube = CytubeSettings(url="https://cytube.test", channel="lobby", username="rosey")
    _, ops = await operate(cytube=cytube)
    state = {"now": "connecting"}
    ops.probes.cytube_state = lambda: state["now"]
    ops.probes.send_queue_depth = lambda: 7
    ops.probes.cytube_reconnects = lambda: 2
    ops.probes.database_operations = lambda: {"get": 5, "set": 1}
    status, body = await fetch_json(ops.http.url + "/readyz")
    assert (status, body["checks"]["cytube"]["detail"]) == (503, "connecting")
    state["now"] = "connected"
    status, _ = await fetch_json(ops.http.url + "/readyz")
    assert status == 200
    _, _, text = await fetch(ops.http.url + "/metrics")
    assert metric(text, "rosey_send_queue_depth") == 7
    assert metric(text, "rosey_cytube_reconnects_total") == 2
    assert metric(text, "rosey_database_operations_total", operation="get") == 5


async def test_metrics_per_function_version_and_outcome(operate: Operate, chat: Chat) -> None:
    _, ops = await operate()
    for line in ("!ok", "!ok", "!boom", "!slow", "!secret"):
        await chat.say(line)
    replies = await chat.lines(5)
    assert "Sorry, slow took too long." in replies
    _, content_type, text = await fetch(ops.http.url + "/metrics")
    assert content_type.startswith("text/plain; version=0.0.4")

    def invocations(outcome: str) -> float:
        return metric(
            text, "rosey_invocations_total", function="calc", version="1.0.0", outcome=outcome
        )

    assert [invocations(o) for o in ("ok", "error", "timeout", "denied")] == [2, 1, 1, 1]
    latency = metric(
        text, "rosey_invocation_duration_seconds_count", function="calc", version="1.0.0"
    )
    assert latency == 4
    assert metric(text, "rosey_functions") == 2
    assert metric(text, "rosey_in_flight", function="calc") == 0
    assert metric(text, "rosey_nats_connected") == 1
    assert metric(text, "rosey_nats_reconnects_total") == 0
    assert metric(text, "rosey_build_info", version="0.1.0") == 1


async def test_a_taken_port_leaves_the_runtime_serving(
    operate: Operate, chat: Chat, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        caplog.set_level(logging.ERROR, "rosey.operations")
        _, ops = await operate(listen=f"127.0.0.1:{port}")
        assert ops.http.port == 0
        assert f"http.listen '127.0.0.1:{port}'" in caplog.text
        assert "health, readiness and metrics are off" in caplog.text
        await chat.say("!ok")
        assert await chat.lines(1) == ["ok alice"]


async def test_rosey_run_serves_operations(tmp_path: Path) -> None:
    """`rosey run` starts all of it: HTTP, discovery, activation records, and `!why` works."""
    write_project(tmp_path, {**CALC, **WHY}, {**CALC_CODE, **WHY_CODE})
    port = free_port()
    (tmp_path / "rosey.yaml").write_text(
        f"log_level: WARNING\nhttp: {{listen: '127.0.0.1:{port}'}}\n"
    )
    process = await asyncio.create_subprocess_exec(
        ROSEY,
        "run",
        cwd=tmp_path,
        # clean_env() turns the endpoint off (ROSEY_HTTP_LISTEN beats rosey.yaml); this test wants it.
        env={**clean_env(), "ROSEY_HTTP_LISTEN": f"127.0.0.1:{port}"},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        async with asyncio.timeout(30):
            process.stdin.write(b"!ok\n")
            assert await process.stdout.readline() == b"rosey: ok console\n"
            process.stdin.write(b"!why\n")
            said = (await process.stdout.readline()).decode()
            assert said.startswith("rosey: console: Your last command, !ok (calc 1.0.0, just now)")
            status, body = await fetch_json(f"http://127.0.0.1:{port}/readyz")
            assert status == 200, body
            _, _, text = await fetch(f"http://127.0.0.1:{port}/metrics")
            assert (
                metric(
                    text, "rosey_invocations_total", function="why", version="1.0.0", outcome="ok"
                )
                == 1
            )
            assert metric(text, "rosey_database_operations_total", operation="get") == 0
            state = json.loads((tmp_path / ".rosey" / "runtime.json").read_text())
            client = await nats.connect(state["nats_url"])
            try:
                info = json.loads((await client.request("$SRV.INFO.calc", b"", timeout=5)).data)
            finally:
                await client.close()
            assert info["version"] == "1.0.0"
            process.stdin.close()
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
