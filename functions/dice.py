"""Dice: `!roll` with NdM, +/-K, keep/drop (4d6kh3, 4d6dl1), adv/dis, several groups; `!flip`."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

# A group: NdM with an optional keep/drop suffix (k = kh, d = dl), or a constant.
_TERM = re.compile(r"([+-]?)(?:(\d*)d(\d+)(?:(kh|kl|dh|dl|k|d)(\d+))?|(\d+))", re.IGNORECASE)
_WORDS = {"adv": "2d20kh1", "advantage": "2d20kh1", "dis": "2d20kl1", "disadvantage": "2d20kl1"}
_MAX_DIGITS = 6  # bigger numbers are over any limit; refusing early keeps int() cheap
_MAX_LENGTH = 200
# One generator for every roll: seeding a new one from the OS costs more than the roll itself.
_RANDOM = random.Random()


class DiceError(ValueError):
    pass


@dataclass(frozen=True)
class Group:
    sign: int
    count: int  # the constant itself when sides == 0
    sides: int = 0
    keep: str = ""  # kh, kl, dh or dl
    amount: int = 0


def parse(expression: str, max_dice: int = 100, max_sides: int = 1000) -> list[Group]:
    """`4d6kh3+1d4-2` → groups; every problem is a DiceError with a line for the user."""
    if len(expression) > _MAX_LENGTH:
        raise DiceError(f"that is too long; at most {_MAX_LENGTH} characters")
    text = re.sub(r"\s*([+-])\s*", r"\1", expression.strip()).lower()
    text = re.sub(r"[a-z]+", lambda m: _WORDS.get(m.group(0), m.group(0)), text)
    if not text:
        raise DiceError("nothing to roll")
    if any(c.isspace() for c in text):
        raise DiceError(f"cannot read {expression!r}; join groups with + or -, as in 1d20+1d4")
    groups: list[Group] = []
    pos = total_dice = 0
    limit = f"at most {max_dice} dice of at most {max_sides} sides"
    while pos < len(text):
        match = _TERM.match(text, pos)
        if not match or match.end() == pos or (groups and not match.group(1)):
            raise DiceError(f"cannot read {expression!r}; try 2d6+1, 4d6kh3 or adv")
        sign = -1 if match.group(1) == "-" else 1
        numbers = [g for g in match.groups()[1:] if g and g.isdigit()]
        if any(len(n) > _MAX_DIGITS for n in numbers):
            raise DiceError(limit)
        if match.group(3):
            count, sides = int(match.group(2) or 1), int(match.group(3))
            if count < 1 or sides < 2:
                raise DiceError("dice need at least 1 die and 2 sides")
            total_dice += count
            if total_dice > max_dice or sides > max_sides:
                raise DiceError(limit)
            keep = {"k": "kh", "d": "dl"}.get(match.group(4) or "", match.group(4) or "")
            amount = int(match.group(5) or 0)
            if keep and not (0 < amount < count if keep[0] == "d" else 0 < amount <= count):
                raise DiceError(
                    f"cannot {'keep' if keep[0] == 'k' else 'drop'} {amount} of {count} dice"
                )
            groups.append(Group(sign, count, sides, keep, amount))
        else:
            groups.append(Group(sign, int(match.group(6))))
        pos = match.end()
    return groups


def kept(group: Group, dice: list[int]) -> list[int]:
    """Indexes of the dice that count."""
    order = sorted(range(len(dice)), key=lambda i: dice[i])  # lowest first
    if group.keep == "kh":
        return order[-group.amount :]
    if group.keep == "kl":
        return order[: group.amount]
    if group.keep == "dh":
        return order[: len(dice) - group.amount]
    if group.keep == "dl":
        return order[group.amount :]
    return order


def roll_expression(expression: str, rng: random.Random, **limits: int) -> tuple[int, str]:
    """The total and how each die fell; dice that do not count are shown in parentheses."""
    parts: list[str] = []
    total = 0
    for group in parse(expression, **limits):
        prefix = "-" if group.sign < 0 else ("+" if parts else "")
        if group.sides == 0:
            total += group.sign * group.count
            parts.append(f"{prefix}{group.count}")
            continue
        dice = [rng.randint(1, group.sides) for _ in range(group.count)]
        counted = set(kept(group, dice))
        total += group.sign * sum(dice[i] for i in counted)
        shown = [str(d) if i in counted else f"({d})" for i, d in enumerate(dice)]
        parts.append(f"{prefix}[{', '.join(shown)}]")
    return total, " ".join(parts)


# The handlers are async although they never await: a handler that only computes runs on the
# event loop, where a sync one would be handed to a worker thread and back for each roll.
async def roll(event: Any, ctx: Any) -> str:
    expression = " ".join(event.args) or ctx.config.get("default", "1d6")
    limits = {k: int(ctx.config[k]) for k in ("max_dice", "max_sides") if k in ctx.config}
    try:
        total, shown = roll_expression(expression, _RANDOM, **limits)
    except DiceError as e:
        return f"{event.user}: {e}"
    return f"{event.user} rolled {expression}: {shown} = {total}"


async def flip(event: Any, ctx: Any) -> str:
    return f"{event.user} flipped a coin: {random.choice(['heads', 'tails'])}"
