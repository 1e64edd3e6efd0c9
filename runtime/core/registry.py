"""The routing table: functions keyed by name, and commands and aliases resolved to them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from runtime.config.manifest import Command, Function
from runtime.errors import RegistryError


@dataclass(frozen=True, slots=True)
class Route:
    function: Function
    command: Command


class Registry:
    """Functions by name; rebuilt as a whole on every change so lookups never see half a swap."""

    def __init__(self, functions: Iterable[Function] = ()) -> None:
        self._functions: dict[str, Function] = {}
        self._routes: dict[str, Route] = {}
        for function in functions:
            self.add(function)

    def __contains__(self, name: object) -> bool:
        return name in self._functions

    def __iter__(self) -> Iterator[Function]:
        return iter(sorted(self._functions.values(), key=lambda f: f.name))

    def __len__(self) -> int:
        return len(self._functions)

    def get(self, name: str) -> Function | None:
        return self._functions.get(name)

    def resolve(self, word: str) -> Route | None:
        """The function and command a typed command word (name or alias) refers to."""
        return self._routes.get(word.lower())

    def add(self, function: Function) -> None:
        if function.name in self._functions:
            other = self._functions[function.name]
            raise RegistryError(
                f"{function.source}: name: {function.name!r} is already declared by {other.source}"
            )
        routes = self._routes_of(function)
        for word, route in routes.items():
            if word in self._routes:
                owner = self._routes[word].function
                raise RegistryError(
                    f"{function.source}: commands.{route.command.name}: {word!r} is already "
                    f"a command of {owner.name!r} ({owner.source})"
                )
        self._functions[function.name] = function
        self._routes.update(routes)

    def replace(self, function: Function) -> Registry:
        """A new registry with `function` added or swapped in; this one is left untouched."""
        others = [f for f in self if f.name != function.name]
        return Registry([*others, function])

    def without(self, name: str) -> Registry:
        return Registry([f for f in self if f.name != name])

    def commands(self) -> list[Route]:
        """Every command once (aliases folded), sorted by command name."""
        seen = {id(r.command): r for r in self._routes.values()}
        return sorted(seen.values(), key=lambda r: r.command.name)

    @staticmethod
    def _routes_of(function: Function) -> dict[str, Route]:
        routes: dict[str, Route] = {}
        for command in function.commands.values():
            route = Route(function, command)
            for word in (command.name, *command.aliases):
                routes[word] = route
        return routes
