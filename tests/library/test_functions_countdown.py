"""countdown: parsing times, and the async command and tick handlers against an in-memory ctx."""

from __future__ import annotations

import inspect
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from functions import countdown
from tests.fnkit import ev
from tests.library.drive import AsyncCtx, run

# Wednesday 2030-01-02 12:00 UTC
NOW = datetime(2030, 1, 2, 12, 0, tzinfo=ZoneInfo("UTC")).timestamp()


def test_parse_when() -> None:
    assert countdown.parse_when(["90m"], NOW) == (NOW + 5400, None)
    assert countdown.parse_when(["2h30m"], NOW) == (NOW + 9000, None)
    assert countdown.parse_when(["20:00"], NOW) == (NOW + 8 * 3600, None)
    assert countdown.parse_when(["11:00"], NOW) == (NOW + 23 * 3600, None)
    assert countdown.parse_when(["friday", "20:00"], NOW) == (NOW + 2 * 86400 + 8 * 3600, None)
    assert countdown.parse_when(["every", "friday", "20:00"], NOW) == (
        NOW + 2 * 86400 + 8 * 3600,
        "0 20 * * fri",
    )
    target, _ = countdown.parse_when(["2030-01-03", "18:00"], NOW)
    assert target == NOW + 30 * 3600
    london, _ = countdown.parse_when(["2030-07-01", "12:00"], NOW, "Europe/London")
    assert datetime.fromtimestamp(london, ZoneInfo("UTC")).hour == 11


@pytest.mark.parametrize(
    "words",
    [["soon"], ["25:00"], ["2020-01-01"], ["every", "2030-01-01"], ["every", "20:00"], ["0m"]],
)
def test_parse_when_refuses(words: list[str]) -> None:
    with pytest.raises(countdown.CountdownError):
        countdown.parse_when(words, NOW)


def test_commands_and_ticks(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [NOW]
    monkeypatch.setattr(countdown.time, "time", lambda: clock[0])
    ctx = AsyncCtx({"alerts": [600, 60]})
    assert run(countdown.command(ev("party", "2h"), ctx)) == "Countdown party set: 2h to go."
    assert (
        run(countdown.command(ev("movie", "every", "friday", "20:00"), ctx))
        == "Countdown movie set: 2d 8h to go and repeats."
    )
    assert run(countdown.command(ev("party"), ctx)) == "party: 2h to go."
    assert (
        run(countdown.command(ev("list"), ctx))
        == "Countdowns: party in 2h; movie in 2d 8h (repeats)"
    )
    run(countdown.tick(ev(kind="schedule"), ctx))
    assert ctx.sent == []
    clock[0] = NOW + 2 * 3600 - 300
    run(countdown.tick(ev(kind="schedule"), ctx))
    run(countdown.tick(ev(kind="schedule"), ctx))  # each alert once
    assert ctx.sent == [("party in 5m!", "test")]
    clock[0] = NOW + 2 * 3600 + 5
    run(countdown.tick(ev(kind="schedule"), ctx))
    assert ctx.sent[-1] == ("⏰ party is now!", "test")
    assert run(countdown.command(ev("party"), ctx)).startswith("amy: usage is !countdown")
    clock[0] = NOW + 2 * 86400 + 8 * 3600 + 1
    run(countdown.tick(ev(kind="schedule"), ctx))
    assert ctx.sent[-1] == ("⏰ movie is now!", "test")
    assert run(countdown.command(ev("movie"), ctx)) == "movie: 6d 23h 59m to go."


def test_cancel_and_bad_input() -> None:
    ctx = AsyncCtx()
    assert run(countdown.command(ev(), ctx)).startswith("amy: usage is !countdown")
    assert run(countdown.command(ev("x", "soon"), ctx)) == "amy: 'soon' is not a weekday"
    assert run(countdown.command(ev("bad name!", "1h"), ctx)).startswith("amy: a countdown name is")
    assert run(countdown.command(ev("cancel"), ctx)) == "amy: usage is !countdown cancel <name>"
    assert run(countdown.command(ev("cancel", "nope"), ctx)) == "amy: there is no countdown 'nope'."
    run(countdown.command(ev("party", "1h"), ctx))
    assert (
        run(countdown.command(ev("cancel", "party", user="bob"), ctx))
        == "bob: only amy or a moderator may cancel party."
    )
    assert (
        run(countdown.command(ev("cancel", "party", user="mod", rank=2), ctx))
        == "Countdown party cancelled."
    )
    assert run(countdown.command(ev("list"), ctx)).startswith("No countdowns.")


def test_handlers_are_coroutine_functions() -> None:
    assert inspect.iscoroutinefunction(countdown.command)
    assert inspect.iscoroutinefunction(countdown.tick)
