"""JSON Schema loading and error wording shared by manifests, settings and the NATS contract."""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Any

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
    """The compiled validator of a packaged schema file."""
    schema = load(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


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
    import re

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
