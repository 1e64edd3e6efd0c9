"""Service discovery: every function this runtime serves is a NATS micro service, so `$SRV.PING`,
`$SRV.INFO` and `$SRV.STATS` (and `nats micro ls/info/stats`) list it.

nats.micro's endpoints subscribe their subjects themselves. The Invoker's bindings already
subscribe `plugin.<name>.*` in the queue group `rosey.<name>`; a micro endpoint there would be a
second member of that group and take part of the traffic away from the Invoker (or, outside the
group, see every message twice). So a function's micro service has no endpoint subscriptions: it
answers the control subjects only, and describes the Invoker's bindings as its endpoints, with
counts from the bindings and from activation records. The runtime's own service (`rosey`) has
real micro endpoints, such as `rosey.activations.query`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.micro.request import Request
from nats.micro.service import (
    DEFAULT_PREFIX,
    SEMVER_REGEX,
    EndpointInfo,
    EndpointStats,
    Service,
    ServiceConfig,
    ServiceInfo,
    ServicePing,
    ServiceStats,
    ServiceVerb,
)

from runtime import __version__
from runtime.constants import command_subject, request_subject
from runtime.core.activation import Activation
from runtime.core.invoker import Invoker
from runtime.core.runtime import Runtime
from runtime.wire import contract
from runtime.wire.bus import Binding, settle

log = logging.getLogger("rosey.discovery")

RUNTIME_SERVICE = "rosey"
# Outcomes that count as a micro endpoint error; denials and cooldowns are correct answers.
ERRORS = frozenset({"error", "timeout", "busy", "invalid"})


@dataclass
class _Tally:
    errors: int = 0
    nanoseconds: int = 0
    last_error: str = ""


class Tally:
    """Activation observer: errors and processing time per function, version and kind."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, str], _Tally] = {}

    def __call__(self, a: Activation) -> None:
        key = (a.function, a.version, a.kind)
        tally = self.counts.get(key)
        if tally is None:  # not setdefault: that would build a _Tally per activation
            tally = self.counts[key] = _Tally()
        tally.nanoseconds += int(a.duration * 1e9)
        if a.outcome in ERRORS:
            tally.errors += 1
            tally.last_error = a.error or a.outcome

    def get(self, function: str, version: str, kind: str) -> _Tally:
        return self.counts.get((function, version, kind)) or _Tally()

    def keep(self, current: dict[str, str]) -> None:
        """Forget versions no longer served (function name → version)."""
        for key in [k for k in self.counts if current.get(k[0]) != k[1]]:
            del self.counts[key]


def micro_version(version: str) -> str:
    # Manifests allow a few semantic versions nats.micro rejects (such as "1.0.0-01").
    return version if SEMVER_REGEX.match(version) else "0.0.0"


def _endpoint(binding: Binding, function: str) -> tuple[str, str]:
    """(endpoint name, activation kind) of one of an Invoker's bindings."""
    if binding.subject == command_subject(function):
        return "command", "command"
    if binding.subject == request_subject(function):
        return "request", "request"
    return "event-" + re.sub(r"[^A-Za-z0-9_-]", "_", binding.subject), "event"


class FunctionService(Service):
    """One function version as a micro service whose endpoints are its Invoker's bindings."""

    def __init__(self, nc: Client, invoker: Invoker, tally: Tally, meta: dict[str, str]) -> None:
        f = invoker.function
        super().__init__(
            nc,
            ServiceConfig(
                name=f.name,
                version=micro_version(f.version),
                description=f.description or None,
                metadata={**meta, "version": f.version, "commands": " ".join(f.commands)},
            ),
        )
        self.invoker, self.tally = invoker, tally

    async def start(self) -> None:
        """No subscriptions of its own (nine per function, ~45 KB of memory each time): the
        Discovery answers the control subjects for every function (`answer`)."""
        self._started = datetime.utcnow()

    async def answer(self, verb: str, msg: Msg) -> None:
        """This service's reply to a PING, INFO or STATS request."""
        if verb == ServiceVerb.PING:
            reply: Any = ServicePing(
                id=self.id, name=self._name, version=self._version, metadata=self._metadata
            )
        elif verb == ServiceVerb.INFO:
            reply = self.info()
        else:
            reply = self.stats()
        await msg.respond(json.dumps(reply.to_dict()).encode())

    def _described(self) -> list[tuple[str, str, Binding]]:
        name = self.invoker.function.name
        return [(*_endpoint(b, name), b) for b in self.invoker.bindings]

    def info(self) -> ServiceInfo:
        info = super().info()
        info.endpoints = [
            EndpointInfo(name, b.subject, b.queue, {"kind": kind})
            for name, kind, b in self._described()
        ]
        return info

    def stats(self) -> ServiceStats:
        stats = super().stats()
        f, seen = self.invoker.function, set()
        function_stats = {**asdict(self.invoker.stats), "in_flight": self.invoker.in_flight}
        for name, kind, b in self._described():
            # Activations know their kind, not their subject: with several event subjects, their
            # errors and processing time are all reported on the first.
            tally = self.tally.get(f.name, f.version, kind) if kind not in seen else _Tally()
            seen.add(kind)
            stats.endpoints.append(
                EndpointStats(
                    name=name,
                    subject=b.subject,
                    queue_group=b.queue,
                    num_requests=b.received,
                    num_errors=tally.errors,
                    processing_time=tally.nanoseconds,
                    average_processing_time=tally.nanoseconds // max(b.received, 1),
                    last_error=tally.last_error or None,
                    data={"function": function_stats},
                )
            )
        return stats


