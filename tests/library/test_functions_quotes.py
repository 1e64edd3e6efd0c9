from functions import quotes
from tests.fnkit import FakeCtx, ev
from tests.library.drive import AsyncDb, run


def test_add_show_search_delete() -> None:
    ctx = FakeCtx(db=AsyncDb())
    assert run(quotes.quote(ev(), ctx)) == "No quotes yet; add one with !addquote <text>"
    assert run(quotes.add(ev("Hello", "World"), ctx)) == "Quote #1 added."
    assert run(quotes.add(ev("another", "one"), ctx)) == "Quote #2 added."
    record = run(ctx.db.get("quotes", 1))
    assert record["author"] == "amy" and record["time"] > 0
    assert run(quotes.quote(ev("1"), ctx)) == "Quote #1: Hello World (added by amy)"
    assert run(quotes.quote(ev("#2"), ctx)) == "Quote #2: another one (added by amy)"
    assert run(quotes.quote(ev("world"), ctx)) == "Quote #1: Hello World (added by amy)"
    assert run(quotes.quote(ev("random"), ctx)).startswith("Quote #")
    assert run(quotes.search(ev("ONE", "anoth"), ctx)) == ["Quote #2: another one (added by amy)"]
    assert run(quotes.search(ev("zzz"), ctx)) == "amy: no quote matches 'zzz'."
    assert run(quotes.delete(ev("1"), ctx)) == "Quote #1 deleted."
    assert run(quotes.quote(ev("1"), ctx)) == "amy: there is no quote #1."
    assert run(quotes.delete(ev("1"), ctx)) == "amy: there is no quote #1."


def test_bad_input() -> None:
    ctx = FakeCtx(db=AsyncDb())
    assert run(quotes.add(ev(), ctx)) == "amy: usage is !addquote <text>"
    assert run(quotes.add(ev("x" * 401), ctx)) == "amy: a quote may be at most 400 characters."
    assert (
        run(quotes.delete(ev("abc"), ctx))
        == "amy: usage is !delquote <id>, with the quote's number."
    )
    assert run(quotes.delete(ev(), ctx)) == "amy: usage is !delquote <id>, with the quote's number."
    assert run(quotes.search(ev(), ctx)) == "amy: usage is !quotesearch <words>"
    assert run(quotes.quote(ev("nothing", "here"), ctx)) == "amy: no quote matches 'nothing here'."
