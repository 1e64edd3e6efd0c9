"""Dice: `!roll NdM+K` and `!flip`."""

from __future__ import annotations

import random
import re
from typing import Any

_TERM = re.compile(r"([+-]?)\s*(?:(\d*)d(\d+)|(\d+))", re.IGNORECASE)


class DiceError(ValueError):
    pass


def parse(
    expression: str, max_dice: int = 100, max_sides: int = 1000
) -> list[tuple[int, int, int]]:
    """`2d6+1` → [(sign, count, sides), ...]; a constant K is (sign, K, 0)."""
    text = re.sub(r"\s*([+-])\s*", r"\1", expression.strip()).lower()
    if not text:
        raise DiceError("nothing to roll")
    if any(c.isspace() for c in text):
        raise DiceError(f"cannot read {expression!r}; join groups with + or -, as in 1d20+1d4")
    terms: list[tuple[int, int, int]] = []
    pos = 0
    total_dice = 0
    while pos < len(text):
        match = _TERM.match(text, pos)
        if not match or match.end() == pos or (terms and not match.group(1)):
            raise DiceError(f"cannot read {expression!r}; try 2d6+1")
        sign = -1 if match.group(1) == "-" else 1
        if match.group(3):
            count, sides = int(match.group(2) or 1), int(match.group(3))
            if count < 1 or sides < 2:
                raise DiceError("dice need at least 1 die and 2 sides")
            total_dice += count
            if total_dice > max_dice or sides > max_sides:
                raise DiceError(f"at most {max_dice} dice of at most {max_sides} sides")
            terms.append((sign, count, sides))
        else:
            terms.append((sign, int(match.group(4)), 0))
        pos = match.end()
    return terms


def roll_expression(expression: str, rng: random.Random, **limits: int) -> tuple[int, str]:
    parts: list[str] = []
    total = 0
    for sign, count, sides in parse(expression, **limits):
        prefix = "-" if sign < 0 else ("+" if parts else "")
        if sides == 0:
            total += sign * count
            parts.append(f"{prefix}{count}")
        else:
            dice = [rng.randint(1, sides) for _ in range(count)]
            total += sign * sum(dice)
            parts.append(f"{prefix}[{', '.join(map(str, dice))}]")
    return total, " ".join(parts)


def roll(event: Any, ctx: Any) -> str:
    expression = " ".join(event.args) or ctx.config.get("default", "1d6")
    limits = {k: int(ctx.config[k]) for k in ("max_dice", "max_sides") if k in ctx.config}
    try:
        total, shown = roll_expression(expression, random.Random(), **limits)
    except DiceError as e:
        return f"{event.user}: {e}"
    return f"{event.user} rolled {expression}: {shown} = {total}"


def flip(event: Any, ctx: Any) -> str:
    return f"{event.user} flipped a coin: {random.choice(['heads', 'tails'])}"
