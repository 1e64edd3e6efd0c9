"""Each shipped function answers lines piped into `rosey run` (console chat)."""

from pathlib import Path

from tests.clitools import rosey

LINES = [
    "!roll 4d6kh3",
    "!flip",
    "!8ball will it work?",
    "!fortune",
    "!addquote hello from the console",
    "!quotesearch nothing-matches-this",
    "!seen bob",
    "!countdown party 2h",
    "!trivia categories",
    "!help",
    "/rank 2",
    "!delquote abc",
    "!greet hi {user}",
    "!stats",
]


def test_every_function_answers_in_rosey_run(project: Path) -> None:
    result = rosey(project, "run", stdin="\n".join(LINES) + "\n", timeout=60)
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    expected = [
        "rosey: console rolled 4d6kh3: [",
        "rosey: console flipped a coin: ",
        "rosey: console: 🎱 ",
        "rosey: console's fortune: ",
        "rosey: Quote #",
        "rosey: console: no quote matches 'nothing-matches-this'.",
        "rosey: console: I have not seen bob.",
        "rosey: Countdown party set: 2h to go.",
        "rosey: Trivia categories: general, geography, history, movies, music, science, sports",
        "rosey: Commands: !8ball !addquote !countdown ",
        "rosey: console: usage is !delquote <id>, with the quote's number.",
        "rosey: console: greeting saved.",
        "rosey: Served ",
    ]
    for start in expected:
        assert any(line.startswith(start) for line in out), f"{start!r} not in {result.stdout}"
