"""The connector's side of durable delivery: chat lines into JetStream, lines to say out of it.

Chat and PM lines go through a DurablePublisher under an id made from what CyTube sent (channel,
time, user, text), the same for every retry, so the server keeps each line once. Lines to say
are taken from the ROSEY_SEND stream's consumer while this process holds the channel, and
acknowledged once they are in the send queue; one redelivered after a lost acknowledgement
(its id seen already) is acknowledged without being said again.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from nats.aio.msg import Msg

from runtime.config.settings import DeliverySettings
from runtime.constants import MSG_ID
from runtime.wire import contract
from runtime.wire.bus import Bus
from runtime.wire.intake import Intake
from runtime.wire.publisher import DurablePublisher
from runtime.wire.streams import SAID_LINES

log = logging.getLogger("rosey.cytube.durable")

REMEMBERED = 10_000  # ids of lines said, to recognise a redelivery


def line_id(subject: str, payload: dict[str, Any]) -> str:
    """Stable across the connector's retries: made only of what CyTube sent."""
    digest = hashlib.blake2b(digest_size=12)
    for part in (subject, payload.get("channel") or "", payload["user"], payload["message"]):
        digest.update(str(part).encode())
        digest.update(b"\0")
    return f"{payload.get('time', 0)}-{digest.hexdigest()}"


class DurableLines:
    """The publisher of chat lines and the intake of lines to say, for one connector."""

    def __init__(
        self,
        bus: Bus,
        settings: DeliverySettings,
        say: Callable[[Msg], Awaitable[None]],
        slots: int = 64,
    ) -> None:
        js = bus.nc.jetstream()
        self.publisher = DurablePublisher(js)
        self.intake = Intake(
            js,
            SAID_LINES,
            self._take,
            slots=slots,
            max_age=settings.max_age,
            ack_wait=settings.ack_wait,
        )
        self._say = say
        self._said: OrderedDict[str, None] = OrderedDict()
        self.repeats = 0

    def publish(self, subject: str, payload: dict[str, Any]) -> bool:
        """Queue a chat/PM line for JetStream (checked against the contract first)."""
        contract.check(subject, payload)
        return self.publisher.put(subject, contract.encode(payload), line_id(subject, payload))

    async def _take(self, msg: Msg, msg_id: str) -> bool:
        said = (msg.headers or {}).get(MSG_ID)
        if said is not None and said in self._said:
            self.repeats += 1
            log.info("%s was said already; not again", said)
            return True
        await self._say(msg)
        if said is not None:
            self._said[said] = None
            while len(self._said) > REMEMBERED:
                self._said.popitem(last=False)
        return True
