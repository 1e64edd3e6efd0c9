"""Magic 8-ball: `!8ball <question>` gives one of the classic twenty answers."""

from __future__ import annotations

import random
from typing import Any

ANSWERS = (
    "It is certain.",
    "It is decidedly so.",
    "Without a doubt.",
    "Yes definitely.",
    "You may rely on it.",
    "As I see it, yes.",
    "Most likely.",
    "Outlook good.",
    "Yes.",
    "Signs point to yes.",
    "Reply hazy, try again.",
    "Ask again later.",
    "Better not tell you now.",
    "Cannot predict now.",
    "Concentrate and ask again.",
    "Don't count on it.",
    "My reply is no.",
    "My sources say no.",
    "Outlook not so good.",
    "Very doubtful.",
)


# Async although it never awaits: it only computes, so it runs on the event loop (no thread).
async def ask(event: Any, ctx: Any) -> str:
    if not event.args:
        return f"{event.user}: ask the 8-ball a yes/no question, as in !8ball will it rain?"
    return f"{event.user}: 🎱 {random.choice(ANSWERS)}"
