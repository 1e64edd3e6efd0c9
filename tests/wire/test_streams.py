"""Durable delivery's JetStream parts against a real nats-server with a file store."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats.aio.msg import Msg

from runtime.config.settings import DeliverySettings
from runtime.constants import CHAT, CHAT_STREAM, MSG_ID, SEND_CHAT, SEND_STREAM
from runtime.errors import ConfigError
from runtime.host.servers import EmbeddedNats
from runtime.wire.bus import Bus
from runtime.wire.intake import Intake
from runtime.wire.publisher import DurablePublisher
from runtime.wire.streams import CHAT_LINES, ensure_streams
from tests.conftest import wait_for


@pytest.fixture
async def js_bus(jetstream: EmbeddedNats) -> AsyncIterator[Bus]:
    bus = await Bus.connect(jetstream.url, name="test-js", timeout=1)
    await ensure_streams(bus, DeliverySettings(ack_wait=1.0), "rosey.yaml")
    yield bus
    await bus.close()


def kill9(server: EmbeddedNats) -> None:
    assert server.process is not None
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(5)
    server.process = None


async def test_streams_are_created_once_and_follow_changed_limits(js_bus: Bus) -> None:
    js = js_bus.nc.jetstream()
    again = DeliverySettings(ack_wait=1.0, max_bytes=2 * 1024 * 1024)
    await ensure_streams(js_bus, again, "rosey.yaml")  # idempotent, and updates the limit
    info = await js.stream_info(CHAT_STREAM)
    assert info.config.max_bytes == 2 * 1024 * 1024
    assert info.config.subjects == ["cytube.chat", "cytube.pm"]
    assert (await js.stream_info(SEND_STREAM)).config.subjects == [SEND_CHAT, "cytube.send.pm"]
    assert (await js.consumer_info(CHAT_STREAM, "rosey-router")).config.ack_wait == 1.0


async def test_a_server_without_jetstream_is_a_clear_start_error(tmp_path: Path) -> None:
    plain = EmbeddedNats(tmp_path / "plain")
    bus = await Bus.connect(plain.start(), timeout=1)
    try:
        with pytest.raises(ConfigError) as info:
            await ensure_streams(bus, DeliverySettings(), "rosey.yaml")
    finally:
        await bus.close()
        plain.stop()
    assert info.value.key == "delivery.mode"
    assert "start nats-server with -js" in str(info.value)
    assert "delivery.mode: at-most-once" in str(info.value)


async def test_publisher_keeps_order_and_each_line_once_across_a_kill_9(
    jetstream: EmbeddedNats,
) -> None:
    bus = await Bus.connect(jetstream.url, name="test-pub", timeout=1)
    try:
        js = bus.nc.jetstream()
        await ensure_streams(bus, DeliverySettings(), "rosey.yaml")
        publisher = DurablePublisher(js, timeout=0.5)
        await publisher.start()
        port = int(jetstream.url.rsplit(":", 1)[1])
        for i in range(100):
            publisher.put(CHAT, str(i).encode(), f"line-{i}")
        await wait_for(lambda: publisher.pending < 60)
        kill9(jetstream)  # some lines in flight, some queued, none acknowledged
        for i in range(100, 150):
            publisher.put(CHAT, str(i).encode(), f"line-{i}")
        for i in range(90, 110):  # the connector retrying lines it had: the same ids
            publisher.put(CHAT, str(i).encode(), f"line-{i}")
        jetstream.start(port=port)
        await wait_for(lambda: publisher.pending == 0, timeout=20)
        assert await publisher.stop() == 0
        sub = await js.pull_subscribe_bind(durable="rosey-router", stream=CHAT_STREAM)
        got: list[int] = []
        while len(got) < 150:
            for msg in await sub.fetch(50, timeout=5):
                got.append(int(msg.data))
                await msg.ack()
    finally:
        await bus.close()
    assert got == list(range(150))
    assert publisher.duplicates >= 20


async def test_intake_acknowledges_handled_and_gives_back_declined(js_bus: Bus) -> None:
    js = js_bus.nc.jetstream()
    seen: list[tuple[bytes, str]] = []

    async def handle(msg: Msg, msg_id: str) -> bool:
        seen.append((msg.data, msg_id))
        if msg.data == b"fail-once" and len([s for s in seen if s[0] == b"fail-once"]) == 1:
            raise RuntimeError("boom")
        # declined the first time: another process (here the same one) takes it again
        return not (msg.data == b"decline-once" and [s[0] for s in seen].count(msg.data) == 1)

    intake = Intake(js, CHAT_LINES, handle, slots=4, ack_wait=1.0)
    await intake.start()
    for text in (b"plain", b"decline-once", b"fail-once"):
        await js.publish(CHAT, text)
    await wait_for(lambda: intake.handled == 3, timeout=15)
    assert await intake.stop() == 0

    async def settled() -> bool:  # the server applies acknowledgements on its own time
        info = await js.consumer_info(CHAT_STREAM, "rosey-router")
        return info.num_ack_pending == 0 and info.num_pending == 0

    await wait_for(settled)
    assert (intake.declined, intake.failed) == (1, 1)
    assert sorted({d for d, _ in seen}) == [b"decline-once", b"fail-once", b"plain"]
    ids = {d: {i for dd, i in seen if dd == d} for d, _ in seen}
    assert all(len(v) == 1 for v in ids.values()), ids  # a redelivery keeps its id


async def test_a_stale_line_is_counted_not_handled(js_bus: Bus) -> None:
    js = js_bus.nc.jetstream()
    handled: list[bytes] = []

    async def handle(msg: Msg, msg_id: str) -> bool:
        handled.append(msg.data)
        return True

    await js.publish(CHAT, b"old")
    info = await js.stream_info(CHAT_STREAM)
    assert info.state.messages == 1
    # max_age as small as a clock tick: the line is older than that when it arrives.
    intake = Intake(js, CHAT_LINES, handle, max_age=1e-9, ack_wait=1.0)
    await intake.start()
    await wait_for(lambda: intake.stale == 1)
    await intake.stop()
    assert handled == []

    async def gone() -> bool:  # acknowledged, so the work queue drops it
        return (await js.stream_info(CHAT_STREAM)).state.messages == 0

    await wait_for(gone)


async def test_a_line_held_by_a_dead_process_goes_to_another(jetstream: EmbeddedNats) -> None:
    first = await Bus.connect(jetstream.url, name="first", timeout=1, reconnect=False)
    second = await Bus.connect(jetstream.url, name="second", timeout=1)
    try:
        await ensure_streams(first, DeliverySettings(ack_wait=1.0), "x")
        started = asyncio.Event()
        done: list[tuple[str, str]] = []

        async def hang(msg: Msg, msg_id: str) -> bool:
            started.set()
            await asyncio.Event().wait()  # never answers: its process dies first
            return True

        async def answer(msg: Msg, msg_id: str) -> bool:
            done.append((msg.data.decode(), msg_id))
            return True

        dying = Intake(first.nc.jetstream(), CHAT_LINES, hang, ack_wait=1.0)
        await dying.start()
        await second.nc.jetstream().publish(CHAT, b"!addquote x", headers={MSG_ID: "q1"})
        await asyncio.wait_for(started.wait(), 10)
        await first.nc.close()  # the process is gone: no ack, no progress, no nak
        taker = Intake(second.nc.jetstream(), CHAT_LINES, answer, ack_wait=1.0)
        await taker.start()
        await wait_for(lambda: len(done) == 1, timeout=15)
        await taker.stop()
        await dying.stop(0.1)
    finally:
        await second.close()
    assert done == [("!addquote x", f"{CHAT_STREAM}-1")]


async def test_a_long_handler_keeps_its_line(js_bus: Bus) -> None:
    """A handler that runs past ack_wait keeps its line with progress acknowledgements: it is
    not delivered again meanwhile (here ack_wait is 1 s and the handler takes 2.5 s)."""
    js = js_bus.nc.jetstream()
    calls: list[str] = []

    async def slow(msg: Msg, msg_id: str) -> bool:
        calls.append(msg_id)
        await asyncio.sleep(2.5)  # the long command itself, not a wait for anything
        return True

    intake = Intake(js, CHAT_LINES, slow, ack_wait=1.0)
    await intake.start()
    await js.publish(CHAT, b"!long")
    await wait_for(lambda: intake.handled == 1, timeout=15)
    await intake.stop()
    assert calls == [f"{CHAT_STREAM}-1"]
