"""The Runtime: functions from manifests, loaded and bound to NATS, with the router in front."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from . import __version__, loader, manifest
from .bus import Bus
from .constants import PLATFORM_HEARTBEAT, PLATFORM_SHUTDOWN, PLATFORM_STARTUP
from .errors import RoseyError
from .invoker import Invoker
from .manifest import Function
from .registry import Registry, Route
from .router import Router
from .settings import Settings

log = logging.getLogger("rosey.runtime")

DbFactory = Callable[[Function], Any]


class Runtime:
    """Serves every function of a manifests folder on one NATS connection."""

    def __init__(
        self,
        settings: Settings,
        bus: Bus,
        functions: list[Function] | None = None,
        *,
        route: bool = True,
        db: DbFactory | None = None,
    ) -> None:
        self.settings, self.bus, self.db = settings, bus, db
        self._functions = functions
        self.registry = Registry()
        self.invokers: dict[str, Invoker] = {}
        self.executor = ThreadPoolExecutor(settings.sync_workers, thread_name_prefix="rosey-sync")
        self.router = Router(bus, lambda: self.registry, settings.command_prefix) if route else None
        self.started_at = 0.0
        self._heartbeat: asyncio.Task[None] | None = None

    def catalog(self) -> list[Route]:
        return self.registry.commands()

    async def start(self) -> None:
        """Validate, load and bind every function; nothing is bound unless all of them load."""
        functions = self._functions
        if functions is None:
            functions = manifest.load_dir(self.settings.manifests_dir)
        registry = Registry(functions)
        invokers = {
            f.name: Invoker(
                loader.load(f, self.settings.functions_dir),
                self.bus,
                self.executor,
                self.catalog,
                self.db(f) if self.db else None,
            )
            for f in registry
            if not f.external
        }
        self.registry, self.invokers = registry, invokers
        try:
            for invoker in invokers.values():
                await invoker.start()
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
        if self._heartbeat:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        if self.started_at:
            await self._announce(PLATFORM_SHUTDOWN, {"reason": reason, "timestamp": time.time()})
        if self.router:
            await self.router.stop(self.settings.drain_timeout)
        await asyncio.gather(*(i.stop(self.settings.drain_timeout) for i in self.invokers.values()))
        for invoker in self.invokers.values():
            invoker.code.purge()
        self.invokers = {}
        self.started_at = 0.0
        # Threads stuck in a hung sync handler cannot be stopped; do not wait for them.
        self.executor.shutdown(wait=False, cancel_futures=True)

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


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
