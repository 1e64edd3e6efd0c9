"""A deploy's examples: each manifest example is run against the new version before it takes
traffic, without acting in the live channel."""

from __future__ import annotations

import re
from typing import Any

from runtime.config.manifest import example_words
from runtime.constants import ACTIONS, SEND_CHAT, SEND_EMOTE, SEND_PM, ErrorCode, command_subject
from runtime.core import delivery
from runtime.core.context import Context, Event
from runtime.errors import DeployError, RoseyError
from runtime.wire import contract


async def check_examples(invoker: Any) -> None:
    """Run `invoker`'s manifest examples; raises DeployError on a mismatch."""
    f = invoker.function
    for i, example in enumerate(f.examples):
        word, *args = example_words(example.input)
        route = invoker._command(word)
        event = Event(
            kind="command",
            subject=command_subject(f.name),
            command=route.name,
            args=tuple(args),
            user="example",
            rank=example.rank,
            raw_message=example.input,
        )
        said: list[str] = []

        async def capture(subject: str, payload: Any, said: list[str] = said) -> None:
            # Examples must not speak in the channel: what they send is captured instead.
            if subject in (SEND_CHAT, SEND_PM):
                said.append(payload["message"])

        async def request(subject: str, payload: Any, timeout: float) -> Any:
            # Nor act in it: channel actions are answered with a refusal the function sees as a
            # ChannelError; reads still go through.
            if subject in ACTIONS or subject == SEND_EMOTE:
                return contract.failure(
                    ErrorCode.PERMISSION_DENIED, "channel actions do not run in a deploy's examples"
                )
            return await invoker.bus.request(subject, payload, timeout)

        ctx = Context(f, event, capture, request, invoker.catalog, invoker.db, invoker.log)
        ctx.collected = said
        try:
            result = await invoker._run(
                invoker.code.handler(f.handler_for(route.name) or ""), event, ctx
            )
            await ctx.reply(delivery.chat_lines(f, result) or [])
        except RoseyError as e:
            raise DeployError(f.name, f"examples[{i}] {example.input!r}: {e}") from e
        reply = "\n".join(said)
        if not re.search(example.expect, reply):
            raise DeployError(
                f.name,
                f"examples[{i}] {example.input!r}: reply {reply!r} does not match {example.expect!r}",
            )
