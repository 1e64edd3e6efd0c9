"""The CyTube connector: the one part of Rosey that speaks socket.io (see docs/cytube.md)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from nats.aio.msg import Msg
from redis.asyncio import Redis

from runtime.config.keys import DEFAULT_NAMESPACE, Namespace
from runtime.config.settings import CytubeSettings, DeliverySettings
from runtime.constants import CHAT, PM, SEND_CHAT, SEND_PM
from runtime.cytube.actions import Actions
from runtime.cytube.durable import DurableLines
from runtime.cytube.events import ChannelState
from runtime.cytube.lease import Lease, make_lease
from runtime.cytube.sendqueue import Outgoing, Refused, SendQueue, TokenBucket, prepare
from runtime.cytube.session import IP_LIMIT_DELAY, KICK_DELAY, Ended, Session, discover
from runtime.errors import ConfigError, ConnectorError, ContractError, LoginError, RoseyError
from runtime.tasks import halt_all
from runtime.wire import contract
from runtime.wire.bus import Binding, Bus
from runtime.wire.intake import Intake

log = logging.getLogger("rosey.cytube")

CONNECTION = "cytube.connection"
SEND_FAILED = "cytube.send.failed"

_NAME = re.compile(r"^[\w-]{1,20}$")
_CHANNEL = re.compile(r"^[\w-]{1,30}$")

# The server's per-IP connection bucket: 5 at once, then one every 10 s. Rosey keeps one in
# reserve, and waits at least that long before the fourth try in a row.
CONNECT_BURST, CONNECT_RATE = 4, 0.1


def _validate(s: CytubeSettings) -> None:
    if not s.url.startswith(("http://", "https://")):
        raise ConfigError("settings", "cytube.url", f"expected an http(s):// URL, got {s.url!r}")
    if not _CHANNEL.match(s.channel):
        raise ConfigError("settings", "cytube.channel", "expected 1-30 of a-z, 0-9, _ and -")
    if not _NAME.match(s.username):
        raise ConfigError("settings", "cytube.username", "expected 1-20 of a-z, 0-9, _ and -")
    if s.throttle_burst < 1 or s.throttle_rate <= 0:
        raise ConfigError("settings", "cytube.throttle_*", "burst must be ≥ 1 and rate > 0")
    if s.message_limit < 20:
        raise ConfigError("settings", "cytube.message_limit", "must be at least 20")
    if s.action_timeout <= 0 or s.add_timeout <= 0:
        raise ConfigError("settings", "cytube.action_timeout", "timeouts must be > 0")


class Connector:
    """Joins one CyTube channel and bridges it to NATS; only the lease holder connects."""

    def __init__(
        self,
        settings: CytubeSettings,
        bus: Bus,
        redis: Redis | None = None,
        keys: Namespace = DEFAULT_NAMESPACE,
        *,
        lease: Lease | None = None,
        delivery: DeliverySettings | None = None,
    ) -> None:
        """The lease is under `keys` in `redis`, the process's client (closed by its owner).
        Without Redis this process alone serves the channel. With `delivery` in durable mode,
        chat lines go to JetStream and lines to say come from it (runtime/cytube/durable.py)."""
        _validate(settings)
        self.settings, self.bus, self.channel = settings, bus, settings.channel
        self.server = urlsplit(settings.url).netloc
        self.lease = lease or make_lease(redis, keys, self.server, self.channel, settings.lease_ttl)
        self.chan = ChannelState(self.channel)
        self.queue = SendQueue(
            self,
            self._report,
            burst=settings.throttle_burst,
            rate=settings.throttle_rate,
            size=settings.send_queue_size,
            max_wait=settings.send_max_wait,
            retries=settings.send_retries,
        )
        self.actions = Actions(self, bus)
        self.durable = (
            DurableLines(bus, delivery, self._on_send)
            if delivery is not None and delivery.mode == "durable"
            else None
        )
        sending: list[Binding | Intake] = (
            [self.durable.intake]
            if self.durable is not None
            else [Binding(bus, SEND_CHAT, self._on_send), Binding(bus, SEND_PM, self._on_send)]
        )
        self.bindings = [*sending, *self.actions.bindings()]
        self.state = "stopped"
        self.error: ConnectorError | None = None
        self.logins = 0
        self._current: Session | None = None
        self._ready = asyncio.Event()
        self._interrupt = asyncio.Event()  # stop() or a lost lease
        self._finished = asyncio.Event()
        self._stopping = self._lease_lost = False
        self._first: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._connects = TokenBucket(CONNECT_BURST, CONNECT_RATE)

    # Life.

    async def start(self) -> None:
        """Returns once the bot is in the channel, on standby behind another process's lease, or
        after a first failure worth retrying (retries go on in the background). Raises
        ConnectorError (LoginError for bad credentials) when the channel cannot be served."""
        self._first = asyncio.get_running_loop().create_future()
        if self.durable is not None:
            await self.durable.publisher.start()
        self._task = asyncio.create_task(self._run(), name=f"cytube-{self.channel}")
        try:
            await self._first
        except ConnectorError:
            await self._task
            raise

    async def stop(self) -> None:
        self._stopping = True
        self._interrupt.set()
        await self._disconnect()
        if self._task is not None:
            await self._task
        if self.durable is not None:
            await self.durable.publisher.stop()  # what CyTube said before the end, into JetStream

    async def wait(self) -> None:
        """Returns when the connector has stopped; raises the error that stopped it, if any."""
        await self._finished.wait()
        if self.error is not None:
            raise self.error

    @property
    def busy(self) -> int:
        return self.queue.busy + sum(b.busy for b in self.bindings)

    def _resolve_first(self, error: ConnectorError | None = None) -> None:
        if self._first is None or self._first.done():
            return
        if error is None:
            self._first.set_result(None)
        else:
            self._first.set_exception(error)

    async def _run(self) -> None:
        try:
            while not self._stopping:
                self._interrupt.clear()
                if await self._acquire():
                    await self._hold()
                else:
                    self._resolve_first()
                    await self._pause(self.settings.lease_ttl / 3)
        except ConnectorError as e:
            self.error = e
            log.error("%s", e)
            await self._publish_state("failed", e.problem)
            self._resolve_first(e)
        except Exception as e:
            log.exception("connector for %s crashed", self.channel)
            self.error = ConnectorError(self.channel, f"internal error: {e!r}")
            await self._publish_state("failed", str(e))
            self._resolve_first(self.error)
        finally:
            if self.error is None:
                await self._publish_state("stopped")
            self._finished.set()
            self._resolve_first()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._interrupt.wait(), seconds)

    async def _acquire(self) -> bool:
        try:
            if await self.lease.acquire():
                return True
            holder = await self.lease.holder()
        except ConnectorError as e:
            log.warning("%s", e)
            holder = None
        if self.state != "standby":
            log.info("%s is served by %s; this process serves functions only", self.channel, holder)
            await self._publish_state("standby", f"held by {holder}" if holder else "")
        return False

    async def _hold(self) -> None:
        self._lease_lost = False
        tasks = [asyncio.create_task(self._renew()), asyncio.create_task(self.queue.run())]
        reason = "the connector stopped"
        try:
            for binding in self.bindings:
                await binding.start()
            await self._connect_loop()
            if self._lease_lost:
                reason = "this process lost the channel lease"
        finally:
            for binding in self.bindings:
                await binding.stop(1.0)
            await halt_all(tasks)
            await self.queue.fail_all("stopped", reason)
            if not self._lease_lost:
                with contextlib.suppress(ConnectorError):
                    await self.lease.release()

    async def _renew(self) -> None:
        ttl = self.settings.lease_ttl
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(ttl / 3)
            try:
                if await self.lease.renew():
                    renewed = time.monotonic()
                    continue
                problem = "another process holds it now"
            except ConnectorError as e:
                if time.monotonic() - renewed < ttl * 2 / 3:
                    log.warning("%s; retrying", e)
                    continue
                problem = e.problem
            log.error("lost the lease on %s (%s); disconnecting", self.channel, problem)
            self._lease_lost = True
            self._interrupt.set()
            await self._disconnect()
            return

    async def _connect_loop(self) -> None:
        attempt = 0
        while not self._interrupt.is_set():
            await self._publish_state("connecting")
            try:
                ended = await self._session()
            except ConnectorError as e:
                if e.fatal:
                    raise
                ended = Ended(e.problem, False, KICK_DELAY if isinstance(e, LoginError) else 0)
            if self._interrupt.is_set():
                return
            if ended.ready:
                attempt = 0
            if ended.park:
                log.error(
                    "%s on %s: another client uses the account %r; not reconnecting"
                    " (restart Rosey to take it back)",
                    ended.reason,
                    self.channel,
                    self.settings.username,
                )
                await self._publish_state("parked", ended.reason)
                self._resolve_first()
                await self._interrupt.wait()
                return
            delay = self._backoff(attempt, ended.min_delay)
            attempt += 1
            log.warning("%s: %s; reconnecting in %.1fs", self.channel, ended.reason, delay)
            await self._publish_state("disconnected", ended.reason, delay)
            self._resolve_first()
            await self._pause(delay)

    def _backoff(self, attempt: int, at_least: float) -> float:
        delay = min(self.settings.reconnect_max_delay, self.settings.reconnect_delay * 2**attempt)
        if attempt >= 3:
            delay = max(delay, IP_LIMIT_DELAY)
        return max(delay, at_least, self._connects.delay())

    async def _disconnect(self) -> None:
        if self._current is not None:
            await self._current.close()

    async def _session(self) -> Ended:
        endpoint = await discover(self.settings)
        if self._interrupt.is_set():
            return Ended("stopped", False)  # stop() came during discovery: do not connect
        self._connects.take()
        session = Session(
            self.settings,
            self.chan,
            self.queue,
            self._ready,
            self._publish,
            self._on_ready,
            self.actions.observe,
        )
        self._current = session
        try:
            return await session.run(endpoint)
        finally:
            self._current = None
            self.actions.lost()

    async def _on_ready(self) -> None:
        self.logins += 1
        log.info("joined %s as %s (rank %g)", self.channel, self.chan.me, self.chan.rank)
        await self._publish_state("connected")
        self._resolve_first()

    # The send queue's view of the connection (sendqueue.Link).

    async def wait_ready(self) -> None:
        await self._ready.wait()

    def connected(self) -> bool:
        return self._ready.is_set() and self._current is not None

    async def emit_event(
        self, event: str, data: Any = None, ack: Callable[[str, Any], None] | None = None
    ) -> None:
        if self._current is None:
            raise ConnectionError("not connected")
        await self._current.emit_event(event, data, ack)

    def refusal(self, item: Outgoing) -> tuple[str, str] | None:
        if item.kind == "pm" and item.to is not None:
            if self.chan.is_me(item.to):
                return "refused", "the bot cannot PM itself"
            if not self.chan.present(item.to):
                return "not_in_channel", f"{item.to} is not in {self.channel}"
        if item.kind in ("chat", "command") and not self.chan.may_chat():
            need = self.chan.permissions.get("chat", 0)
            return (
                "rank",
                f"the channel lets rank {need:g} chat; the bot has rank {self.chan.rank:g}",
            )
        return None

    async def emit(self, item: Outgoing) -> None:
        if self._current is None:
            raise ConnectionError("not connected")
        await self._current.emit(item)

    # NATS.

    async def _on_send(self, msg: Msg) -> None:
        try:
            payload = contract.decode(msg.subject, msg.data)
        except ContractError as e:
            log.warning("ignored a malformed message: %s", e)
            return
        channel = payload.get("channel")
        if channel and channel.lower() != self.channel.lower():
            log.debug("%s is for channel %r, not %r", msg.subject, channel, self.channel)
            return
        try:
            items = prepare(msg.subject, payload, self.settings.message_limit)
        except Refused as e:
            await self._report(
                Outgoing("", payload["message"], msg.subject, payload), e.code, e.reason
            )
            return
        if not self.queue.put(items):
            reason = f"the send queue is full ({self.settings.send_queue_size} lines)"
            await self._report(items[0], "queue_full", reason)

    async def _report(self, item: Outgoing, code: str, reason: str) -> None:
        log.warning("not sent to %s (%s): %r: %s", item.to or self.channel, code, item.text, reason)
        failed: dict[str, Any] = {
            "subject": item.subject,
            "message": item.payload["message"],
            "code": code,
            "reason": reason,
            "channel": self.channel,
        }
        if item.to:
            failed["to"] = item.to
        if item.parts > 1:
            failed.update(part=item.part, parts=item.parts)
        await self._publish(SEND_FAILED, failed)

    async def _publish_state(self, state: str, reason: str = "", retry_in: float = 0) -> None:
        self.state = state
        payload: dict[str, Any] = {
            "state": state,
            "channel": self.channel,
            "user": self.chan.me or self.settings.username,
            "time": int(time.time() * 1000),
        }
        if reason:
            payload["reason"] = reason
        if retry_in:
            payload["retry_in"] = round(retry_in, 3)
        await self._publish(CONNECTION, payload)

    async def _publish(self, subject: str, payload: dict[str, Any]) -> None:
        try:
            if self.durable is not None and subject in (CHAT, PM):
                self.durable.publish(subject, payload)
                return
            await self.bus.publish(subject, payload)
        except RoseyError as e:
            log.warning("could not publish %s: %s", subject, e)
