"""What a handler receives: the Event it handles and the Context it acts through."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from runtime.config.manifest import Function
from runtime.constants import ACTIONS, SEND_CHAT, SEND_PM
from runtime.core.channel import Channel
from runtime.core.delivery import Budget
from runtime.core.registry import Route
from runtime.errors import StoreError, SubjectDenied

# schedule: a manifest schedule fired; chat/expired: a line or the end of a ctx.listen window.
Kind = Literal["command", "event", "request", "schedule", "chat", "expired"]


# Subjects ctx.publish and ctx.request refuse, by their first tokens (`*`: any one token). The
# database is reached through ctx.db, which holds the manifest's collections; deploys and resumes
# are for operators; chat lines and commands carry a user's rank, so only the connector and the
# router send them.
REFUSED: tuple[tuple[tuple[str, ...], str], ...] = (
    (("database",), "use ctx.db, which is limited to the collections the manifest declares"),
    (("rosey", "deploy"), "deploys are for operators (rosey deploy, rollback, remove)"),
    (("rosey", "enable"), "resuming a function is for moderators (!rosey enable)"),
    (("cytube", "chat"), "chat lines come from the CyTube connector only; use ctx.send_chat"),
    (("cytube", "pm"), "private messages come from the CyTube connector only; use ctx.send_pm"),
    (
        ("plugin", "*", "command"),
        "commands come from the router only; ask another function on plugin.<name>.request",
    ),
)
CHANNEL_MAX = 100  # contracts.json $defs/channel maxLength
# What NATS would not take as one subject to publish to: a wildcard, an empty token, or a space
# or control character (the protocol would read what follows as another argument).
_INVALID = re.compile(r"(?:^|\.)(?:\*|>)?(?:\.|$)|[\s\x00-\x1f\x7f]")


def check_subject(function: str, subject: str, actions: Collection[str] = ()) -> None:
    """Raise SubjectDenied unless a function may publish or request on `subject`; a channel
    action's subject (constants.ACTIONS) needs that action among the manifest's `actions`."""
    if not isinstance(subject, str) or _INVALID.search(subject):
        raise SubjectDenied(function, str(subject), "not a subject to publish to")
    tokens = subject.split(".")
    for prefix, reason in REFUSED:
        if len(tokens) >= len(prefix) and all(
            p in ("*", t) for p, t in zip(prefix, tokens, strict=False)
        ):
            raise SubjectDenied(function, subject, reason)
    action = ACTIONS.get(subject)
    if action is not None and action not in actions:
        raise SubjectDenied(function, subject, f"its manifest does not declare actions: [{action}]")


@dataclass(frozen=True)
class Event:
    """One invocation's input. `payload` is the NATS payload as received."""

    kind: Kind
    subject: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    command: str | None = None
    args: tuple[str, ...] = ()
    user: str | None = None
    rank: float = 0
    channel: str | None = None
    raw_message: str | None = None
    source: Literal["chat", "pm"] = "chat"
    id: str = ""  # correlation id, carried from the router to logs and activation records

    @property
    def text(self) -> str:
        """The arguments as the user typed them, after the command word."""
        return " ".join(self.args)


class Unavailable:
    """Stands in for ctx.db where no database service is configured."""

    def __getattr__(self, name: str) -> Any:
        raise StoreError(name, "the database is not available in this runtime")


class Listener(Protocol):
    """The listening windows of a runtime (runtime.core.listen.Listening), as a Context uses them."""

    async def listen(self, function: str, channel: str | None, seconds: float) -> float: ...

    async def stop(self, function: str) -> None: ...


Sender = Callable[[str, Any], Awaitable[None]]
Requester = Callable[[str, Any, float], Awaitable[Any]]
Log = logging.Logger | logging.LoggerAdapter[logging.Logger]


