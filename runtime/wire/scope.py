"""The durable command a task is handling, and where what it says goes.

A handler's words on cytube.send.* and its database writes carry ids made from the command's
JetStream id, so running the command again (it was redelivered after its runtime died) says and
writes nothing twice. A context variable, not state: each task sees its own, tasks it starts and
the thread of a sync handler inherit it (runtime/core/running.py copies the context).
"""

from __future__ import annotations

import asyncio
import time
from contextvars import ContextVar
from dataclasses import dataclass, field

from nats.js import JetStreamContext

from runtime.constants import MSG_ID
from runtime.wire.backoff import Backoff


@dataclass
class Scope:
    """The durable message a task is handling: where and under which ids its words go."""

    msg_id: str
    js: JetStreamContext
    timeout: float
    said: int = field(default=0)
    writes: int = field(default=0)
    lost: bool = field(default=False)  # a line could not be put in JetStream

    def write_token(self) -> str:
        """The idempotency token of the handler's next database write: the n-th write of a
        redelivered command has the first delivery's token, and Redis applies it once."""
        self.writes += 1
        return f"{self.msg_id}.w{self.writes}"

    async def say(self, subject: str, data: bytes) -> None:
        """Publish one line under `<msg_id>.<n>`, retried until JetStream has it: the n-th line
        of a redelivered command has the same id as the first delivery's, and is dropped."""
        self.said += 1
        headers = {MSG_ID: f"{self.msg_id}.{self.said}"}
        backoff = Backoff()
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                await self.js.publish(subject, data, timeout=1.0, headers=headers)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                if time.monotonic() + backoff.delay > deadline:
                    self.lost = True  # the command is not acknowledged: it runs again
                    raise
                await backoff.wait()


# The message the current task handles; Bus.publish sends cytube.send.* through it.
CURRENT: ContextVar[Scope | None] = ContextVar("rosey_durable_scope", default=None)
