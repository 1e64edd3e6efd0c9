"""The Runtime: functions from manifests, loaded and bound to NATS, with the router in front."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from runtime import __version__
from runtime.config import manifest
from runtime.config.keys import DEFAULT_NAMESPACE, Namespace
from runtime.config.manifest import Function
from runtime.config.settings import DeliverySettings, Settings
from runtime.constants import PLATFORM_HEARTBEAT, PLATFORM_SHUTDOWN, PLATFORM_STARTUP
from runtime.core import loader
from runtime.core.activation import Observer
from runtime.core.cooldowns import SharedCooldowns
from runtime.core.invoker import Invoker
from runtime.core.listen import Listening
from runtime.core.loader import Loaded
from runtime.core.registry import Registry, Route
from runtime.core.router import Admin, Router
from runtime.core.schedule import Schedules
from runtime.core.threads import HandlerThreads, Reaped
from runtime.core.usage import Usage, UsageService
from runtime.errors import ConfigError, DeployError, LoadError, RegistryError, RoseyError
from runtime.tasks import halt
from runtime.wire.bus import Bus

log = logging.getLogger("rosey.runtime")

DbFactory = Callable[[Function], Any]
Preparer = Callable[[Function], Awaitable[None]]
SwapHook = Callable[[str], Awaitable[None]]
Isolate = Callable[[Function, Path], Loaded]


@dataclass(frozen=True)
class Wiring:
    """What the composition root (runtime/host/serve.py) plugs into a Runtime, all at construction.

    `observers` see every activation (metrics, activation records). `preparers` are awaited with
    each function before its code loads, at start and on every swap (the database declares the
    manifest's indexes). `swap_hooks` are awaited with a function's name after every swap and
    removal (service discovery). `admin` answers the router's built-in `!rosey` command.
    `isolate` loads a function declaring `isolation: process` in a worker process; without it
    such a function is refused. `redis` (an asyncio client) shares cooldowns and schedule claims
    across runtimes under the namespace `keys`; None keeps them in this process. `delivery` in
    durable mode has the router take chat lines from JetStream (the streams must exist:
    runtime/wire/streams.py); None keeps core NATS.
    """

    db: DbFactory | None = None
    redis: Redis | None = None
    keys: Namespace = DEFAULT_NAMESPACE
    observers: Sequence[Observer] = ()
    preparers: Sequence[Preparer] = ()
    swap_hooks: Sequence[SwapHook] = ()
    admin: Admin | None = None
    isolate: Isolate | None = None
    delivery: DeliverySettings | None = None


@dataclass
class SwapReport:
    """What one deploy, rollback or removal changed in one runtime."""

    name: str
    old_version: str | None
    new_version: str | None
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    rank_changes: dict[str, list[float]] = field(default_factory=dict)
    swap_ms: float = 0.0
    drained: int = 0
    lost: int = 0

    @classmethod
    def of(
        cls, old: Function | None, new: Function | None, seconds: float, drained: int
    ) -> SwapReport:
        before = dict(old.commands) if old else {}
        after = dict(new.commands) if new else {}
        named = new or old
        return cls(
            name=named.name if named else "?",
            old_version=old.version if old else None,
            new_version=new.version if new else None,
            added=sorted(set(after) - set(before)),
            removed=sorted(set(before) - set(after)),
            rank_changes={
                c: [before[c].rank, after[c].rank]
                for c in sorted(set(before) & set(after))
                if before[c].rank != after[c].rank
            },
            swap_ms=round(seconds * 1000, 2),
            drained=drained,
        )


class Runtime:
    """Serves every function of a manifests folder on one NATS connection."""

    def __init__(
        self,
        settings: Settings,
        bus: Bus,
        functions: list[Function] | None = None,
        *,
        route: bool = True,
        wiring: Wiring = Wiring(),
    ) -> None:
        self.settings, self.bus, self.wiring = settings, bus, wiring
        self._functions = functions
        self.registry = Registry()
        self.invokers: dict[str, Invoker] = {}
        self.executor = HandlerThreads(settings.sync_workers)
        self.usage = Usage()
        self.observers: tuple[Observer, ...] = (*wiring.observers, self.usage)
        self.usage_service = UsageService(bus, self.usage)
        redis = wiring.redis
        self.schedules = Schedules(lambda: self.invokers, redis, settings.channel, keys=wiring.keys)
        self.listening = Listening(bus, lambda: self.invokers, settings.command_prefix)
        self.router = (
            Router(
                bus,
                lambda: self.registry,
                settings.command_prefix,
                cooldowns=SharedCooldowns(redis, wiring.keys, mode=settings.cooldowns),
                observers=self.observers,
                admin=wiring.admin,
                # Local-first: commands of functions loaded here run without a second NATS hop.
                local=lambda name: self.invokers.get(name),
                delivery=wiring.delivery,
            )
            if route
            else None
        )
        self.started_at = 0.0
        self._heartbeat: asyncio.Task[None] | None = None
        self._swap_lock = asyncio.Lock()

    @property
    def bundle_root(self) -> Path:
        return self.settings.data_dir / "bundles"

    def catalog(self) -> list[Route]:
        return self.registry.commands()

    def _invoker(self, code: Loaded) -> Invoker:
        db = self.wiring.db(code.function) if self.wiring.db else None
        return Invoker(
            code, self.bus, self.executor, self.catalog, db, self.observers, self.listening
        )

    def _load(self, function: Function, folder: Path) -> Loaded:
        """In this process, or (isolation: process) in a worker process started with the Invoker."""
        isolation = function.isolation or self.settings.isolation.default
        if isolation not in ("none", "process"):
            raise ConfigError("settings", "isolation.default", "expected none or process")
        if isolation == "process":
            if self.wiring.isolate is None:
                raise LoadError(
                    function.name, function.source, "isolation: process needs a worker host here"
                )
            return self.wiring.isolate(function, folder)
        return Reaped(loader.load(function, folder))

    async def swap(self, function: Function, folder: Path) -> SwapReport:
        """Serve a new version of `function` (or a new function) without dropping a command.

        Import under a fresh module name, run the manifest's examples, subscribe the new version,
        switch the routing table, then drain the old version and purge its modules. Any failure
        before the switch leaves the old version serving and raises.
        """
        async with self._swap_lock:
            began = time.perf_counter()
            old_fn, old = self.registry.get(function.name), self.invokers.get(function.name)
            try:
                registry = self.registry.replace(function)
            except RegistryError as e:
                raise DeployError(function.name, str(e)) from e
            try:
                for prepare in self.wiring.preparers:
                    await prepare(function)
            except RoseyError as e:
                raise DeployError(function.name, str(e)) from e
            new: Invoker | None = None
            if not function.external:
                try:
                    new = self._invoker(self._load(function, folder))
                    await new.code.start()  # examples run in a worker too
                except LoadError as e:
                    # Paths as the author knows them, not the bundle cache's.
                    reason = f"cannot load {e.target}: {e.reason}".replace(
                        f"{folder}/", "functions/"
                    )
                    raise DeployError(function.name, reason) from e
                try:
                    await new.check_examples()
                    await new.start()
                except BaseException:
                    await new.stop(0)
                    new.code.purge()
                    raise
            # The switch: from here on the router and the status see the new version.
            self.registry = registry
            if new is not None:
                self.invokers[function.name] = new
            else:
                self.invokers.pop(function.name, None)
            await self._follow_swap(function.name)
            drained = await self._retire(old)
            report = SwapReport.of(old_fn, function, time.perf_counter() - began, drained)
            report.lost = old.abandoned if old else 0
            return report

    async def remove(self, name: str) -> SwapReport:
        async with self._swap_lock:
            began = time.perf_counter()
            old_fn = self.registry.get(name)
            if old_fn is None:
                raise DeployError(name, "no such function")
            self.registry = self.registry.without(name)
            retired = self.invokers.pop(name, None)
            await self._follow_swap(name)
            drained = await self._retire(retired)
            return SwapReport.of(old_fn, None, time.perf_counter() - began, drained)

    async def _follow_swap(self, name: str) -> None:
        """The old version's schedules stop and the new one's start; an open listening window
        carries over to the new version (a game goes on) unless it no longer declares `listen`."""
        await self.schedules.restart(name)
        invoker = self.invokers.get(name)
        if invoker is None or invoker.function.listen is None:
            await self.listening.stop(name)
        for hook in self.wiring.swap_hooks:
            await hook(name)

    async def _retire(self, old: Invoker | None) -> int:
        if old is None:
            return 0
        drained = await old.stop(self.settings.drain_timeout)
        old.code.purge()
        return drained

    async def start(self, served: Sequence[tuple[Function, Path]] | None = None) -> None:
        """Validate, load and bind every function; nothing is bound unless all of them load.

        `served` pairs each function with the folder of its code (the deploy service chooses
        deployed versions over those on disk); by default, the manifests and functions folders
        of the settings.
        """
        if served is None:
            functions = self._functions
            if functions is None:
                functions = manifest.load_dir(self.settings.manifests_dir)
            served = [(f, self.settings.functions_dir) for f in functions]
        registry = Registry(f for f, _ in served)
        for f in registry:
            for prepare in self.wiring.preparers:
                await prepare(f)
        invokers = {
            f.name: self._invoker(self._load(f, folder)) for f, folder in served if not f.external
        }
        self.registry, self.invokers = registry, invokers
        try:
            for invoker in invokers.values():
                await invoker.start()
            await self.usage_service.start()
            for name in invokers:
                self.schedules.start(name)
            if self.router:
                await self.router.start()
        except BaseException:
            await self.stop("start failed")
            raise
        self.started_at = time.monotonic()
        await self._announce(
            PLATFORM_STARTUP,
            {
                "version": __version__,
                "plugins": [{"name": f.name, "version": f.version} for f in registry],
                "timestamp": time.time(),
            },
        )
        if self.settings.heartbeat_interval > 0:
            self._heartbeat = asyncio.create_task(self._beat())
        log.info(
            "serving %d functions: %s",
            len(registry),
            ", ".join(
                f"{f.name} {f.version}" + (" (external)" if f.external else "") for f in registry
            ),
        )

    async def stop(self, reason: str = "shutdown") -> None:
        heartbeat, self._heartbeat = self._heartbeat, None
        await halt(heartbeat)
        if self.started_at:
            await self._announce(PLATFORM_SHUTDOWN, {"reason": reason, "timestamp": time.time()})
        await self.schedules.stop_all()
        await self.listening.stop_all()
        await self.usage_service.stop()
        # One drain_timeout for all: the router's drain and the functions' run together.
        drain = self.settings.drain_timeout
        stopping = [i.stop(drain) for i in self.invokers.values()]
        await asyncio.gather(*stopping, *([self.router.stop(drain)] if self.router else []))
        for invoker in self.invokers.values():
            invoker.code.purge()
            if invoker.abandoned:
                log.warning(
                    "%s %s: %d call(s) still running after drain_timeout (%gs) were abandoned",
                    invoker.function.name,
                    invoker.function.version,
                    invoker.abandoned,
                    drain,
                )
        self.invokers = {}
        self.started_at = 0.0
        # A thread in a sync handler cannot be stopped: each is named, and ends with the process.
        self.executor.shutdown(wait=False, cancel_futures=True)
        now = time.monotonic()
        for label, started in list(self.executor.running.values()):
            log.warning(
                "abandoned %s: a sync handler still running after %.1fs", label, now - started
            )

    @property
    def busy(self) -> int:
        routing = self.router.busy if self.router else 0
        return routing + sum(i.busy for i in self.invokers.values())

    async def quiesce(
        self, timeout: float | None = None, extra: Callable[[], int] = lambda: 0
    ) -> bool:
        """Wait until no message is in flight anywhere in this process; False on timeout."""
        limit = timeout or max([f.timeout for f in self.registry] + [1.0]) + 2.0
        deadline = time.monotonic() + limit
        idle = 0
        while time.monotonic() < deadline:
            # A flush round-trips the server, so messages this process published and also
            # subscribes to have been delivered back before the counts are read.
            await self.bus.flush()
            if self.busy + extra() == 0:
                idle += 1
                if idle >= 2:
                    return True
            else:
                idle = 0
            await asyncio.sleep(0.005)
        return False

    async def _announce(self, subject: str, payload: dict[str, Any]) -> None:
        try:
            await self.bus.publish(subject, payload)
        except RoseyError as e:
            log.warning("could not publish %s: %s", subject, e)

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_interval)
            await self._announce(
                PLATFORM_HEARTBEAT,
                {
                    "timestamp": time.time(),
                    "uptime": time.monotonic() - self.started_at,
                    "plugins_active": len(self.invokers),
                    "nats_connected": self.bus.connected,
                },
            )
