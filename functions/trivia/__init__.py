"""Trivia: `!trivia start [n] [category]`, answers in plain chat, `!trivia stop|skip|top`.

The game of a channel is one record of `trivia_games`; plain chat reaches `answer` through
ctx.listen while a question is open, and the end of the listening window is the question's
"time is up". Claims are atomic increments: the first correct answer wins (`win<k>` reaches 1
once), and each user's first line per question is their answer (`try<k>:<user>` reaches 1 once),
so several runtimes cannot both award one question. Scores are kept in `trivia_scores` with
atomic increments too. The handlers are async: ctx.db, ctx.listen and ctx.stop_listening are
awaited on the event loop, with no hop to a worker thread and back.
"""

from __future__ import annotations

import importlib
import random
import re
import time
import unicodedata
from typing import Any

# By full name: the runtime loads this package under a private name, where `from . import`
# cannot resolve its (unregistered) parent.
bank = importlib.import_module(f"{__name__}.bank")

GAMES = "trivia_games"
SCORES = "trivia_scores"
MAX_QUESTIONS = 20


def questions() -> list[dict[str, Any]]:
    return bank.QUESTIONS


def categories() -> list[str]:
    return sorted({q["category"] for q in questions()})


def normalize(text: str) -> str:
    """Lowercase, accents and punctuation off, leading articles dropped."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    text = re.sub(r"[^a-z0-9 ]+", " ", text)
    words = text.split()
    if len(words) > 1 and words[0] in ("the", "a", "an"):
        words = words[1:]
    return " ".join(words)


def distance(a: str, b: str) -> int:
    """Levenshtein distance."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def matches(guess: str, answers: list[str]) -> bool:
    """Forgiving: case, punctuation, articles, and a small typo (1 in 5+ letters, 2 in 9+)."""
    said = normalize(guess)
    for answer in answers:
        wanted = normalize(answer)
        allowed = 0 if len(wanted) < 5 or wanted.isdigit() else (1 if len(wanted) < 9 else 2)
        if said == wanted or (allowed and distance(said, wanted) <= allowed):
            return True
    return False


def points(difficulty: int, left: float, seconds: float) -> int:
    """10 per difficulty level, plus up to 10 for speed."""
    return 10 * difficulty + round(10 * max(0.0, min(1.0, left / seconds)))


def _key(event: Any) -> str:
    return event.channel or "-"


async def _ask(ctx: Any, game: dict[str, Any], index: int) -> str:
    q = questions()[game["order"][index]]
    now = time.time()
    await ctx.db.update(
        GAMES, game["id"], {"index": index, "asked": now, "deadline": now + game["seconds"]}
    )
    await ctx.listen(game["seconds"] + 1)
    return f"Q{index + 1}/{len(game['order'])} [{q['category']}, {'★' * q['difficulty']}]: {q['question']}"


async def _next(ctx: Any, game: dict[str, Any], lines: list[str]) -> list[str]:
    index = game["index"] + 1
    if index < len(game["order"]):
        return [*lines, await _ask(ctx, game, index)]
    return [*lines, *(await _finish(ctx, game))]


async def _finish(ctx: Any, game: dict[str, Any]) -> list[str]:
    await ctx.db.delete(GAMES, game["id"])
    await ctx.stop_listening()
    scores = sorted(game.get("scores", {}).items(), key=lambda kv: -kv[1])
    if not scores:
        return ["Trivia over. Nobody scored."]
    board = ", ".join(f"{user} {n}" for user, n in scores[:5])
    return [f"Trivia over! Scores: {board}."]


async def command(event: Any, ctx: Any) -> str | list[str]:
    args = [a.lower() for a in event.args]
    sub = args[0] if args else ""
    if sub == "start":
        return await _start(event, ctx, args[1:])
    if sub in ("stop", "skip"):
        game = await ctx.db.get(GAMES, _key(event))
        if game is None:
            return f"{event.user}: no trivia game is running."
        if event.rank < 2 and (event.user or "").lower() != game["starter"].lower():
            return f"{event.user}: only {game['starter']} or a moderator may {sub} the game."
        if sub == "stop":
            return await _finish(ctx, game)
        answer = questions()[game["order"][game["index"]]]["answers"][0]
        return await _next(ctx, game, [f"Skipped. The answer was {answer}."])
    if sub == "top":
        page = await ctx.db.query(SCORES, order_by="points DESC", limit=5)
        if not page.records:
            return "No trivia scores yet. Start a game with !trivia start"
        return "Trivia top: " + ", ".join(
            f"{i}. {r['user']} {r['points']}" for i, r in enumerate(page.records, 1)
        )
    if sub == "categories":
        return "Trivia categories: " + ", ".join(categories())
    return f"{event.user}: usage is !trivia start [n] [category], !trivia stop|skip|top|categories"


async def _start(event: Any, ctx: Any, args: list[str]) -> str | list[str]:
    count = int(ctx.config.get("default_questions", 5))
    category = None
    for word in args:
        if word.isdigit():
            count = int(word)
        elif word in categories():
            category = word
        else:
            return f"{event.user}: {word!r} is neither a number nor a category ({', '.join(categories())})."
    if not 1 <= count <= MAX_QUESTIONS:
        return f"{event.user}: a game has 1 to {MAX_QUESTIONS} questions."
    if await ctx.db.get(GAMES, _key(event)) is not None:
        return f"{event.user}: a game is already running; !trivia stop ends it."
    pool = [i for i, q in enumerate(questions()) if category in (None, q["category"])]
    game = {
        "starter": event.user,
        "order": random.sample(pool, min(count, len(pool))),
        "index": 0,
        "seconds": float(ctx.config.get("seconds", 30)),
        "scores": {},
    }
    await ctx.db.set(GAMES, _key(event), game)
    game["id"] = _key(event)
    about = f" about {category}" if category else ""
    return [
        f"Trivia{about}: {len(game['order'])} questions, answer in chat!",
        await _ask(ctx, game, 0),
    ]


async def answer(event: Any, ctx: Any) -> str | list[str] | None:
    """Plain chat while a question is open (kind `chat`), or its time running out (`expired`)."""
    game = await ctx.db.get(GAMES, _key(event))
    if game is None or "asked" not in game:
        return None
    index = game["index"]
    q = questions()[game["order"][index]]
    if event.kind == "expired":
        if time.time() < game["deadline"]:
            return None  # a window re-armed elsewhere; this expiry is stale
        return await _next(ctx, game, [f"Time's up! The answer was {q['answers'][0]}."])
    user = event.user or "?"
    tried = await ctx.db.update(GAMES, game["id"], inc={f"try{index}:{user.lower()}": 1})
    if tried is None or tried.get(f"try{index}:{user.lower()}", 0) != 1:
        return None  # one answer per user per question
    if not matches(event.raw_message or "", q["answers"]):
        return None
    claimed = await ctx.db.update(GAMES, game["id"], inc={f"win{index}": 1})
    if claimed is None or claimed.get(f"win{index}") != 1:
        return None  # someone was faster
    won = points(q["difficulty"], game["deadline"] - time.time(), game["seconds"])
    scores = dict(claimed.get("scores") or {})
    scores[user] = scores.get(user, 0) + won
    await ctx.db.update(GAMES, game["id"], {"scores": scores})
    if await ctx.db.update(SCORES, user.lower(), inc={"points": won, "correct": 1}) is None:
        await ctx.db.set(SCORES, user.lower(), {"user": user, "points": won, "correct": 1})
    game["scores"] = scores
    return await _next(ctx, game, [f"{user} got it: {q['answers'][0]} (+{won})."])
