"""Operating a runtime: health, readiness and metrics over HTTP, discovery on NATS, activation
records in Redis. `rosey run` builds them before the Runtime (its Wiring takes their observers)
and starts them once the runtime serves."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from redis.asyncio import Redis
from redis.exceptions import RedisError

from runtime import __version__
from runtime.config.keys import Namespace
from runtime.config.settings import DEFAULT_LISTEN, Settings
from runtime.core.activation import Observer
from runtime.core.runtime import Runtime
from runtime.errors import HttpError
from runtime.ops.discovery import Discovery, Tally
from runtime.ops.http import HttpServer
from runtime.ops.metrics import Metrics
from runtime.ops.records import QUERY, QUERY_QUEUE, ActivationLog
from runtime.wire.bus import Bus

log = logging.getLogger("rosey.operations")

CONNECTION = "cytube.connection"  # the connector announces its state changes here
# `standby`: another process holds the channel's lease; this one serves functions, as it should.
READY_STATES = frozenset({"connected", "standby"})


@dataclass
class Probes:
    """What the CyTube connector and the database service can tell, as plain callables, so that
    operations need none of their internals. Unset ones are left out of /metrics."""

    cytube_state: Callable[[], str] | None = None  # connecting, connected, standby, ...
    send_queue_depth: Callable[[], int] | None = None  # lines waiting to be sent
    cytube_reconnects: Callable[[], int] | None = None  # connections after the first
    database_operations: Callable[[], Mapping[str, int]] | None = None  # operation → requests


class ConnectionWatch:
    """The connector's state as announced on `cytube.connection`, for a connector that runs in
    another process (or has not been handed over as probes)."""

    def __init__(self, bus: Bus, channel: str) -> None:
        self.bus, self.channel = bus, channel
        self.state, self.reason = "", ""
        self.connects = 0
        self._sub: Subscription | None = None

    @property
    def reconnects(self) -> int:
        return max(self.connects - 1, 0)

    async def start(self) -> None:
        # A plain subscription (no queue group): every runtime wants to see every change.
        self._sub = await self.bus.nc.subscribe(CONNECTION, cb=self._on_state)

    async def stop(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _on_state(self, msg: Msg) -> None:
        try:
            payload = json.loads(msg.data)
            if payload.get("channel") != self.channel:
                return
            state = str(payload["state"])
        except (ValueError, KeyError, TypeError, AttributeError):
            return
        if state == "connected" and self.state != "connected":
            self.connects += 1
        self.state, self.reason = state, str(payload.get("reason", ""))


class Operations:
    """Metrics, activation records, discovery, the connection watch and the HTTP endpoint of one
    runtime. Built before the Runtime, whose Wiring takes `observers` and `follow`; `start()`
    with the runtime, `stop()` undoes everything."""

    def __init__(
        self,
        settings: Settings,
        bus: Bus,
        redis: Redis | None,
        keys: Namespace | None = None,
    ) -> None:
        """`redis` is the process's client (decode_responses=True), closed by its owner, and
        `keys` the namespace of its keys (by default that of `settings.redis.prefix`)."""
        self.settings, self.bus = settings, bus
        self.probes = Probes()
        self.metrics = Metrics()
        self.redis = redis
        keys = keys or Namespace(settings.redis.prefix)
        self.activations = (
            ActivationLog(redis, keys, settings.activations) if redis is not None else None
        )
        self.tally = Tally()
        self.runtime: Runtime | None = None
        self.discovery: Discovery | None = None
        cytube = settings.cytube
        self.watch = ConnectionWatch(bus, cytube.channel) if cytube is not None else None
        self.http = HttpServer(
            settings.http.listen,
            self.metrics,
            {
                "nats": self.check_nats,
                "redis": self.check_redis,
                "cytube": self.check_cytube,
                "functions": self.check_functions,
            },
            # The default port is shared by every Rosey on a host (`rosey worker` beside
            # `rosey run`): when it is taken, a free one; a port chosen in rosey.yaml is kept.
            fallback=settings.http.listen.strip() == DEFAULT_LISTEN,
        )

    @property
    def observers(self) -> tuple[Observer, ...]:
        """For the Runtime's Wiring: every activation goes to metrics, discovery and records."""
        found: tuple[Observer, ...] = (self.metrics, self.tally)
        return (*found, self.activations) if self.activations is not None else found

    async def follow(self, name: str) -> None:
        """For the Runtime's Wiring (a swap hook): discovery follows every swap and removal."""
        if self.discovery is not None:
            await self.discovery.follow(name)

    def _describe(self, runtime: Runtime) -> None:
        m = self.metrics
        m.gauges("rosey_build_info", "Rosey's version.", "version", lambda: {__version__: 1})
        m.gauge("rosey_functions", "Functions served.", lambda: len(runtime.registry))
        m.gauges(
            "rosey_in_flight",
            "Invocations running now, by function.",
            "function",
            lambda: {n: i.in_flight for n, i in runtime.invokers.items()},
        )
        m.gauge(
            "rosey_nats_connected", "1 while connected to NATS.", lambda: int(self.bus.connected)
        )
        m.counter(
            "rosey_nats_reconnects",
            "Reconnections to NATS.",
            lambda: self.bus.nc.stats["reconnects"],
        )
        m.gauge(
            "rosey_send_queue_depth",
            "Chat lines waiting in the CyTube connector's send queue.",
            lambda: self.probes.send_queue_depth() if self.probes.send_queue_depth else None,
        )
        m.counter("rosey_cytube_reconnects", "Reconnections to CyTube.", self._cytube_reconnects)
        intake = runtime.router.intake if runtime.router is not None else None
        if intake is not None:  # durable delivery
            m.counters(
                "rosey_chat_lines",
                "Chat lines this runtime took from JetStream, by outcome: handled, stale (older "
                "than delivery.max_age: not run), declined (given back: busy here), failed "
                "(given back to run again).",
                "outcome",
                lambda: {
                    "handled": intake.handled,
                    "stale": intake.stale,
                    "declined": intake.declined,
                    "failed": intake.failed,
                },
            )
        m.counters(
            "rosey_database_operations",
            "Database requests this runtime's database service received, by operation.",
            "operation",
            lambda: self.probes.database_operations() if self.probes.database_operations else {},
        )
        if self.activations is not None:
            log_ = self.activations
            m.counter("rosey_activation_records_written", "Records written.", lambda: log_.written)
            m.counter(
                "rosey_activation_records_dropped",
                "Records dropped because Redis could not keep up or was unreachable.",
                lambda: log_.dropped,
            )
            m.gauge(
                "rosey_activation_records_buffered", "Records to write.", lambda: len(log_.buffer)
            )

    def _cytube_reconnects(self) -> int | None:
        if self.probes.cytube_reconnects is not None:
            return self.probes.cytube_reconnects()
        return self.watch.reconnects if self.watch is not None else None

    async def start(self, runtime: Runtime) -> None:
        """Serve the probes of `runtime` (started already); on failure, undo what did start."""
        self.runtime = runtime
        self._describe(runtime)
        self.discovery = Discovery(runtime, self.tally)
        try:
            await self._start(self.discovery)
        except BaseException:
            await self.stop()  # what did start: the writer task, micro services, the port
            raise

    async def _start(self, discovery: Discovery) -> None:
        if self.activations is not None:
            await self.activations.start()
        await discovery.start()
        if self.activations is not None:
            await discovery.add_endpoint("activations", QUERY, self.activations.answer, QUERY_QUEUE)
        if self.watch is not None:
            await self.watch.start()
        try:
            await self.http.start()
        except HttpError as e:
            # Another process may hold the port; serving chat matters more than the probes.
            log.error("%s; health, readiness and metrics are off", e)

    async def stop(self) -> None:
        await self.http.stop()
        if self.watch is not None:
            await self.watch.stop()
        if self.discovery is not None:
            await self.discovery.stop()
        if self.activations is not None:
            await self.activations.stop()

    # Readiness checks: (ready, why).

    async def check_nats(self) -> tuple[bool, str]:
        url = self.bus.nc.connected_url
        if self.bus.connected and url is not None:
            return True, f"connected to {url.hostname}:{url.port}"
        return False, "not connected"

    async def check_redis(self) -> tuple[bool, str]:
        if self.redis is None:
            return False, "no Redis configured"
        try:
            await self.redis.ping()
        except (RedisError, OSError) as e:
            return False, str(e) or type(e).__name__
        return True, "answers PING"

    async def check_cytube(self) -> tuple[bool, str]:
        if self.probes.cytube_state is not None:
            state = self.probes.cytube_state()
        elif self.watch is not None:
            state = self.watch.state or "no state announced yet"
            if self.watch.reason:
                state += f" ({self.watch.reason})"
        else:
            return True, "not configured (console chat)"
        return state.split(" ")[0] in READY_STATES, state

    async def check_functions(self) -> tuple[bool, str]:
        if self.runtime is None:
            return False, "not started"
        count = len(self.runtime.invokers)
        return bool(self.runtime.started_at), f"{count} function(s) loaded"
