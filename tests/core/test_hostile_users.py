"""User names at the contract boundary, and input a handler cannot use (issue 14, hole 6).

Six `cytube.user.leave` events with a control character in the name used to make `seen` raise
(its record id refuses the name) and trip quarantine: anyone able to publish could pause `!seen`
for everyone. Names with control characters are now refused at the boundary, `seen` answers any
name the contract admits, and a failure that is the caller's fault (INVALID_INPUT) is not counted
towards quarantine.
"""

from __future__ import annotations

import json

import pytest

from runtime.core.runtime import Runtime
from runtime.database.client import DatabaseClient
from runtime.database.service import DatabaseService
from runtime.errors import ContractError
from runtime.wire import contract
from runtime.wire.bus import Bus
from tests.conftest import Chat, MakeRuntime
from tests.fnkit import library


async def ask(chat: Chat, text: str) -> str:
    before = len(chat.sent)
    await chat.say(text)
    return (await chat.lines(before + 1))[-1]


async def serve_seen(make_runtime: MakeRuntime, bus: Bus) -> Runtime:
    manifests, code = library("seen")
    manifests["seen"] += "quarantine: {failures: 3, window: 60}\n"
    return await make_runtime(
        manifests, code, db=lambda f: DatabaseClient(bus, f.name, f.collections)
    )


@pytest.mark.parametrize("name", ["bad\x07name", "tab\there", "nul\x00", "del\x7f"])
def test_names_with_control_characters_are_refused_at_the_boundary(name: str) -> None:
    with pytest.raises(ContractError) as refused:
        contract.decode("cytube.user.leave", json.dumps({"user": name}).encode())
    assert "without control characters" in str(refused.value)
    assert contract.decode("cytube.user.leave", b'{"user": "Zoe-99"}') == {"user": "Zoe-99"}


async def test_leave_events_with_hostile_names_do_not_pause_seen(
    make_runtime: MakeRuntime, bus: Bus, chat: Chat, database: DatabaseService
) -> None:
    runtime = await serve_seen(make_runtime, bus)
    for i in range(6):
        await bus.nc.publish("cytube.user.leave", json.dumps({"user": f"x\x07{i}"}).encode())
    # Names the contract admits, however odd, are recorded.
    for odd in ("ÄÖÜ-ß", "名前", "a" * 100, "[server]"):
        await bus.publish("cytube.user.leave", {"user": odd})
    await chat.settle(runtime)
    invoker = runtime.invokers["seen"]
    assert not invoker.breaker.paused
    assert invoker.stats.errors == 0
    assert await ask(chat, "!seen 名前") == "名前 left just now."


async def test_a_name_seen_cannot_use_is_answered_and_not_counted(
    make_runtime: MakeRuntime, bus: Bus, chat: Chat, database: DatabaseService
) -> None:
    runtime = await serve_seen(make_runtime, bus)
    for _ in range(4):
        assert await ask(chat, "!seen " + "b" * 300) == "alice: I have not seen that user."
    assert not runtime.invokers["seen"].breaker.paused


INPUT = {
    "picky": """
    name: picky
    version: "1.0.0"
    description: Refuses input it cannot use.
    handler: picky:run
    collections: [notes]
    quarantine: {failures: 2, window: 60}
    commands:
      picky: {}
      note: {handler: "picky:note"}
    """
}
INPUT_CODE = {
    "picky.py": """
    from rosey import InvalidInput

    def run(event, ctx):
        if not event.text.isdigit():
            raise InvalidInput("picky wants a number.")
        return event.text

    async def note(event, ctx):
        # A record id the database refuses (control character): the caller's fault.
        return str(await ctx.db.get("notes", event.text + "\\x01"))
    """
}


async def test_invalid_input_is_the_callers_fault_not_the_functions(
    make_runtime: MakeRuntime, bus: Bus, chat: Chat, database: DatabaseService
) -> None:
    seen: list[str] = []
    runtime = await make_runtime(
        INPUT,
        INPUT_CODE,
        db=lambda f: DatabaseClient(bus, f.name, f.collections),
        observers=(lambda a: seen.append(a.outcome),),
    )
    for _ in range(4):
        assert await ask(chat, "!picky abc") == "picky wants a number."
        assert await ask(chat, "!note x") == "Sorry, note cannot use that input."
    assert await ask(chat, "!picky 42") == "42"
    invoker = runtime.invokers["picky"]
    assert not invoker.breaker.paused
    assert (invoker.stats.invalid, invoker.stats.errors) == (8, 0)
    assert seen.count("invalid") == 8
    reply = await bus.request(
        "plugin.picky.command", {"command": "picky", "args": ["x"], "user": "u", "rank": 0}, 5
    )
    assert (reply["success"], reply["error_code"], reply["error"]) == (
        False,
        "INVALID_INPUT",
        "picky wants a number.",
    )
