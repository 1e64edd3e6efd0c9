"""`rosey run` and `rosey worker`: the composition root.

Embedded servers when none are configured, then every component built with its collaborators
and started in order on one AsyncExitStack, which stops each of them exactly once, in reverse
order, whatever happens: chat sources first, the runtime before the legacy plugins it routes to,
the NATS connection and the servers last.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import sys
import tempfile
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, TextIO

from runtime.config import manifest
from runtime.config.keys import Namespace
from runtime.config.manifest import Function
from runtime.config.settings import Settings
from runtime.core.runtime import Runtime, Wiring
from runtime.cytube.connector import Connector
from runtime.database.client import DatabaseClient
from runtime.database.service import DatabaseService
from runtime.database.store import Store, open_client
from runtime.deploy.service import DeployService
from runtime.deploy.versions import Versions
from runtime.errors import ConfigError, RoseyError
from runtime.host.console import Console
from runtime.host.durability import check_fsync
from runtime.host.instance import Instance, find, forget, nats_url, record, state_path
from runtime.host.servers import EmbeddedNats, EmbeddedRedis
from runtime.isolation.host import isolator
from runtime.legacy.host import LegacyPlugins
from runtime.ops.enable import EnableService
from runtime.ops.logsetup import Redactor
from runtime.ops.operations import Operations
from runtime.process import Watchdog
from runtime.web.app import Console as WebConsole
from runtime.web.model import Sources
from runtime.wire.bus import Bus
from runtime.wire.streams import ensure_streams

log = logging.getLogger("rosey.service")


@dataclass
class _Ending:
    """Why serving ended, for the runtime's shutdown announcement; and the watchdog that ends
    the process if its shutdown outlives drain_timeout + 1 s, whatever functions do."""

    reason: str = "error"
    watchdog: Watchdog | None = None

    def arm(self, seconds: float) -> None:
        self.watchdog = Watchdog(seconds, "shutdown", asyncio.get_running_loop())

    def disarm(self) -> None:
        if self.watchdog is not None:
            self.watchdog.cancel()


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
    ending = _Ending()
    keys = Namespace(settings.redis.prefix)  # every Redis key the runtime writes, under one prefix
    settings.check(plugins=not worker)  # a bad setting stops Rosey before any server starts
    async with AsyncExitStack() as stack:
        stack.callback(ending.disarm)  # last: the shutdown is over
        url, redis_url = await _servers(stack, settings, worker)
        bus = await Bus.connect(
            url,
            name="rosey-runtime",
            timeout=settings.nats.connect_timeout,
            auth=settings.nats if settings.nats.url or worker else None,
        )
        stack.push_async_callback(bus.close)
        redis = await open_client(redis_url)  # the one Redis pool of this process
        stack.push_async_callback(redis.aclose)  # after every user of it has stopped
        await check_fsync(redis, settings.redis.fsync, settings.source)
        if settings.delivery.mode == "durable":  # ConfigError naming the way out without JetStream
            await ensure_streams(bus, settings.delivery, settings.source)
        store = Store(redis, keys, settings.database.scan_limit)
        versions = Versions(redis, keys, keep=settings.deploy.keep_versions)
        database = DatabaseService(bus, store)
        stack.push_async_callback(database.stop, settings.drain_timeout)
        await database.start()

        token = settings.deploy.token or _running_token(settings, worker)
        operations = Operations(settings, bus, redis, keys)
        stack.push_async_callback(operations.stop)
        enable = EnableService(bus, token)
        durable = settings.delivery.mode == "durable"
        runtime = Runtime(
            settings,
            bus,
            # Durable: every process takes chat lines from the stream, and runs what it has room
            # for; at-most-once: `rosey run` routes, workers take forwarded commands.
            route=durable or not worker,
            wiring=Wiring(
                db=lambda f: DatabaseClient(bus, f.name, f.collections),
                redis=redis,
                keys=keys,
                observers=operations.observers,
                preparers=(partial(declare_indexes, store),),
                swap_hooks=(operations.follow,),
                admin=enable.chat,
                isolate=isolator(settings.isolation, settings.log_level),
                delivery=settings.delivery if durable else None,
            ),
        )
        connector = None
        if settings.cytube is not None and not worker:
            connector = Connector(settings.cytube, bus, redis, keys, delivery=settings.delivery)
            stack.push_async_callback(connector.stop)  # after the runtime: the last answers go out
        plugins = LegacyPlugins(runtime, settings.plugins)
        stack.push_async_callback(plugins.stop)  # after the runtime: nothing routes to them then
        stack.push_async_callback(_stop_runtime, runtime, ending)
        deploy = DeployService(
            runtime, bus, token, versions, settings.deploy.ack_window, plugins=plugins
        )
        await _start(runtime, deploy, plugins, worker)
        stack.push_async_callback(enable.stop)
        await enable.start(runtime)
        stack.push_async_callback(deploy.stop)
        await deploy.start()
        if settings.console.enabled and not worker:  # the web console, on the HTTP server
            sources = Sources(settings, bus, runtime, deploy, enable, token, redis, keys, versions)
            sources.operations, sources.plugins = operations, plugins
            operations.http.extensions.append(WebConsole(sources).install)
        await operations.start(runtime)
        http = operations.http.url if operations.http.running else ""
        served = database.bindings
        operations.probes.database_operations = lambda: {
            b.subject.removeprefix("database."): b.received for b in served
        }
        if not worker:
            record(settings, Instance(url, redis_url, os.getpid(), token, http))
            stack.callback(forget, settings)
        if http:  # once recorded: the line tells that commands of this folder can find it
            print(f"rosey: HTTP {http} (/healthz, /readyz, /metrics)", file=sys.stderr)
            if settings.console.enabled and not worker:
                print(f"rosey: console {http}/ (`rosey console` opens it)", file=sys.stderr)
        try:
            await _run(
                stack,
                settings,
                bus,
                runtime,
                plugins,
                connector,
                operations,
                ending,
                worker=worker,
                console_chat=console_chat,
                user=user,
                rank=rank,
                stdin=stdin,
            )
        finally:
            ending.arm(settings.drain_timeout + 1.0)  # the stack unwinds from here
    return 0


async def _servers(stack: AsyncExitStack, settings: Settings, worker: bool) -> tuple[str, str]:
    """The NATS and Redis to use: configured, the `rosey run` of this folder's (for a worker),
    or embedded ones started here (and stopped last)."""
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
    redact = Redactor()  # a password inside a configured URL is not printed
    if not url:
        # JetStream's file store under data_dir: durable delivery keeps lines across restarts.
        nats_server = EmbeddedNats(
            settings.data_dir / "nats", jetstream=settings.delivery.mode == "durable"
        )
        url = nats_server.start()  # on this thread: the kill-with-parent signal follows it
        stack.callback(nats_server.stop)
        print(f"rosey: NATS {url} (embedded)", file=sys.stderr)
    else:
        print(redact(f"rosey: NATS {url}"), file=sys.stderr)
    if not redis_url:
        redis_server = EmbeddedRedis(settings.data_dir / "redis", fsync=settings.redis.fsync)
        redis_url = redis_server.start()
        stack.callback(redis_server.stop)
        print(f"rosey: Redis {redis_url} (embedded)", file=sys.stderr)
    else:
        print(redact(f"rosey: Redis {redis_url}"), file=sys.stderr)
    return url, redis_url


async def _start(
    runtime: Runtime, deploy: DeployService, plugins: LegacyPlugins, worker: bool
) -> None:
    """Serve what earlier deploys left in Redis, else what is on disk; then the legacy plugins."""
    try:
        deployed, removed = await deploy.deployed()
    except RoseyError as e:
        log.error("cannot read deployed functions, serving those on disk: %s", e)
        deployed, removed = [], set()
    on_disk = manifest.read_dir(runtime.settings.manifests_dir)  # each file read once
    await runtime.start(deploy.choose(on_disk, deployed, removed))
    if not worker:  # legacy plugin packages listed in plugins.enabled
        deploy.record(await plugins.start(deployed, removed))


async def _run(
    stack: AsyncExitStack,
    settings: Settings,
    bus: Bus,
    runtime: Runtime,
    plugins: LegacyPlugins,
    connector: Connector | None,
    operations: Operations,
    ending: _Ending,
    *,
    worker: bool,
    console_chat: bool,
    user: str,
    rank: float,
    stdin: TextIO | None,
) -> None:
    """Serve until a signal, the end of console input or the connector giving up."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
        stack.callback(loop.remove_signal_handler, sig)
    waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(stop.wait())]
    console: Console | None = None
    if worker:
        print(f"rosey: worker serving {len(runtime.invokers)} function(s)", file=sys.stderr)
    elif connector is not None:
        await connector.start()  # LoginError/ConnectorError: `rosey run` exits 1
        operations.probes.send_queue_depth = lambda: connector.queue.busy
        waiters.append(asyncio.ensure_future(connector.wait()))  # raises if it gives up later
    elif console_chat:
        console = Console(bus, user=user, rank=rank, channel=settings.channel, offline_channel=True)
        stack.push_async_callback(console.stop)
        await console.start()
        settle = partial(runtime.quiesce, extra=lambda: busy(console, plugins))
        waiters.append(asyncio.ensure_future(console.read(stdin, settle)))
    try:
        done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waiters:
            task.cancel()
    for task in done:
        task.result()
    ending.reason = (
        "signal" if stop.is_set() else ("end of input" if console else "connector ended")
    )
    if console is not None and not stop.is_set():
        # Let the answers to the last lines arrive before shutting down.
        await runtime.quiesce(extra=lambda: busy(console, plugins))


