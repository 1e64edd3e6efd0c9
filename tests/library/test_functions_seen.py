from functions import seen
from tests.fnkit import FakeCtx, ev
from tests.library.drive import AsyncDb, run


def test_seen_after_join_and_leave() -> None:
    ctx = FakeCtx(db=AsyncDb())
    assert run(seen.seen(ev("bob"), ctx)) == "amy: I have not seen bob."
    assert run(seen.on_join(ev(user="Bob", kind="event"), ctx)) is None
    assert run(seen.seen(ev("bob"), ctx)) == "Bob joined just now."
    run(seen.on_leave(ev(user="Bob", kind="event"), ctx))
    ctx.db.data["seen"]["bob"]["time"] -= 7200
    assert run(seen.seen(ev("@BOB"), ctx)) == "Bob left 2 hours ago."
    assert run(seen.seen(ev("amy"), ctx)) == "amy: I see you right now."
    assert run(seen.seen(ev(), ctx)) == "amy: usage is !seen <user>"


def test_greeting_set_used_and_removed() -> None:
    ctx = FakeCtx(db=AsyncDb())
    assert run(seen.greet(ev(), ctx)).startswith("amy: you have no greeting.")
    assert run(seen.greet(ev("hi", "{user}!"), ctx)) == "amy: greeting saved."
    assert run(seen.on_join(ev(user="amy", kind="event"), ctx)) == "hi amy!"
    assert run(seen.greet(ev("/kick", "x"), ctx)) == "amy: a greeting may not start with / or !"
    assert run(seen.greet(ev("x" * 201), ctx)) == "amy: a greeting may be at most 200 characters."
    assert run(seen.greet(ev("off"), ctx)) == "amy: greeting removed."
    assert run(seen.on_join(ev(user="amy", kind="event"), ctx)) is None


def test_ago() -> None:
    assert [seen.ago(s) for s in (5, 60, 3 * 3600, 86400)] == [
        "just now",
        "1 minute ago",
        "3 hours ago",
        "1 day ago",
    ]
