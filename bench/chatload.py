"""The load generator: chat lines published on `cytube.chat` as the connector would, each from a
user of its own (`u` + 8 digits), and the reply on `cytube.send.chat` matched by that token,
found in the raw reply bytes (so the raw echo, which sends the line back unparsed, is matched
the same way as a bot's answer). Each line carries a `Nats-Msg-Id` header, as the connector's
lines do under durable delivery."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections.abc import Callable

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg

MSG_ID = "Nats-Msg-Id"
TOKEN = re.compile(rb"u(\d{8})")
REPLY_TIMEOUT = 30.0


class ChatLoad:
    """Sends `!<command>` lines and waits for the matching reply."""

    def __init__(self, nc: Client) -> None:
        self.nc = nc
        self.next = 0
        self.waiting: dict[bytes, asyncio.Future[bytes]] = {}
        self.stray = 0
        self.run_id = secrets.token_hex(4)  # line ids stay unique across loads of one run

    @classmethod
    async def connect(cls, url: str) -> ChatLoad:
        nc = await nats.connect(url, name="bench-load")
        load = cls(nc)
        await nc.subscribe("cytube.send.chat", cb=load._on_reply)
        await nc.flush()
        return load

    async def close(self) -> None:
        await self.nc.close()

    async def _on_reply(self, msg: Msg) -> None:
        found = TOKEN.search(msg.data)
        future = self.waiting.pop(found.group(1), None) if found else None
        if future is None:
            self.stray += 1
        elif not future.done():
            future.set_result(msg.data)

    def line(self, text: str) -> tuple[bytes, bytes]:
        """(token, payload) of the next chat line saying `text`."""
        self.next += 1
        token = b"%08d" % self.next
        payload = {
            "user": f"u{token.decode()}",
            "message": text,
            "rank": 0,
            "channel": "bench",
            "time": int(time.time() * 1000),
        }
        return token, json.dumps(payload).encode()

    async def send(self, token: bytes, payload: bytes) -> bytes:
        future = asyncio.get_running_loop().create_future()
        self.waiting[token] = future
        # Under an id, as the connector publishes with durable delivery (JetStream dedupes by it).
        headers = {MSG_ID: f"bench-{self.run_id}-{token.decode()}"}
        await self.nc.publish("cytube.chat", payload, headers=headers)
        try:
            return await asyncio.wait_for(future, REPLY_TIMEOUT)
        finally:
            self.waiting.pop(token, None)

    async def latencies(self, text: str, count: int) -> list[float]:
        """Seconds per command, one at a time."""
        lines = [self.line(text) for _ in range(count)]
        times = []
        for token, payload in lines:
            began = time.perf_counter()
            await self.send(token, payload)
            times.append(time.perf_counter() - began)
        return times

    async def throughput(
        self, text: str, count: int, in_flight: int, around: Callable[[], None] | None = None
    ) -> float:
        """Commands per second with `in_flight` outstanding. `around` is called right before
        the first send and right after the last reply (to read CPU counters)."""
        lines = iter([self.line(text) for _ in range(count)])

        async def worker() -> None:
            for token, payload in lines:
                await self.send(token, payload)

        if around:
            around()
        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        took = time.perf_counter() - began
        if around:
            around()
        return count / took
