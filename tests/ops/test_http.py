"""The HTTP endpoint and the metrics registry on their own, with real HTTP requests."""

import asyncio
import socket

import pytest
from prometheus_client.parser import text_string_to_metric_families

from runtime.core.activation import Activation
from runtime.errors import HttpError
from runtime.ops.http import HttpServer, parse_listen
from runtime.ops.metrics import Metrics
from tests.opskit import fetch, fetch_json


def activation(outcome: str = "ok", version: str = "1.0.0", duration: float = 0.01) -> Activation:
    return Activation(
        id="c0ffee",
        function="calc",
        version=version,
        kind="command",
        command="ok",
        user="alice",
        channel="test",
        outcome=outcome,  # type: ignore[arg-type]
        duration=duration,
    )


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.mark.parametrize(
    ("listen", "address"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("0.0.0.0:9100", ("0.0.0.0", 9100)),
        ("[::1]:0", ("::1", 0)),
        ("off", None),
        ("", None),
    ],
)
def test_parse_listen(listen: str, address: tuple[str, int] | None) -> None:
    assert parse_listen(listen) == address


@pytest.mark.parametrize("listen", ["8080", ":8080", "localhost:http", "127.0.0.1:70000"])
def test_parse_listen_refuses_nonsense(listen: str) -> None:
    with pytest.raises(HttpError, match="expected host:port"):
        parse_listen(listen)


async def test_health_readiness_and_metrics() -> None:
    state = {"nats": True}

    async def nats() -> tuple[bool, str]:
        return state["nats"], "connected" if state["nats"] else "not connected"

    async def broken() -> tuple[bool, str]:
        raise ConnectionRefusedError("refused")

    metrics = Metrics()
    metrics(activation())
    server = HttpServer("127.0.0.1:0", metrics, {"nats": nats})
    await server.start()
    try:
        assert server.port != 0
        status, body = await fetch_json(server.url + "/healthz")
        assert (status, body["status"]) == (200, "ok")

        status, body = await fetch_json(server.url + "/readyz")
        assert status == 200
        assert body == {"ready": True, "checks": {"nats": {"ok": True, "detail": "connected"}}}
        state["nats"] = False
        server.checks["other"] = broken
        status, body = await fetch_json(server.url + "/readyz")
        assert status == 503
        assert body["checks"]["nats"] == {"ok": False, "detail": "not connected"}
        assert body["checks"]["other"] == {
            "ok": False,
            "detail": "ConnectionRefusedError: refused",
        }

        status, content_type, text = await fetch(server.url + "/metrics")
        assert status == 200
        assert content_type.startswith("text/plain")
        found = samples(text)
        key = (("function", "calc"), ("outcome", "ok"), ("version", "1.0.0"))
        assert found[("rosey_invocations_total", key)] == 1.0

        status, content_type, text = await fetch(
            server.url + "/metrics", accept="application/openmetrics-text; version=1.0.0"
        )
        assert content_type.startswith("application/openmetrics-text")
        assert text.rstrip().endswith("# EOF")
    finally:
        await server.stop()


async def test_a_hanging_check_is_not_ready() -> None:
    async def hangs() -> tuple[bool, str]:
        await asyncio.Event().wait()
        return True, ""

    server = HttpServer("127.0.0.1:0", None, {"redis": hangs}, check_timeout=0.05)
    await server.start()
    try:
        status, body = await fetch_json(server.url + "/readyz")
        assert status == 503
        assert body["checks"]["redis"] == {"ok": False, "detail": "no answer within 0.05s"}
        status, _, _ = await fetch(server.url + "/metrics")
        assert status == 404
    finally:
        await server.stop()


async def test_a_taken_port_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = HttpServer(f"127.0.0.1:{port}")
        with pytest.raises(HttpError, match=f"http.listen '127.0.0.1:{port}': .*in use"):
            await server.start()


async def test_off_listens_nowhere() -> None:
    server = HttpServer("off")
    await server.start()
    assert server.port == 0
    await server.stop()


def test_metrics_per_function_version_and_outcome() -> None:
    metrics = Metrics()
    for outcome in ("ok", "ok", "error", "timeout", "denied", "busy"):
        metrics(activation(outcome))
    metrics(activation("ok", version="2.0.0", duration=0.5))
    depth = {"value": 3}
    metrics.gauge("rosey_send_queue_depth", "Lines waiting.", lambda: depth["value"])
    metrics.counters("rosey_database_operations", "Ops.", "operation", lambda: {"get": 4})
    metrics.counter("rosey_broken", "Raises.", lambda: 1 / 0)
    metrics.gauge("rosey_unknown", "Not known.", lambda: None)
    found = samples(metrics.render()[0].decode())

    def count(outcome: str, version: str = "1.0.0") -> float:
        labels = (("function", "calc"), ("outcome", outcome), ("version", version))
        return found.get(("rosey_invocations_total", labels), 0.0)

    assert [count(o) for o in ("ok", "error", "timeout", "denied", "busy")] == [2, 1, 1, 1, 1]
    assert count("ok", "2.0.0") == 1
    v1 = (("function", "calc"), ("version", "1.0.0"))
    # Latency only where a handler ran: ok, error and timeout.
    assert found[("rosey_invocation_duration_seconds_count", v1)] == 4
    v2 = (("function", "calc"), ("version", "2.0.0"))
    assert found[("rosey_invocation_duration_seconds_bucket", (*v2[:1], ("le", "0.5"), v2[1]))] == 1
    assert (
        found[("rosey_invocation_duration_seconds_bucket", (*v2[:1], ("le", "0.25"), v2[1]))] == 0
    )
    assert found[("rosey_send_queue_depth", ())] == 3
    assert found[("rosey_database_operations_total", (("operation", "get"),))] == 4
    assert not any(name in ("rosey_broken_total", "rosey_unknown") for name, _ in found)


def test_each_runtime_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first(activation())
    text = second.render()[0].decode()
    assert "rosey_invocations_total{" not in text


async def test_a_taken_port_falls_back_to_a_free_one_only_when_asked() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        strict = HttpServer(f"127.0.0.1:{port}")
        with pytest.raises(HttpError) as refused:
            await strict.start()
        server = HttpServer(f"127.0.0.1:{port}", fallback=True)
        await server.start()
        try:
            status, body = await fetch_json(server.url + "/healthz")
        finally:
            await server.stop()
    assert "in use" in str(refused.value) and not strict.running
    assert server.port not in (0, port)
    assert (status, body["status"]) == (200, "ok")