Handler = Callable[[bytes], Awaitable[dict[str, Any]]]


class Discovery:
    """Keeps one micro service per served function in step with the runtime; call `sync()`
    after every swap or removal."""

    def __init__(self, runtime: Runtime, tally: Tally) -> None:
        self.runtime, self.nc = runtime, runtime.bus.nc
        self.tally = tally
        self.meta = {"host": socket.gethostname(), "pid": str(os.getpid())}
        self.services: dict[str, FunctionService] = {}
        self.own: Service | None = None
        self._control: list[Subscription] = []
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Register the runtime's own service and every function's."""
        if self.own is None:
            self.own = Service(
                self.nc,
                ServiceConfig(
                    name=RUNTIME_SERVICE,
                    version=__version__,
                    description="Rosey function runtime",
                    metadata=self.meta,
                ),
            )
            await self.own.start()
            # One set of control subscriptions answers for every function's service.
            for verb in ServiceVerb:
                for tail in ("", ".*", ".*.*"):
                    subject = f"{DEFAULT_PREFIX}.{verb.value}{tail}"
                    self._control.append(await self.nc.subscribe(subject, cb=self._answer))
            await settle(self.nc)
        await self.sync()

    async def _answer(self, msg: Msg) -> None:
        """`$SRV.<VERB>[.<name>[.<id>]]`: every function's service the subject names answers."""
        _, verb, *named = msg.subject.split(".")
        name, id_ = [*named, None, None][:2]
        for service in list(self.services.values()):
            if name in (None, service._name) and id_ in (None, service.id):
                try:
                    await service.answer(verb, msg)
                except Exception as e:  # a closed connection: nothing to answer on
                    log.debug("answering %s for %s: %s", msg.subject, service._name, e)

    async def add_endpoint(self, name: str, subject: str, handler: Handler, queue: str) -> None:
        """A request/reply endpoint of the runtime's own service: JSON in, JSON envelope out."""
        assert self.own is not None, "start() first"

        async def respond(request: Request) -> None:
            await request.respond(contract.encode(await handler(request.data)))

        await self.own.add_endpoint(name=name, subject=subject, handler=respond, queue_group=queue)
        # nats.micro does not flush a new endpoint's subscription: without this, a request sent
        # by another client right after start() could find no responder.
        await settle(self.nc)

    async def sync(self) -> None:
        """Register new functions, re-register swapped ones (new version, new instance id) and
        deregister removed ones."""
        async with self._lock:
            invokers = dict(self.runtime.invokers)
            for name in [n for n, s in self.services.items() if invokers.get(n) is not s.invoker]:
                await self._stop(self.services.pop(name))
            for name, invoker in invokers.items():
                if name not in self.services:
                    service = FunctionService(self.nc, invoker, self.tally, self.meta)
                    await service.start()
                    self.services[name] = service
            self.tally.keep({n: i.function.version for n, i in invokers.items()})

    async def follow(self, name: str) -> None:
        """The Runtime's swap hook: `name` was swapped, added or removed."""
        await self.sync()

    async def stop(self) -> None:
        async with self._lock:
            for subscription in self._control:
                try:
                    await subscription.unsubscribe()
                except Exception as e:  # a closed connection: nothing left to deregister from
                    log.debug("unsubscribing %s: %s", subscription.subject, e)
            self._control = []
            for service in self.services.values():
                await self._stop(service)
            self.services = {}
            if self.own is not None:
                await self._stop(self.own)
                self.own = None

    async def _stop(self, service: Service) -> None:
        try:
            await service.stop()
        except Exception as e:  # a closed connection: nothing left to deregister from
            log.debug("stopping micro service %s: %s", service.id, e)
