"""trivia: matching, scoring and whole games (in-memory ctx, driving the async handlers)."""

import inspect
import random
from collections import Counter

from functions import trivia
from tests.fnkit import ev
from tests.library.drive import AsyncCtx, run

CONFIG = {"default_questions": 3, "seconds": 30}


def test_question_bank() -> None:
    bank = trivia.questions()
    assert len(bank) >= 200
    per = Counter(q["category"] for q in bank)
    assert len(per) >= 5 and min(per.values()) >= 20
    assert all(q["answers"] and q["difficulty"] in (1, 2, 3) for q in bank)


def test_forgiving_matching() -> None:
    assert trivia.matches("paris", ["Paris"])
    assert trivia.matches("  PARIS!! ", ["Paris"])
    assert trivia.matches("the beatles", ["Beatles"])
    assert trivia.matches("Kilimanjaro", ["Mount Kilimanjaro", "Kilimanjaro"])
    assert trivia.matches("kilimanjro", ["Kilimanjaro"])  # one letter off
    assert trivia.matches("Gabriel García Márquez", ["Gabriel Garcia Marquez"])
    assert not trivia.matches("1946", ["1945"])  # numbers are exact
    assert not trivia.matches("mars", ["Paris"])
    assert not trivia.matches("", ["Au"])


def test_points_by_difficulty_and_speed() -> None:
    assert trivia.points(1, 30, 30) == 20
    assert trivia.points(3, 15, 30) == 35
    assert trivia.points(2, -5, 30) == 20


def start(ctx: AsyncCtx, *args: str) -> list[str]:
    random.seed(7)
    reply = run(trivia.command(ev("start", *args), ctx))
    assert isinstance(reply, list)
    return reply


def current(ctx: AsyncCtx) -> dict:
    game = run(ctx.db.get("trivia_games", "test"))
    return trivia.questions()[game["order"][game["index"]]]


def test_a_game_from_start_to_leaderboard() -> None:
    ctx = AsyncCtx(CONFIG)
    lines = start(ctx, "2", "science")
    assert lines[0] == "Trivia about science: 2 questions, answer in chat!"
    assert lines[1].startswith("Q1/2 [science, ")
    assert ctx.listening == 31
    q = current(ctx)
    assert run(trivia.answer(ev(text="wrong answer", kind="chat", user="bob"), ctx)) is None
    # One answer per user per question: bob's right answer now does not count.
    assert run(trivia.answer(ev(text=q["answers"][0], kind="chat", user="bob"), ctx)) is None
    won = run(trivia.answer(ev(text=q["answers"][0].upper(), kind="chat", user="cy"), ctx))
    assert won[0].startswith(f"cy got it: {q['answers'][0]} (+") and won[1].startswith("Q2/2")
    # The game moved on: time running out on question 2 reveals it and ends the game.
    ctx.db.data["trivia_games"]["test"]["deadline"] = 0
    q2 = current(ctx)
    end = run(trivia.answer(ev(kind="expired"), ctx))
    assert end[0] == f"Time's up! The answer was {q2['answers'][0]}."
    assert end[1].startswith("Trivia over! Scores: cy ")
    assert ctx.listening is None and run(ctx.db.get("trivia_games", "test")) is None
    top = run(trivia.command(ev("top"), ctx))
    assert top.startswith("Trivia top: 1. cy ")
    assert run(ctx.db.get("trivia_scores", "cy"))["correct"] == 1


def test_stale_expiry_and_chat_without_game_are_ignored() -> None:
    ctx = AsyncCtx(CONFIG)
    assert run(trivia.answer(ev(text="x", kind="chat"), ctx)) is None
    start(ctx)
    assert run(trivia.answer(ev(kind="expired"), ctx)) is None  # deadline not reached


def test_stop_and_skip_need_the_starter_or_a_moderator() -> None:
    ctx = AsyncCtx(CONFIG)
    start(ctx)
    assert (
        run(trivia.command(ev("stop", user="bob"), ctx))
        == "bob: only amy or a moderator may stop the game."
    )
    q = current(ctx)
    skipped = run(trivia.command(ev("skip", user="mod", rank=2), ctx))
    assert skipped[0] == f"Skipped. The answer was {q['answers'][0]}." and skipped[1].startswith(
        "Q2/3"
    )
    assert (
        run(trivia.command(ev("start"), ctx))
        == "amy: a game is already running; !trivia stop ends it."
    )
    assert run(trivia.command(ev("stop"), ctx)) == ["Trivia over. Nobody scored."]
    assert run(trivia.command(ev("stop"), ctx)) == "amy: no trivia game is running."


def test_bad_input() -> None:
    ctx = AsyncCtx(CONFIG)
    assert run(trivia.command(ev(), ctx)).startswith("amy: usage is !trivia start")
    assert run(trivia.command(ev("start", "99"), ctx)) == "amy: a game has 1 to 20 questions."
    assert run(trivia.command(ev("start", "cooking"), ctx)).startswith(
        "amy: 'cooking' is neither a number nor a category"
    )
    assert (
        run(trivia.command(ev("top"), ctx))
        == "No trivia scores yet. Start a game with !trivia start"
    )
    assert run(trivia.command(ev("categories"), ctx)).startswith(
        "Trivia categories: general, geography"
    )


def test_a_deploy_bundles_the_question_bank() -> None:
    from runtime.core import bundle
    from tests.clitools import ROOT

    built = bundle.build(ROOT / "manifests" / "trivia.yaml", ROOT / "functions")
    assert {"trivia/__init__.py", "trivia/bank.py"} <= set(built.files)


def test_the_handlers_are_async() -> None:
    assert inspect.iscoroutinefunction(trivia.command)
    assert inspect.iscoroutinefunction(trivia.answer)
