"""The connector under durable delivery: chat lines into JetStream, what to say out of it."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

from runtime.config.settings import DeliverySettings
from runtime.constants import CHAT_STREAM, MSG_ID, SEND_STREAM
from runtime.core.runtime import Wiring
from runtime.cytube.durable import DurableLines, line_id
from runtime.wire.bus import Bus
from runtime.wire.streams import ensure_streams
from tests.conftest import MakeRuntime
from tests.cytube.test_cytube import DICE, DICE_CODE
from tests.cytube_helpers import MakeConnector, fake, make_connector, make_fake
from tests.fake_cytube import FakeCytube

__all__ = ["fake", "make_connector", "make_fake"]  # fixtures

DURABLE = DeliverySettings(ack_wait=1.0)


async def test_roll_end_to_end_through_jetstream(
    fake: FakeCytube, make_connector: MakeConnector, make_runtime: MakeRuntime, bus: Bus
) -> None:
    await ensure_streams(bus, DURABLE, "rosey.yaml")
    await make_runtime(DICE, DICE_CODE, wiring=Wiring(delivery=DURABLE))
    connector = await make_connector(fake, delivery=DURABLE)
    await fake.join("alice", 0)
    for n in range(1, 7):
        await fake.say("alice", f"!roll {n}d6")
    lines = await fake.until(lambda: len(fake.said("rosey")) == 6 and fake.said("rosey"), 20)
    # In order: one connector publishes one line at a time, one router line at a time per user.
    assert [re.match(r"alice rolled (\d+)d6", line)[1] for line in lines] == [  # type: ignore[index]
        str(n) for n in range(1, 7)
    ]
    js = bus.nc.jetstream()
    chat, said = await js.stream_info(CHAT_STREAM), await js.stream_info(SEND_STREAM)
    assert connector.durable is not None
    assert connector.durable.publisher.published == 6
    assert chat.state.last_seq >= 6 and said.state.last_seq >= 6  # both went through streams


async def test_a_line_said_again_is_not_sent_twice(bus: Bus) -> None:
    """A redelivered line (its acknowledgement was lost with NATS) has the id it had."""
    sent: list[Any] = []

    async def say(msg: Any) -> None:
        sent.append(msg.data)

    lines = DurableLines(bus, DURABLE, say)
    first = SimpleNamespace(headers={MSG_ID: "ROSEY_CHAT-9.1"}, data=b"hi")
    assert await lines._take(first, "ROSEY_SEND-1")  # type: ignore[arg-type]
    assert await lines._take(first, "ROSEY_SEND-1")  # type: ignore[arg-type]
    other = SimpleNamespace(headers={MSG_ID: "ROSEY_CHAT-9.2"}, data=b"there")
    assert await lines._take(other, "ROSEY_SEND-2")  # type: ignore[arg-type]
    assert (sent, lines.repeats) == ([b"hi", b"there"], 1)


def test_a_chat_lines_id_is_made_of_what_cytube_sent() -> None:
    line = {"user": "alice", "message": "!roll", "channel": "t", "rank": 0, "time": 1700}
    assert line_id("cytube.chat", line) == line_id("cytube.chat", dict(line))
    assert line_id("cytube.chat", line) != line_id("cytube.chat", {**line, "time": 1701})
    assert line_id("cytube.chat", line) != line_id("cytube.pm", line)
    assert line_id("cytube.chat", line).startswith("1700-")