async def _stop_runtime(runtime: Runtime, ending: _Ending) -> None:
    if runtime.started_at:
        await runtime.stop(ending.reason)


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


async def _throwaway_database(
    stack: AsyncExitStack, settings: Settings, bus: Bus, wiring: Wiring
) -> Wiring:
    """`database.*` for `rosey invoke`: a redis-server in a temporary folder, gone afterwards."""
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rosey-invoke-")))
    redis_server = EmbeddedRedis(folder)
    redis_url = redis_server.start()
    stack.callback(redis_server.stop)
    redis = await open_client(redis_url)
    stack.push_async_callback(redis.aclose)
    store = Store(redis, Namespace(settings.redis.prefix), settings.database.scan_limit)
    database = DatabaseService(bus, store)
    stack.push_async_callback(database.stop, settings.drain_timeout)
    await database.start()
    return replace(
        wiring,
        db=lambda f: DatabaseClient(bus, f.name, f.collections),
        preparers=(partial(declare_indexes, store),),
    )


async def invoke_once(
    settings: Settings, function: str, payload: dict[str, Any], timeout: float
) -> Any:
    """Start a private runtime on an embedded nats-server, send one command as a request, stop.
    A function with `collections` gets a throwaway database (an embedded redis-server in a
    temporary folder). A local channel model answers ctx.channel; what the bot did there comes
    first in the replies (`* rosey queued <title>`) and in `data.actions`."""
    from runtime.constants import command_subject
    from runtime.host.localchannel import LocalChannel

    functions = manifest.load_dir(settings.manifests_dir)
    async with AsyncExitStack() as stack:
        server = EmbeddedNats()
        url = server.start()
        stack.callback(server.stop)
        bus = await Bus.connect(url, name="rosey-invoke")
        stack.push_async_callback(bus.close)
        wiring = Wiring(isolate=isolator(settings.isolation, settings.log_level))
        if any(f.collections for f in functions if f.name == function):
            wiring = await _throwaway_database(stack, settings, bus, wiring)
        runtime = Runtime(settings, bus, functions, route=False, wiring=wiring)
        stack.push_async_callback(_stop_runtime, runtime, _Ending("invoke done"))
        did: list[str] = []
        person = {"name": payload.get("user", "console"), "rank": payload.get("rank", 0)}
        local = LocalChannel(
            bus, payload.get("channel") or settings.channel, lambda: [person], did.append
        )
        stack.push_async_callback(local.stop)
        await local.start()
        await runtime.start()
        reply = await bus.request(command_subject(function), payload, timeout)
        # A handler's plain publishes (no reply to wait for) reach the model before it is read.
        await runtime.quiesce(timeout=2.0, extra=lambda: local.busy)
        data = reply.get("data") if isinstance(reply, dict) else None
        if did and isinstance(data, dict):
            data["actions"] = list(did)
            data["replies"] = [*did, *data.get("replies", [])]
        return reply
