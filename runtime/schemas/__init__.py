"""JSON Schema loading and error wording shared by manifests, settings and the NATS contract.

A packaged schema is checked with a compiled fastjsonschema function first; jsonschema, slower
and imported only then, words what is wrong with an instance the compiled check refuses."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError


@cache
def load(name: str) -> dict[str, Any]:
    # Schemas are immutable package data, so caching the parsed file is safe.
    text = resources.files(__package__).joinpath(name).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def validator(name: str) -> Draft202012Validator:
    """The jsonschema validator of a packaged schema file (it words the problems)."""
    from jsonschema import Draft202012Validator

    schema = load(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@cache
def compiled(name: str) -> Callable[[Any], bool]:
    """A compiled check of a packaged schema file: True for an instance it accepts.

    fastjsonschema generates Python code for the schema (no defaults filled in, no format
    checks, as jsonschema), so a valid instance is accepted in microseconds. It never has the
    last word on a refusal: `problems_of` asks jsonschema why, and its verdict stands."""
    import fastjsonschema

    check = fastjsonschema.compile(
        _literal_dollars(load(name)), use_default=False, use_formats=False
    )

    def accepts(instance: Any) -> bool:
        try:
            check(instance)
        except Exception:  # JsonSchemaException, or a value the generated code cannot handle
            return False
        return True

    return accepts


def _literal_dollars(node: Any) -> Any:
    """The schema with `$` inside a character class of a `pattern` escaped: fastjsonschema turns
    every unescaped `$` into `\\Z`, which is not valid inside `[...]`."""
    if isinstance(node, dict):
        return {
            key: re.sub(r"\[[^\]]*\]", lambda m: m.group(0).replace("$", "\\$"), value)
            if key == "pattern" and isinstance(value, str)
            else _literal_dollars(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_literal_dollars(item) for item in node]
    return node


def problems_of(name: str, instance: Any) -> list[str]:
    """Every problem of `instance` against the packaged schema `name` (none: valid)."""
    if compiled(name)(instance):
        return []
    return problems(validator(name), instance)


def field_path(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def describe(error: ValidationError) -> str:
    """One line: `field.path: what was expected`."""
    path = list(error.absolute_path)
    message = error.message
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        patterns = error.schema.get("patternProperties")
        if patterns:
            extra = [k for k in extra if not _matches_any(k, patterns)]
        hint = f"; expected one of: {', '.join(allowed)}" if allowed else ""
        return (
            "; ".join(f"{field_path([*path, key])}: unknown field{hint}" for key in extra)
            or f"{field_path(path) or '(top level)'}: {message}"
        )
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"{field_path([*path, missing])}: required field is missing"
    expected = error.schema.get("x-expected") if isinstance(error.schema, dict) else None
    if expected:
        message = f"{error.instance!r} is not valid: expected {expected}"
    return f"{field_path(path) or '(top level)'}: {message}"


def _matches_any(key: str, patterns: dict[str, Any]) -> bool:
    return any(re.search(p, key) for p in patterns)


def problems(check: Draft202012Validator, instance: Any) -> list[str]:
    """Every validation finding, most specific first, in document order."""
    errors = sorted(check.iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path])
    found: list[str] = []
    for error in errors:
        # Descend into anyOf/oneOf so the message names the deepest field that failed.
        line = describe(_best_leaf(error))
        if line not in found:  # two checks of one field can word the same expectation
            found.append(line)
    return found


def _best_leaf(error: ValidationError) -> ValidationError:
    if error.context:
        from jsonschema.exceptions import best_match

        match = best_match(error.context)
        if match is not None:
            return _best_leaf(match)
    return error