class Context:
    """What an async handler acts through. Replies go back where the command came from."""

    def __init__(
        self,
        function: Function,
        event: Event,
        publish: Sender,
        request: Requester,
        catalog: Callable[[], list[Route]] = list,
        db: Any = None,
        log: Log | None = None,
        listener: Listener | None = None,
        *,
        built: Sender | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        """`built` sends the chat lines this Context builds itself from checked parts, without
        checking them again (default `publish`). Without `log`, `ctx.log` is built on first use:
        `logger` (default rosey.fn.<name>) with the function, version and event id as extra."""
        self.function = function
        self.event = event
        self.config: Mapping[str, Any] = function.config
        self.db = db if db is not None else Unavailable()
        self._log, self._logger = log, logger
        self._publish, self._request, self._catalog = publish, request, catalog
        self._built = built or publish
        self._listener = listener
        self._channel: Channel | None = None
        # Set when the command came as a NATS request: replies are returned, not sent to chat.
        self.collected: list[str] | None = None
        # Why the function acted (ctx.explain): recorded in this invocation's activation record.
        self.reason = ""
        # What this invocation may still say, over reply, send_chat and send_pm together.
        self.budget = Budget.of(function)

    @property
    def log(self) -> Log:
        """The function's logger; its lines carry the function, version and correlation id."""
        if self._log is None:
            f = self.function
            logger = self._logger or logging.getLogger(f"rosey.fn.{f.name}")
            extra = {"function": f.name, "version": f.version, "id": self.event.id}
            self._log = logging.LoggerAdapter(logger, extra)
        return self._log

    @property
    def name(self) -> str:
        return self.function.name

    @property
    def version(self) -> str:
        return self.function.version

    def commands(self) -> list[Route]:
        """Every command the runtime routes (for help-like functions)."""
        return self._catalog()

    @property
    def channel(self) -> Channel:
        """The event's CyTube channel: playlist, polls, emotes, moderation and its state."""
        if self._channel is None:
            self._channel = Channel(self.function, self.event.channel, self._request)
        return self._channel

    def explain(self, reason: str) -> None:
        """Say why the function acted; kept as the `reason` of this invocation's activation
        record (the last one given counts)."""
        self.reason = str(reason)

    async def reply(self, text: str | list[str]) -> None:
        if self.collected is not None:
            self.collected.extend(self.budget.admit(lines(text)))
            return
        for line in lines(text):  # send_chat and send_pm draw each line on the budget
            if self.event.source == "pm" and self.event.user:
                await self.send_pm(self.event.user, line)
            else:
                await self.send_chat(line, self.event.channel)

    async def send_chat(self, text: str, channel: str | None = None) -> None:
        target = channel or self.event.channel
        # Lines are non-empty strings within the reply caps (at most a chat line's limit), so
        # the payload is valid unless the channel is not: only then is it checked again.
        send = self._built if target is None or _a_channel(target) else self._publish
        for line in self.budget.admit(lines(text)):
            payload: dict[str, Any] = {"message": line}
            if target:
                payload["channel"] = target
            await send(SEND_CHAT, payload)

    async def send_pm(self, user: str, text: str) -> None:
        for line in self.budget.admit(lines(text)):
            payload: dict[str, Any] = {"to": user, "message": line}
            if self.event.channel:
                payload["channel"] = self.event.channel
            await self._publish(SEND_PM, payload)

    async def publish(self, subject: str, data: Any) -> None:
        """Publish on a subject of NATS, except those in REFUSED and undeclared channel
        actions (SubjectDenied)."""
        check_subject(self.function.name, subject, self.function.actions)
        await self._publish(subject, data)

    async def request(self, subject: str, data: Any, timeout: float = 5.0) -> Any:
        """Ask on a subject of NATS and return the decoded reply, except on those in REFUSED
        and undeclared channel actions."""
        check_subject(self.function.name, subject, self.function.actions)
        return await self._request(subject, data, timeout)

    # Conversational games (runtime/listen.py): read plain chat of this channel for a while.

    async def listen(self, seconds: float) -> float:
        """Send plain chat lines to the manifest's listen handler for `seconds` (re-arms an
        open window); returns the seconds granted, 0 where there is nothing to listen to
        (a deploy's examples)."""
        if self._listener is None:
            return 0.0
        return await self._listener.listen(self.function.name, self.event.channel, seconds)

    async def stop_listening(self) -> None:
        if self._listener is not None:
            await self._listener.stop(self.function.name)


def _a_channel(value: Any) -> bool:
    """A channel name the contract takes (`$defs/channel`)."""
    return type(value) is str and len(value) <= CHANNEL_MAX


class SyncContext:
    """The same Context for sync handlers, which run in a worker thread: every call blocks."""

    def __init__(self, ctx: Context, loop: asyncio.AbstractEventLoop) -> None:
        self._ctx, self._loop = ctx, loop
        self.function, self.event, self.config = ctx.function, ctx.event, ctx.config
        self.db = _Blocking(ctx.db, loop)
        self._channel: _Blocking | None = None

    @property
    def log(self) -> Log:
        return self._ctx.log

    @property
    def name(self) -> str:
        return self._ctx.name

    @property
    def version(self) -> str:
        return self._ctx.version

    def commands(self) -> list[Route]:
        return self._ctx.commands()

    @property
    def channel(self) -> Any:
        """ctx.channel with every method blocking until the channel answered."""
        if self._channel is None:
            self._channel = _Blocking(self._ctx.channel, self._loop)
        return self._channel

    @property
    def reason(self) -> str:
        return self._ctx.reason

    def explain(self, reason: str) -> None:
        self._ctx.explain(reason)

    def _wait(self, awaitable: Awaitable[Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(_await(awaitable), self._loop).result()

    def reply(self, text: str | list[str]) -> None:
        self._wait(self._ctx.reply(text))

    def send_chat(self, text: str, channel: str | None = None) -> None:
        self._wait(self._ctx.send_chat(text, channel))

    def send_pm(self, user: str, text: str) -> None:
        self._wait(self._ctx.send_pm(user, text))

    def publish(self, subject: str, data: Any) -> None:
        check_subject(self.function.name, subject, self.function.actions)
        self._wait(self._ctx.publish(subject, data))

    def request(self, subject: str, data: Any, timeout: float = 5.0) -> Any:
        check_subject(self.function.name, subject, self.function.actions)
        return self._wait(self._ctx.request(subject, data, timeout))

    def listen(self, seconds: float) -> float:
        result: float = self._wait(self._ctx.listen(seconds))
        return result

    def stop_listening(self) -> None:
        self._wait(self._ctx.stop_listening())


class _Blocking:
    """Wraps an object with async methods so a worker thread can call them and wait."""

    def __init__(self, target: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._target, self._loop = target, loop

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            if asyncio.iscoroutine(result):
                return asyncio.run_coroutine_threadsafe(result, self._loop).result()
            return result

        return call


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def lines(text: str | list[str] | tuple[str, ...]) -> list[str]:
    """Chat lines: a list gives one line each, and a newline starts another line."""
    items = [text] if isinstance(text, str) else list(text)
    return [line for item in items for line in str(item).splitlines() if line.strip()]
