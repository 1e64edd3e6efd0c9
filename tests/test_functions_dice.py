import random
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions import dice


def event(*args: str) -> SimpleNamespace:
    return SimpleNamespace(args=list(args), user="amy")


CTX = SimpleNamespace(config={"default": "1d6", "max_dice": 10, "max_sides": 100})


def test_roll_reply_shape() -> None:
    reply = dice.roll(event("2d6+3"), CTX)
    assert reply.startswith("amy rolled 2d6+3: [")
    shown, total = reply.split(": ", 1)[1].rsplit(" = ", 1)
    faces = [int(x) for x in shown.split("]")[0].strip("[").split(", ")]
    assert len(faces) == 2
    assert int(total) == sum(faces) + 3


def test_spaces_around_signs_are_fine() -> None:
    assert dice.roll(event("1d4", "+", "2"), CTX).startswith("amy rolled 1d4 + 2: [")


def test_default_expression() -> None:
    assert dice.roll(event(), CTX).startswith("amy rolled 1d6: [")


@pytest.mark.parametrize("expression", ["abc", "2d", "d1", "0d6", "2d6+", "11d6", "1d101", "2d6 3"])
def test_bad_expressions_get_a_clear_line(expression: str) -> None:
    reply = dice.roll(event(expression), CTX)
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
    assert dice.flip(event(), CTX) in ("amy flipped a coin: heads", "amy flipped a coin: tails")
