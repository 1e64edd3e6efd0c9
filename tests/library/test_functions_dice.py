import random
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions import dice
from tests.library.drive import run


def event(*args: str) -> SimpleNamespace:
    return SimpleNamespace(args=list(args), user="amy")


CTX = SimpleNamespace(config={"default": "1d6", "max_dice": 10, "max_sides": 100})


def test_roll_reply_shape() -> None:
    reply = run(dice.roll(event("2d6+3"), CTX))
    assert reply.startswith("amy rolled 2d6+3: [")
    shown, total = reply.split(": ", 1)[1].rsplit(" = ", 1)
    faces = [int(x) for x in shown.split("]")[0].strip("[").split(", ")]
    assert len(faces) == 2
    assert int(total) == sum(faces) + 3


def test_spaces_around_signs_are_fine() -> None:
    assert run(dice.roll(event("1d4", "+", "2"), CTX)).startswith("amy rolled 1d4 + 2: [")


def test_default_expression() -> None:
    assert run(dice.roll(event(), CTX)).startswith("amy rolled 1d6: [")


@pytest.mark.parametrize("expression", ["abc", "2d", "d1", "0d6", "2d6+", "11d6", "1d101", "2d6 3"])
def test_bad_expressions_get_a_clear_line(expression: str) -> None:
    reply = run(dice.roll(event(expression), CTX))
    assert reply.startswith("amy: ")
    assert "rolled" not in reply


def test_several_groups_and_constants() -> None:
    total, shown = dice.roll_expression("1d20+1d4-2", random.Random(1))
    groups = [int(x) for part in shown.split("]")[:2] for x in part.split("[")[1].split(", ")]
    assert total == groups[0] + groups[1] - 2
    assert shown.endswith("-2")


@given(st.integers(1, 20), st.integers(2, 100), st.integers(-50, 50))
def test_total_within_bounds(count: int, sides: int, k: int) -> None:
    expression = f"{count}d{sides}{k:+d}"
    total, _ = dice.roll_expression(expression, random.Random(0))
    assert count + k <= total <= count * sides + k


def test_flip() -> None:
    assert run(dice.flip(event(), CTX)) in (
        "amy flipped a coin: heads",
        "amy flipped a coin: tails",
    )


@pytest.mark.parametrize(
    ("expression", "dice_shown", "dropped"),
    [
        ("4d6kh3", 4, 1),
        ("4d6dl1", 4, 1),
        ("4d6kl1", 4, 3),
        ("4d6dh2", 4, 2),
        ("adv", 2, 1),
        ("dis", 2, 1),
    ],
)
def test_keep_drop_and_advantage(expression: str, dice_shown: int, dropped: int) -> None:
    total, shown = dice.roll_expression(expression, random.Random(3))
    faces = shown.strip("[]").split(", ")
    assert len(faces) == dice_shown
    assert sum(f.startswith("(") for f in faces) == dropped
    assert total == sum(int(f) for f in faces if not f.startswith("("))


def test_keep_highest_keeps_the_highest() -> None:
    for seed in range(20):
        total, shown = dice.roll_expression("4d6kh3", random.Random(seed))
        faces = sorted(int(f.strip("()")) for f in shown.strip("[]").split(", "))
        assert total == sum(faces[1:])


def test_several_groups_show_each_die() -> None:
    reply = run(dice.roll(event("1d20+1d4+2"), CTX))
    assert (
        reply.startswith("amy rolled 1d20+1d4+2: [")
        and "] +[" in reply
        and reply.split(" = ")[0].endswith("+2")
    )


@pytest.mark.parametrize(
    ("expression", "line"),
    [
        ("999999d999999", "amy: at most 10 dice of at most 100 sides"),
        ("9" * 40 + "d6", "amy: at most 10 dice of at most 100 sides"),
        ("4d6kh5", "amy: cannot keep 5 of 4 dice"),
        ("4d6d4", "amy: cannot drop 4 of 4 dice"),
        ("x" * 300, "amy: that is too long; at most 200 characters"),
    ],
)
def test_limits_have_a_clear_message(expression: str, line: str) -> None:
    assert run(dice.roll(event(expression), CTX)) == line
