"""`rosey run`: embedded servers when none are configured, the runtime, and the chat source."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import sys
from functools import partial
from typing import Any, TextIO

from runtime.config.manifest import Function
from runtime.config.settings import Settings
from runtime.core.runtime import Runtime
from runtime.cytube.connector import Connector
from runtime.database.client import DatabaseClient
from runtime.database.service import DatabaseService
from runtime.database.store import Store
from runtime.deploy.service import DeployService
from runtime.deploy.versions import Versions
from runtime.errors import ConfigError, RoseyError
from runtime.host.console import Console
from runtime.host.instance import Instance, find, forget, nats_url, record, state_path
from runtime.host.servers import EmbeddedNats, EmbeddedRedis
from runtime.legacy.host import LegacyPlugins
from runtime.ops.enable import EnableService
from runtime.ops.logsetup import Redactor
from runtime.ops.operations import Operations, start_operations
from runtime.wire.bus import Bus

log = logging.getLogger("rosey.service")


async def serve(
    settings: Settings,
    rank: float = 0,
    user: str = "console",
    stdin: TextIO | None = None,
    console_chat: bool = True,
    worker: bool = False,
) -> int:
    """Run until a signal or, for console chat, the end of input. Returns the exit code.

    `worker` (`rosey worker`): serve functions only, on the NATS and Redis of the configuration
    or of the `rosey run` of this folder; no router, connector, console or legacy plugins.
    """
    nats_server: EmbeddedNats | None = None
    redis_server: EmbeddedRedis | None = None
    url, redis_url = settings.nats.url, settings.redis.url
    if worker:
        url, redis_url = _worker_urls(settings)
    elif (running := find(settings)) is not None:
        # A second `rosey run` here would take over the first one's embedded Redis and its record.
        raise ConfigError(
            str(state_path(settings)),
            "",
            f"Rosey is already running from this folder (pid {running.pid}); "
            "`rosey worker` adds a process that serves functions",
        )
    if not url:
        nats_server = EmbeddedNats(settings.data_dir / "nats")
        url = nats_server.start()  # on this thread: the kill-with-parent signal follows it
    bus: Bus | None = None
    runtime: Runtime | None = None
    console: Console | None = None
    connector: Connector | None = None
    versions: Versions | None = None
    deploy: DeployService | None = None
    store: Store | None = None
    database: DatabaseService | None = None
    plugins: LegacyPlugins | None = None
    operations: Operations | None = None
    enable: EnableService | None = None
    try:
        if not redis_url:
            redis_server = EmbeddedRedis(settings.data_dir / "redis")
            redis_url = redis_server.start()
        bus = await Bus.connect(
            url,
            name="rosey-runtime",
            timeout=settings.nats.connect_timeout,
            auth=None if nats_server else settings.nats,
        )
        redact = Redactor()  # a password inside a configured URL is not printed
        print(redact(f"rosey: NATS {url}{' (embedded)' if nats_server else ''}"), file=sys.stderr)
        print(
            redact(f"rosey: Redis {redis_url}{' (embedded)' if redis_server else ''}"),
            file=sys.stderr,
        )
        store = await Store.connect(redis_url, settings.redis.prefix)
        database = DatabaseService(bus, store)
        await database.start()
        runtime = Runtime(
            settings,
            bus,
            route=not worker,
            db=lambda f: DatabaseClient(bus, f.name, f.collections),
            redis=store.redis,
        )
        runtime.preparers.append(partial(declare_indexes, store))
        versions = Versions.connect(redis_url, keep=settings.deploy.keep_versions)
        token = settings.deploy.token or _running_token(settings, worker)
        deploy = DeployService(runtime, bus, token, versions, settings.deploy.ack_window)
        try:
            deployed, removed = await deploy.deployed()
        except RoseyError as e:
            log.error("cannot read deployed functions, serving those on disk: %s", e)
            deployed, removed = [], set()
        await runtime.start(deployed, removed)
        if not worker:
            plugins = LegacyPlugins(runtime)  # legacy plugin packages listed in plugins.enabled
            await plugins.start(deployed, removed)
        await deploy.start()
        enable = EnableService(runtime, bus, token)
        await enable.start()
        if runtime.router is not None:
            runtime.router.admin = enable.chat
        operations = await start_operations(settings, runtime, bus, redis_url)
        served = database.bindings
        operations.probes.database_operations = lambda: {
            b.subject.removeprefix("database."): b.received for b in served
        }
        if not worker:
            record(settings, Instance(url, redis_url, os.getpid(), token))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(stop.wait())]
        if worker:
            print(f"rosey: worker serving {len(runtime.invokers)} function(s)", file=sys.stderr)
        elif settings.cytube is not None:
            connector = Connector(settings.cytube, bus, redis_url)
            await connector.start()  # LoginError/ConnectorError: `rosey run` exits 1
            operations.probes.send_queue_depth = lambda: connector.queue.busy if connector else 0
            waiters.append(asyncio.ensure_future(connector.wait()))  # raises if it gives up later
        elif console_chat:
            console = Console(bus, user=user, rank=rank, channel=settings.channel)
            await console.start()
            settle = partial(runtime.quiesce, extra=lambda: busy(console, plugins))
            waiters.append(asyncio.ensure_future(console.read(stdin, settle)))
        done, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        for task in done:
            task.result()
        reason = "signal" if stop.is_set() else ("end of input" if console else "connector ended")
        if console is not None and not stop.is_set():
            # Let the answers to the last lines arrive before shutting down.
            await runtime.quiesce(extra=lambda: busy(console, plugins))
        await deploy.stop()
        await enable.stop()
        await runtime.stop(reason)
        if plugins is not None:
            await plugins.stop()  # after the runtime: nothing is routed to a stopped plugin
        if connector is not None:
            await connector.stop()
        return 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_signal_handler(sig)
        if console is not None:
            await console.stop()
        if connector is not None:
            await connector.stop()
        if deploy is not None:
            await deploy.stop()
        if enable is not None:
            await enable.stop()
        if operations is not None:
            await operations.stop()
        if runtime is not None and runtime.started_at:
            await runtime.stop("error")
        if plugins is not None:
            await plugins.stop()
        if database is not None:
            await database.stop(settings.drain_timeout)
        if bus is not None:
            await bus.close()
        if store is not None:
            await store.close()
        if versions is not None:
            await versions.close()
        forget(settings)
        if nats_server is not None:
            nats_server.stop()
        if redis_server is not None:
            redis_server.stop()


def _worker_urls(settings: Settings) -> tuple[str, str]:
    """A worker's NATS and Redis: configured, or those the `rosey run` of this folder recorded."""
    url = nats_url(settings)  # ConfigError naming the way out when there is none
    instance = find(settings)
    redis_url = settings.redis.url or (instance.redis_url if instance else None)
    if not redis_url:
        raise ConfigError("settings", "redis.url", "`rosey worker` needs Redis; set redis.url")
    return url, redis_url


def _running_token(settings: Settings, worker: bool) -> str:
    # A worker next to a `rosey run` with a generated token uses that one, so deploys reach it.
    instance = find(settings) if worker else None
    return instance.token if instance and instance.token else secrets.token_urlsafe(24)


def busy(console: Console | None, plugins: LegacyPlugins | None) -> int:
    return (console.busy if console else 0) + (plugins.busy if plugins else 0)


async def declare_indexes(store: Store, function: Function) -> None:
    for collection, fields in function.indexes.items():
        await store.declare_indexes(collection, list(fields))


async def invoke_once(
    settings: Settings, function: str, payload: dict[str, Any], timeout: float
) -> Any:
    """Start a private runtime on an embedded nats-server, send one command as a request, stop."""
    from runtime.constants import command_subject

    server = EmbeddedNats()
    url = server.start()
    bus = await Bus.connect(url, name="rosey-invoke")
    runtime = Runtime(settings, bus, route=False)
    try:
        await runtime.start()
        return await bus.request(command_subject(function), payload, timeout)
    finally:
        if runtime.started_at:
            await runtime.stop("invoke done")
        await bus.close()
        server.stop()
