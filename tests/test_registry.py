import pytest

from runtime.config.manifest import parse
from runtime.core.registry import Registry
from runtime.errors import RegistryError


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
