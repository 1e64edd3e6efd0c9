"""Help: the commands the asking user may run, generated from the manifests."""

from __future__ import annotations

from typing import Any

from runtime.core.permissions import rank_name


# Async although it never awaits: it only reads the routing table (ctx.commands() is not a
# coroutine), so it runs on the event loop instead of in a worker thread.
async def show(event: Any, ctx: Any) -> str | list[str]:
    prefix = ctx.config.get("prefix", "!")
    routes = [r for r in ctx.commands() if event.rank >= r.command.rank]
    if event.args:
        word = event.args[0].lstrip(prefix).lower()
        match = next(
            (r for r in ctx.commands() if word == r.command.name or word in r.command.aliases), None
        )
        if match is None or event.rank < match.command.rank:
            return f"{event.user}: no command {prefix}{word} that you can run."
        command = match.command
        usage = command.usage or f"{prefix}{command.name}"
        aliases = (
            f" (also {', '.join(prefix + a for a in command.aliases)})" if command.aliases else ""
        )
        text = f"{usage}{aliases}"
        text = f"{text}: {command.help}" if command.help else text
        return text + _limits(command)
    names = " ".join(prefix + r.command.name for r in routes)
    return f"Commands: {names}. Try {prefix}help <command>."


def _limits(command: Any) -> str:
    """The rank a command needs and its cooldown, when they are worth saying."""
    notes = []
    if command.rank > 0:
        notes.append(f"{rank_name(command.rank)} and up")
    if command.cooldown > 0:
        per = {"channel": " per channel", "global": " for everyone"}.get(command.cooldown_per, "")
        notes.append(f"once every {command.cooldown:g}s{per}")
    return f" ({'; '.join(notes)})" if notes else ""
