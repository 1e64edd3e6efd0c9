"""The JetStream streams and durable consumers of durable delivery, created at start.

Two work-queue streams on file storage: ROSEY_CHAT holds chat and PM lines until a runtime has
answered them, ROSEY_SEND holds what the bot says until the connector has sent it. Each has one
durable pull consumer shared by every process that takes from it, so a line goes to one of them
and comes back to another when that one dies before acknowledging it. Creating them is
idempotent: every process does it at start, and a changed setting updates them in place.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nats.js import JetStreamContext
from nats.js import api as js_api
from nats.js.errors import BadRequestError, NotFoundError

from runtime.config.settings import DeliverySettings
from runtime.constants import (
    CHAT,
    CHAT_STREAM,
    CONNECTOR_CONSUMER,
    PM,
    ROUTER_CONSUMER,
    SEND_CHAT,
    SEND_PM,
    SEND_STREAM,
)
from runtime.errors import BusError, ConfigError
from runtime.wire.bus import Bus

log = logging.getLogger("rosey.streams")

# Long enough that a connector retrying a line across a NATS restart is still deduplicated, and
# longer than any max_age a redelivered command is still run within.
DUPLICATE_WINDOW = 120.0
# A line nobody took within a day is dropped by the server; runtimes count older ones as stale.
KEEP = 24 * 3600.0
# What the bot was to say and no connector took within 10 minutes (`make run` has no connector)
# is dropped by the server: chat has moved on.
SAY_WITHIN = 600.0
NO_JETSTREAM = (
    "durable delivery needs JetStream on the NATS server: start nats-server with -js "
    "(jetstream {} in its configuration), or set delivery.mode: at-most-once to keep core NATS "
    "(a NATS restart can then lose commands)"
)


@dataclass(frozen=True)
class Stream:
    name: str
    subjects: tuple[str, ...]
    consumer: str


CHAT_LINES = Stream(CHAT_STREAM, (CHAT, PM), ROUTER_CONSUMER)
SAID_LINES = Stream(SEND_STREAM, (SEND_CHAT, SEND_PM), CONNECTOR_CONSUMER)


class Streams:
    """Creates (or updates) both streams and their consumers on one JetStream context."""

    def __init__(
        self,
        js: JetStreamContext,
        settings: DeliverySettings,
        source: str,
        server_info: Mapping[str, Any],
    ) -> None:
        """`server_info`: what the NATS server said of itself on connecting (its INFO)."""
        self.js, self.settings, self.source = js, settings, source
        self.server_info = server_info

    async def ensure(self, ready_timeout: float = 15.0) -> None:
        """Raises ConfigError when the server has no JetStream, BusError when it refuses.
        A server with JetStream may not serve it yet (a cluster electing its leader): that
        is waited for, up to `ready_timeout`."""
        if not self.server_info.get("jetstream"):
            raise ConfigError(self.source, "delivery.mode", NO_JETSTREAM)
        deadline = time.monotonic() + ready_timeout
        while True:
            try:
                await self.js.account_info()
                break
            except Exception as e:  # no responders or a timeout while a cluster forms
                if time.monotonic() > deadline:
                    raise ConfigError(self.source, "delivery.mode", f"{NO_JETSTREAM} ({e})") from e
                await asyncio.sleep(0.1)  # a retry interval while the server gets ready
        for stream in (CHAT_LINES, SAID_LINES):
            await self._stream(stream)
            await self._consumer(stream)

    async def _stream(self, stream: Stream) -> None:
        config = js_api.StreamConfig(
            name=stream.name,
            subjects=list(stream.subjects),
            retention=js_api.RetentionPolicy.WORK_QUEUE,
            storage=js_api.StorageType.FILE,
            discard=js_api.DiscardPolicy.OLD,
            max_age=KEEP if stream is CHAT_LINES else SAY_WITHIN,
            max_bytes=self.settings.max_bytes,
            duplicate_window=DUPLICATE_WINDOW,
            num_replicas=self.settings.replicas,
        )
        try:
            await self.js.add_stream(config)
        except BadRequestError:
            # It exists with other limits (settings changed): bring it in line.
            try:
                await self.js.update_stream(config)
            except Exception as e:
                raise BusError(f"stream {stream.name} update", str(e)) from e
        except Exception as e:
            raise BusError(f"stream {stream.name} create", str(e)) from e

    async def _consumer(self, stream: Stream) -> None:
        config = js_api.ConsumerConfig(
            durable_name=stream.consumer,
            ack_policy=js_api.AckPolicy.EXPLICIT,
            ack_wait=self.settings.ack_wait,
            max_deliver=-1,  # a line is retried until answered or too old, never given up
            max_ack_pending=10_000,
            num_replicas=self.settings.replicas,
        )
        try:
            await self.js.consumer_info(stream.name, stream.consumer)
        except NotFoundError:
            pass
        else:
            return  # shared by every process: never reset it under the others
        try:
            await self.js.add_consumer(stream.name, config)
        except Exception as e:
            raise BusError(f"consumer {stream.consumer} create", str(e)) from e


async def ensure_streams(bus: Bus, settings: DeliverySettings, source: str) -> None:
    """Both streams and their consumers on the server `bus` is connected to."""
    await Streams(bus.nc.jetstream(), settings, source, bus.nc._server_info).ensure()
