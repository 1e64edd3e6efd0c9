"""The public NATS contract: decoding and validating payloads at the boundary."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator

from . import schemas
from .constants import MAX_PAYLOAD, ErrorCode
from .errors import ContractError

CONTRACT_FILE = "contracts.json"


def specs() -> dict[str, dict[str, Any]]:
    subjects: dict[str, dict[str, Any]] = schemas.load(CONTRACT_FILE)["subjects"]
    return subjects


def spec_key(subject: str) -> str | None:
    """The contract entry that governs `subject` (`plugin.dice.command` → `plugin.*.command`)."""
    table = specs()
    if subject in table:
        return subject
    tokens = subject.split(".")
    for key in table:
        pattern = key.split(".")
        if len(pattern) == len(tokens) and all(
            p in ("*", t) for p, t in zip(pattern, tokens, strict=True)
        ):
            return key
    return None


@cache
def _validator(key: str) -> Draft202012Validator:
    root = schemas.load(CONTRACT_FILE)
    schema = {**specs()[key]["schema"], "$defs": root["$defs"]}
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def check(subject: str, payload: Any, key: str | None = None) -> Any:
    """Validate a payload against the contract of `subject`; subjects outside it pass."""
    key = key or spec_key(subject)
    if key is None:
        return payload
    validator = _validator(key)
    if not validator.is_valid(payload):
        raise ContractError(subject, "; ".join(schemas.problems(validator, payload)))
    return payload


def decode(subject: str, data: bytes, key: str | None = None) -> Any:
    """Bytes off the wire to a validated payload; every failure is a ContractError."""
    if len(data) > MAX_PAYLOAD:
        raise ContractError(
            subject, f"payload of {len(data)} bytes is over the {MAX_PAYLOAD} limit"
        )
    try:
        payload = json.loads(data) if data else None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ContractError(subject, f"payload is not JSON: {e}") from e
    return check(subject, payload, key)


def encode(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def ok(data: Any = None, **fields: Any) -> dict[str, Any]:
    """The success envelope. `fields` adds top-level keys (database replies' `id`, `count`);
    with fields and no data, `data` is left out."""
    if fields and data is None:
        return {"success": True, **fields}
    return {"success": True, "data": data, **fields}


def failure(code: ErrorCode | str, message: str) -> dict[str, Any]:
    return {"success": False, "error": message, "error_code": str(code)}


def render_markdown() -> str:
    """docs/contracts.md, generated from the schema file so the two cannot drift apart."""
    root = schemas.load(CONTRACT_FILE)
    out = [
        "# Rosey's NATS contract",
        "",
        "Generated from `runtime/schemas/contracts.json` by `rosey contract --markdown`;",
        "a test fails when this file and the schemas differ. Payloads are UTF-8 JSON objects of at most",
        f"{MAX_PAYLOAD} bytes. Rosey validates every payload it receives against these schemas and answers",
        "a bad one with `INVALID_INPUT` (on request/reply) or logs it (on publish). Objects accept fields",
        "not listed unless the schema says `additionalProperties: false`.",
        "",
        "Error codes: " + ", ".join(f"`{c.value}`" for c in ErrorCode) + ".",
        "",
        "## Shared definitions",
        "",
        "```json",
        json.dumps(root["$defs"], indent=2),
        "```",
        "",
    ]
    for subject, spec in specs().items():
        out += [
            f"## `{subject}`",
            "",
            f"{spec['kind'].capitalize()}, from {spec['from']}. {spec['description']}",
            "",
            "```json",
            json.dumps(spec["schema"], indent=2),
            "```",
            "",
        ]
    return "\n".join(out)
