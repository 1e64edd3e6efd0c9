"""NATS access: a thin JSON layer over nats-py, and the Binding that owns one subscription."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from runtime.config.settings import NatsSettings, nats_servers
from runtime.constants import SEND_CHAT, SEND_PM
from runtime.errors import BusError, ContractError
from runtime.wire import contract
from runtime.wire.natsauth import _Client, auth_options, check_credentials
from runtime.wire.scope import CURRENT

SAID = frozenset({SEND_CHAT, SEND_PM})  # what durable commands say goes through JetStream

log = logging.getLogger("rosey.bus")


MessageHandler = Callable[[Msg], Coroutine[Any, Any, None]]


async def _abandon(nc: Client) -> None:
    # nats-py keeps the socket of a refused first connection open; close it, or it leaks. Bounded:
    # nats-py has waited for ever on a stream that would never report closing.
    with contextlib.suppress(Exception):
        async with asyncio.timeout(2):
            await nc.close()


def _json_object(data: bytes) -> dict[str, Any] | None:
    """A reply's JSON object, or None for anything else (Rosey's payloads are all objects)."""
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    return value if isinstance(value, dict) else None


class Bus:
    """JSON publish, subscribe and request over one NATS connection; outbound payloads are checked."""

    def __init__(self, nc: Client) -> None:
        self.nc = nc

    @classmethod
    async def connect(
        cls,
        url: str,
        name: str = "rosey",
        timeout: float = 5.0,
        *,
        reconnect: bool = True,
        auth: NatsSettings | None = None,
    ) -> Bus:
        """Connect; `reconnect=False` for short-lived commands, which should give up, not wait."""

        try:
            check_credentials(auth)
            options = auth_options(auth)
            servers = nats_servers(url)  # a cluster: nats-py fails over between them
        except ValueError as e:
            raise BusError("connect", f"{url}: {e}") from e
        problems: list[Exception] = []
        nc = _Client()
        nc.require_tls = "tls" in options or any(u.startswith("tls://") for u in servers)

        async def on_error(e: Exception) -> None:
            problems.append(e)
            if reconnect:
                log.warning("NATS error: %s", e)

        async def on_disconnect() -> None:
            if reconnect and not (nc.is_closed or nc.is_draining):
                log.warning("NATS disconnected; reconnecting")

        async def on_reconnect() -> None:
            log.info("NATS reconnected to %s", nc.connected_url.netloc if nc.connected_url else url)

        try:
            # nats-py retries an unreachable server without end when reconnecting is on, also on
            # the first connect; a bound here turns that into a clear error.
            async with asyncio.timeout(timeout * 2 + 1):
                await nc.connect(
                    servers,
                    name=name,
                    connect_timeout=timeout,  # type: ignore[arg-type]  # floats work; stubs say int
                    allow_reconnect=reconnect,
                    # 0 would mean "no limit" to nats-py; 1 gives up after one try.
                    max_reconnect_attempts=-1 if reconnect else 1,
                    reconnect_time_wait=0.5,  # type: ignore[arg-type]
                    error_cb=on_error,
                    disconnected_cb=on_disconnect,
                    reconnected_cb=on_reconnect,
                    **options,
                )
        except TimeoutError as e:
            await _abandon(nc)
            last = f" (last error: {problems[-1]})" if problems else ""
            raise BusError("connect", f"{url}: no answer within {timeout * 2 + 1:g}s{last}") from e
        except Exception as e:
            await _abandon(nc)
            raise BusError("connect", f"{url}: {e or type(e).__name__}") from e
        return cls(nc)

    @property
    def connected(self) -> bool:
        return bool(self.nc.is_connected)

    async def publish(
        self, subject: str, payload: Any, reply: str = "", *, checked: bool = False
    ) -> None:
        """Publish JSON; the payload is checked against the contract unless `checked` says the
        caller built it from parts that were."""
        key = contract.spec_key(subject)
        if not checked:
            contract.check(subject, payload, key)
        plain = key in contract.PLAIN or (checked and key in contract.BUILT)
        data = contract.encode_plain(payload) if plain else contract.encode(payload)
        scope = CURRENT.get() if subject in SAID else None
        try:
            if scope is not None:
                # Said while handling a durable command: into JetStream under the command's id.
                await scope.say(subject, data)
            else:
                await self.nc.publish(subject, data, reply=reply)
        except Exception as e:  # nats-py's errors, and JetStream's while it is away
            raise BusError(f"publish to {subject}", str(e) or type(e).__name__) from e

    async def respond(self, msg: Msg, payload: Any, encoded: bytes | None = None) -> None:
        """Answer `msg`'s requester; `encoded`: the payload already encoded (by a caller that
        had to encode it to measure it)."""
        if not msg.reply:
            return
        try:
            await self.nc.publish(msg.reply, encoded or contract.encode(payload))
        except NatsError as e:
            raise BusError(f"reply on {msg.subject}", str(e) or type(e).__name__) from e

    async def request(self, subject: str, payload: Any, timeout: float = 5.0) -> Any:
        """Request/reply; the reply is decoded but not judged (callers read `success`)."""
        contract.check(subject, payload)
        try:
            msg = await self.nc.request(subject, contract.encode(payload), timeout=timeout)
        except NoRespondersError as e:
            raise BusError(f"request to {subject}", "no responders") from e
        except NatsTimeout as e:
            raise BusError(f"request to {subject}", f"no reply within {timeout:g}s") from e
        except NatsError as e:
            raise BusError(f"request to {subject}", str(e) or type(e).__name__) from e
        try:
            return contract.decode(subject, msg.data, key="reply")
        except ContractError as e:
            raise BusError(f"request to {subject}", f"bad reply: {e.problem}") from e

    async def gather(
        self,
        subject: str,
        payload: Any,
        window: float = 0.3,
        *,
        extend: bool = False,
        expected: int | None = None,
        checked: bool = False,
    ) -> list[dict[str, Any]]:
        """Scatter-gather: publish `payload` with a fresh inbox as its reply subject and collect
        the replies (decoded JSON objects) that come within `window` seconds of the publish.

        `extend` waits while answers keep coming: each new reply restarts the window, so this
        returns once `window` seconds pass without one. `expected` returns as soon as that many
        replies came. A reply that is not a JSON object is logged and skipped. The payload is
        checked against the contract unless `checked` (as for `publish`). The inbox subscription
        is always removed, also on error or cancellation."""
        if not checked:
            contract.check(subject, payload)
        replies: list[dict[str, Any]] = []
        arrived = asyncio.Event()

        async def collect(msg: Msg) -> None:
            reply = _json_object(msg.data)
            if reply is None:
                log.warning("skipped a malformed reply to %s: %.200r", subject, msg.data)
                return
            replies.append(reply)
            arrived.set()

        inbox = self.nc.new_inbox()
        try:
            subscription = await self.nc.subscribe(inbox, cb=collect)
        except NatsError as e:
            raise BusError(f"subscribe to {inbox}", str(e) or type(e).__name__) from e
        try:
            # The publish starts the client's flusher; no flush() to wait for: on Python 3.11 its
            # wait_for can swallow a cancellation that comes as the server's PONG does.
            await self.publish(subject, payload, reply=inbox, checked=True)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + window
            while expected is None or len(replies) < expected:
                arrived.clear()
                try:
                    async with asyncio.timeout_at(deadline):
                        await arrived.wait()
                except TimeoutError:
                    break
                if extend:
                    deadline = loop.time() + window
        finally:
            # The client forgets the subscription before it tells the server, so a failed or
            # interrupted unsubscribe leaves nothing behind here; a closed connection has none.
            with contextlib.suppress(NatsError):
                await subscription.unsubscribe()
        return list(replies)

    async def flush(self, timeout: float = 5.0) -> None:
        """Return once the server has everything sent before: see `settle`."""
        try:
            await settle(self.nc, timeout)
        except NatsError as e:
            raise BusError("flush", str(e) or type(e).__name__) from e

    async def close(self) -> None:
        if self.nc.is_closed:
            return
        try:
            await self.nc.drain()
        except NatsError:
            await self.nc.close()


class Binding:
    """Owns exactly one subscription; each message is handled in its own tracked task."""

    def __init__(self, bus: Bus, subject: str, handler: MessageHandler, queue: str = "") -> None:
        self.bus, self.subject, self.queue, self.handler = bus, subject, queue, handler
        self.subscription: Subscription | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.received = 0
        self.abandoned = 0  # cancelled because they outlived the drain timeout

    def __repr__(self) -> str:
        return f"Binding({self.subject!r}, queue={self.queue!r})"

    @property
    def busy(self) -> int:
        """Messages received but not finished, including those still queued in the client."""
        pending = self.subscription.pending_msgs if self.subscription else 0
        return len(self.tasks) + pending

    async def start(self) -> None:
        if self.subscription is not None:
            return
        try:
            self.subscription = await self.bus.nc.subscribe(
                self.subject, queue=self.queue, cb=self._dispatch
            )
            # Once start() returns the server knows the subscription, so nothing sent after is missed.
            await settle(self.bus.nc)
        except NatsError as e:
            raise BusError(f"subscribe to {self.subject}", str(e) or type(e).__name__) from e

    async def _dispatch(self, msg: Msg) -> None:
        # nats-py calls this one message at a time; a task per message lets invocations overlap.
        # The handler is the task itself (no wrapper coroutine): one task per message, its
        # failure logged when it ends.
        self.received += 1
        task = asyncio.create_task(self.handler(msg))
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if isinstance(error, Exception):
            log.error("unhandled error on %s", self.subject, exc_info=error)

    async def stop(self, timeout: float = 10.0) -> int:
        """Stop taking messages, finish those already received; returns how many were drained."""
        subscription, self.subscription = self.subscription, None
        drained = len(self.tasks)
        if subscription is not None:
            drained += subscription.pending_msgs
            try:
                await subscription.drain()
            except NatsError as e:
                log.warning("drain of %s failed: %s", self.subject, e)
        if self.tasks:
            _, late = await asyncio.wait(set(self.tasks), timeout=timeout)
            for task in late:
                task.cancel()
            self.abandoned += len(late)
        return drained


async def settle(nc: Client, timeout: float = 5.0) -> None:
    """Return once the server has processed every command `nc` sent before (a SUB above all).

    One `nc.flush()` does not prove it: nats-py writes its PING straight to the socket while
    SUB and PUB wait in its pending buffer for the flusher task, so the PONG can come back before
    a SUB that was sent first reached the server, and a request from another client right after
    finds no responder (about 1 in 100 tries here). By the second PING the flusher has written
    them: the second PONG comes after them.
    """
    for _ in range(2):
        await nc.flush(int(max(1, timeout)))


class Bindings(list[Binding]):
    """The bindings of one component, started all or none and stopped together."""

    async def start(self) -> None:
        started: list[Binding] = []
        try:
            for binding in self:
                await binding.start()
                started.append(binding)
        except BaseException:
            for binding in started:
                await binding.stop(0)
            raise

    async def stop(self, timeout: float = 10.0) -> int:
        """Stop all; returns how many received messages were drained."""
        return sum(await asyncio.gather(*(b.stop(timeout) for b in self)))

    @property
    def busy(self) -> int:
        return sum(b.busy for b in self)

    @property
    def abandoned(self) -> int:
        return sum(b.abandoned for b in self)
