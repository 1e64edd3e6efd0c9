"""Answers: what a handler's return value becomes, within the manifest's reply caps.

Every invocation gets a Budget (manifest `reply: {max_lines, max_chars}`) that its return value
and every ctx.reply, ctx.send_chat and ctx.send_pm draw on together; past it the answer is cut
short with one `REPLY_CUT` line, so a function cannot flood the channel's send queue. What cannot
be delivered (a return value of the wrong type, a request's reply NATS would not carry) is the
function's failure, raised as an InvocationError, so that the user hears of it and the activation
record and quarantine count it like any other failure.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from nats.aio.msg import Msg

from runtime.config.manifest import Function
from runtime.constants import MAX_REPLY_CHARS, ROUTED_REPLY
from runtime.errors import (
    BusError,
    ContractError,
    InvalidInput,
    InvocationError,
    InvocationTimeout,
)
from runtime.wire.bus import Bus

REPLY_CUT = "… (reply cut short)"

# What a handler may return, by the kind of event it handles.
CHAT_RESULT = "str, a list of str or None"
REQUEST_RESULT = "a JSON value (dict, list, str, number, bool) or None"


class Budget:
    """What one invocation may still say: lines and characters, counted over all its replies."""

    def __init__(self, max_lines: int, max_chars: int) -> None:
        self.max_lines, self.max_chars = max_lines, min(max_chars, MAX_REPLY_CHARS)
        self.lines = self.chars = 0  # said
        self.offered_lines = self.offered_chars = 0  # asked to say
        self.cut = False

    @classmethod
    def of(cls, function: Function) -> Budget:
        return cls(function.reply_lines, function.reply_chars)

    def admit(self, lines: list[str]) -> list[str]:
        """The lines to send of `lines`: all while the budget lasts, then one line cut to the
        characters left and REPLY_CUT once; nothing after that."""
        out: list[str] = []
        for line in lines:
            self.offered_lines += 1
            self.offered_chars += len(line)
            if self.cut:
                continue
            room = self.max_chars - self.chars
            if self.lines >= self.max_lines or room <= 0:
                self.cut = True
                out.append(REPLY_CUT)
                continue
            if len(line) > room:
                line = line[: room - 1] + "…"
                self.cut = True
            self.lines += 1
            self.chars += len(line)
            out.append(line)
            if self.cut:
                out.append(REPLY_CUT)
        return out

    def summary(self) -> str:
        """For the author's log: what was asked for and what the caps let through."""
        return (
            f"reply cut short: it had {self.offered_lines} lines, {self.offered_chars} characters; "
            f"{self.lines} lines, {self.chars} characters were sent (the manifest's "
            f"reply.max_lines is {self.max_lines}, reply.max_chars {self.max_chars})"
        )


def chat_lines(function: Function, result: Any) -> list[str] | None:
    """A command's, event's or schedule's return value as chat text (None: say nothing);
    anything else is the function's failure."""
    if result is None:
        return None
    if isinstance(result, str):
        return [result]
    if isinstance(result, list | tuple) and all(isinstance(item, str) for item in result):
        return list(result)
    if isinstance(result, list | tuple):
        wrong = next(item for item in result if not isinstance(item, str))
        found = f"a list holding {type(wrong).__name__}"
    else:
        found = type(result).__name__
    raise InvocationError(
        function.name, function.version, f"returned {found}; it must return {CHAT_RESULT}"
    )


async def respond(bus: Bus, msg: Msg, function: Function, reply: dict[str, Any]) -> None:
    """Answer a requester; a reply that is not JSON or over NATS's max_payload is the function's
    failure (raised before anything is sent, so the requester gets that failure instead)."""
    try:
        encoded = json.dumps(
            reply, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode()
    except (TypeError, ValueError, RecursionError) as e:
        raise InvocationError(
            function.name, function.version, f"returned a reply that is not JSON ({e})"
        ) from e
    size, limit = len(encoded), bus.nc.max_payload
    if limit and size > limit:
        raise InvocationError(
            function.name,
            function.version,
            f"returned a reply of {size} bytes, over NATS's max_payload of {limit}",
        )
    await bus.respond(msg, reply, encoded)  # measured as sent: encoded once


async def send(
    say: Callable[[list[str]], Awaitable[None]], function: Function, lines: list[str]
) -> None:
    """Say lines through `say` (ctx.reply); a line the contract refuses is the function's
    failure."""
    try:
        await say(lines)
    except ContractError as e:
        raise InvocationError(function.name, function.version, f"its reply was refused: {e}") from e


# Failures of a handler that ran: its cooldown stands.
RAN = (InvocationError, InvocationTimeout, BusError)


def requester(msg: Msg) -> bool:
    """A command sent as a NATS request (not routed from chat): its replies are returned."""
    return bool(msg.reply) and not routed(msg)


def routed(msg: Msg) -> bool:
    return bool(msg.reply) and msg.reply.startswith(ROUTED_REPLY + ".")


def invalid_line(command: str | None, name: str, error: InvocationError) -> str:
    """One short line: the author's own words when they raised InvalidInput, else a generic one."""
    cause = error.__cause__
    if isinstance(cause, InvalidInput):
        return cause.reason
    return f"Sorry, {command or name} cannot use that input."
