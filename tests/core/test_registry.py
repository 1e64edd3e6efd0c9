import math

import pytest

from runtime.config.manifest import Command, parse
from runtime.core.permissions import check_rank, denial_line, may_run
from runtime.core.registry import Registry
from runtime.errors import PermissionDenied, RegistryError


def fn(name: str, **commands: dict[str, object]) -> object:
    return parse(
        {
            "name": name,
            "version": "1.0.0",
            "description": "x",
            "handler": "m:f",
            "commands": commands,
        }
    )


def test_resolve_names_and_aliases_case_insensitively() -> None:
    registry = Registry([fn("a", roll={"aliases": ["r"]})])  # type: ignore[list-item]
    route = registry.resolve("R")
    assert route is not None
    assert (route.function.name, route.command.name) == ("a", "roll")
    assert registry.resolve("nope") is None


def test_duplicate_function_name() -> None:
    with pytest.raises(RegistryError) as info:
        Registry([fn("a", x={}), fn("a", y={})])  # type: ignore[list-item]
    assert "name: 'a' is already declared" in str(info.value)


def test_alias_clash_across_functions() -> None:
    with pytest.raises(RegistryError) as info:
        Registry([fn("a", roll={}), fn("b", dice={"aliases": ["roll"]})])  # type: ignore[list-item]
    assert "commands.dice: 'roll' is already a command of 'a'" in str(info.value)


def test_replace_and_without_leave_original_untouched() -> None:
    registry = Registry([fn("a", roll={})])  # type: ignore[list-item]
    swapped = registry.replace(fn("a", flip={}))  # type: ignore[arg-type]
    assert registry.resolve("roll") is not None
    assert swapped.resolve("roll") is None
    assert swapped.resolve("flip") is not None
    assert len(swapped.without("a")) == 0
    assert [r.command.name for r in Registry([fn("a", b={}, a={"aliases": ["c"]})]).commands()] == [  # type: ignore[list-item]
        "a",
        "b",
    ]


@pytest.mark.parametrize("rank", [math.nan, math.inf, -math.inf, "5", None, True])
def test_check_rank_fails_closed_on_a_rank_that_is_not_a_finite_number(rank: object) -> None:
    """NaN compares False with everything, so `rank < needed` let it through; now refused,
    also for a command anyone may run (rank 0)."""
    for needed in (0, 2, 255):
        command = Command("delquote", rank=needed)
        assert may_run(command, rank) is False  # type: ignore[arg-type]
        with pytest.raises(PermissionDenied) as info:
            check_rank(command, rank)  # type: ignore[arg-type]
        assert info.value.needed == needed
        assert math.isnan(info.value.have)
        assert denial_line("m", info.value).endswith("(you are an invalid rank).")


def test_check_rank_still_allows_finite_ranks() -> None:
    command = Command("delquote", rank=2)
    check_rank(command, 2)
    check_rank(command, 3.5)
    assert may_run(command, 2.0) is True
    with pytest.raises(PermissionDenied) as info:
        check_rank(command, 1.99)
    assert info.value.have == 1.99
