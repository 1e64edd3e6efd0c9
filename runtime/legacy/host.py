"""Runs legacy plugin packages in a Runtime: start, hot swap, removal and stop.

Each instance gets an EventBus of its own over the runtime's NATS connection; its commands are in
the runtime's routing table as an external Function, so the router checks ranks and publishes to
plugin.<name>.command, where the plugin subscribed itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.config.manifest import Function, display_path
from runtime.config.settings import PluginsSettings
from runtime.core.bundle import Bundle
from runtime.core.runtime import Runtime, SwapReport
from runtime.errors import ConfigError, DeployError, LoadError, RegistryError, RoseyError
from runtime.legacy import plugin as legacy
from runtime.legacy.event_bus import EventBus

log = logging.getLogger("rosey.legacy")

START_TIMEOUT = 30.0  # seconds a plugin's start() or stop() may take


@dataclass
class Instance:
    """One started plugin: its code, its EventBus and what its start() returned."""

    code: legacy.PluginCode
    bus: EventBus
    state: Any = None

    @property
    def name(self) -> str:
        return self.code.function.name

    async def stop(self, drain_timeout: float) -> tuple[int, int]:
        """Drain its subscriptions, then call its stop(); returns (drained, abandoned)."""
        abandoned_before = self.bus.abandoned
        drained = await self.bus.close()
        try:
            async with asyncio.timeout(START_TIMEOUT):
                result = self.code.stop(self.state)
                if asyncio.iscoroutine(result):
                    await result
        except Exception:
            log.exception("plugin %s: stop() failed", self.name)
        self.code.purge()
        return drained, max(0, self.bus.abandoned - abandoned_before)


class LegacyPlugins:
    """The legacy plugins of one Runtime."""

    def __init__(self, runtime: Runtime, settings: PluginsSettings | None = None) -> None:
        self.runtime = runtime
        self.settings = settings or getattr(runtime.settings, "plugins", None) or PluginsSettings()
        self.running: dict[str, Instance] = {}
        self._lock = asyncio.Lock()

    @property
    def busy(self) -> int:
        return sum(i.bus.busy for i in self.running.values())

    async def start(
        self, deployed: Sequence[Bundle] = (), removed: Collection[str] = ()
    ) -> dict[str, str]:
        """Start `plugins.enabled` (or the deployed version of each) and route the commands of
        `plugins.standalone`. Call after Runtime.start with the same `deployed` and `removed`.

        A plugin that fails to load or start is logged and left out; the others still start.
        A plugin whose name or command clashes with a function (or another plugin) is an
        error: RegistryError naming both and the command, before any plugin starts.
        Returns the bundle hash of each plugin started from disk (the deploy service's record).
        """
        shipped = {b.name: b for b in deployed if legacy.is_legacy(b) and b.name not in removed}
        loaded: list[tuple[legacy.PluginCode, Path]] = []
        try:
            for folder in self._folders(self.settings.enabled):
                try:
                    code = legacy.load(folder, self.settings.ranks)
                except LoadError as e:
                    log.error("plugin in %s not started: %s", display_path(folder), e)
                    continue
                name = code.function.name
                if name in removed or name in shipped:
                    code.purge()  # removed by `rosey remove`, or a deployed version replaces it
                    continue
                loaded.append((code, folder))
            routed = [
                (legacy.function_of(legacy.read_info(f), self.settings.ranks, _init(f)), f)
                for f in self._folders(self.settings.standalone)
            ]
            routed = [(function, f) for function, f in routed if function.name not in removed]
            plugins = [
                *(code.function for code, _ in loaded),
                *(b.function() for b in shipped.values()),
                *(function for function, _ in routed),
            ]
            problems = legacy.clashes(self.runtime.registry, plugins, replaces=shipped)
            if problems:
                raise RegistryError("\n".join(problems))
        except BaseException:
            for code, _ in loaded:
                code.purge()
            raise
        hashes: dict[str, str] = {}
        for code, folder in loaded:
            if await self._serve(code.function, folder, code):
                hashes[code.function.name] = legacy.bundle_of(folder, code.function).hash
        for bundle in shipped.values():
            await self._serve(bundle.function(), bundle.materialize(self.runtime.bundle_root))
        for function, folder in routed:
            await self.runtime.swap(function, folder)  # routed only: the process subscribes
        if self.running:
            log.info("legacy plugins: %s", ", ".join(sorted(self.running)))
        return hashes

    async def _serve(self, function: Function, folder: Path, code: Any = None) -> bool:
        try:
            await self.swap(function, folder, code)
        except RoseyError as e:
            log.error("plugin %s not started: %s", function.name, e)
            return False
        return True

    async def swap(
        self, function: Function, folder: Path, code: legacy.PluginCode | None = None
    ) -> SwapReport:
        """Serve the plugin package in `folder` as `function`, replacing a running version.

        Import under a fresh module name, start() the new instance (it subscribes), switch the
        routing table, then drain the old instance's subscriptions, call its stop() and purge its
        modules. Any failure before the switch leaves the old version serving and raises.
        """
        async with self._lock:
            began = time.perf_counter()
            try:
                code = code or legacy.load(folder, source=f"plugins/{function.name}")
            except LoadError as e:
                # Paths as the author knows them, not the bundle cache's.
                reason = e.reason.replace(f"{folder}/", f"plugins/{function.name}/")
                raise DeployError(function.name, reason) from e
            if code.function.name != function.name:
                code.purge()
                raise DeployError(
                    function.name,
                    f"PLUGIN_INFO name is {code.function.name!r}, not {function.name!r}",
                )
            problems = legacy.clashes(self.runtime.registry, [function], replaces={function.name})
            if problems:  # refused before its start() runs
                code.purge()
                raise DeployError(function.name, "; ".join(problems))
            instance = await self._launch(code)
            try:
                report = await self.runtime.swap(function, folder)
            except BaseException:
                await instance.stop(0)
                raise
            old = self.running.get(function.name)
            self.running[function.name] = instance
            if old is not None:
                report.drained, report.lost = await old.stop(self.runtime.settings.drain_timeout)
            report.swap_ms = round((time.perf_counter() - began) * 1000, 2)
            return report

    async def remove(self, name: str) -> SwapReport:
        """Stop routing to `name` and stop its instance, if it runs here."""
        async with self._lock:
            report = await self.runtime.remove(name)
            old = self.running.pop(name, None)
            if old is not None:
                report.drained, report.lost = await old.stop(self.runtime.settings.drain_timeout)
            return report

    async def stop(self) -> None:
        """Stop every instance; call after Runtime.stop, so no command is routed to them."""
        async with self._lock:
            running, self.running = self.running, {}
            timeout = self.runtime.settings.drain_timeout
            await asyncio.gather(*(i.stop(timeout) for i in running.values()))

    async def _launch(self, code: legacy.PluginCode) -> Instance:
        name = code.function.name
        bus = EventBus(
            self.runtime.bus.nc,
            group=f"rosey.{name}",
            drain_timeout=self.runtime.settings.drain_timeout,
        )
        instance = Instance(code, bus)
        try:
            async with asyncio.timeout(START_TIMEOUT):
                state = code.start(bus)
                instance.state = await state if asyncio.iscoroutine(state) else state
        except Exception as e:
            await bus.close()
            code.purge()
            detail = (
                "start() took too long"
                if isinstance(e, TimeoutError)
                else f"start() failed: {type(e).__name__}: {e}"
            )
            log.error("plugin %s: %s", name, detail, exc_info=not isinstance(e, TimeoutError))
            raise DeployError(name, detail) from e
        return instance

    def _folders(self, names: Sequence[str]) -> list[Path]:
        folders = []
        for name in names:
            folder = self.settings.dir / name
            if not (folder / "__init__.py").exists():
                raise ConfigError(
                    getattr(self.runtime.settings, "source", "rosey.yaml"),  # as the user named it
                    "plugins",
                    f"{name!r}: no plugin package {display_path(folder)}/__init__.py",
                )
            folders.append(folder)
        return folders


def _init(folder: Path) -> str:
    return f"{display_path(folder)}/__init__.py"
