"""The public NATS contract: decoding and validating payloads at the boundary."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

import fastjsonschema
import msgspec
from msgspec import Struct

from runtime import schemas
from runtime.constants import MAX_PAYLOAD, SEND_CHAT, SEND_PM, ErrorCode
from runtime.errors import ContractError
from runtime.wire import payloads

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

CONTRACT_FILE = "contracts.json"


def specs() -> dict[str, dict[str, Any]]:
    subjects: dict[str, dict[str, Any]] = schemas.load(CONTRACT_FILE)["subjects"]
    return subjects


@lru_cache(maxsize=4096)  # a runtime sees few distinct subjects, each on every message
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
def _schema(key: str) -> dict[str, Any]:
    root = schemas.load(CONTRACT_FILE)
    # Plain {"$ref": ...} nodes are replaced by their definition: the validator then skips the
    # reference lookups, which were half its time on every message.
    return {**_inline(specs()[key]["schema"], root["$defs"]), "$defs": root["$defs"]}


@cache
def _validator(key: str) -> Draft202012Validator:
    # Imported here: most processes never see an invalid payload, and jsonschema is slow to load.
    from jsonschema import Draft202012Validator

    schema = _schema(key)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


Predicate = Callable[[Any], bool]


@cache
def _accepts(key: str) -> Predicate | None:
    """A compiled check (fastjsonschema) that says yes to valid payloads in about a microsecond;
    anything it refuses goes on to jsonschema, whose messages name the field."""
    schema = {k: v for k, v in _schema(key).items() if k != "$defs"}
    try:
        compiled = fastjsonschema.compile(schema)
    except fastjsonschema.JsonSchemaDefinitionException:
        return None

    def accepts(payload: Any) -> bool:
        try:
            compiled(payload)
        except fastjsonschema.JsonSchemaException:
            return False
        return True

    return accepts


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if len(node) == 1 and isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def check(subject: str, payload: Any, key: str | None = None) -> Any:
    """Validate a payload against the contract of `subject`; subjects outside it pass."""
    key = key or spec_key(subject)
    if key is None:
        return payload
    accepts = _accepts(key)
    if accepts is not None and accepts(payload):
        return payload
    validator = _validator(key)
    if not validator.is_valid(payload):
        raise ContractError(subject, "; ".join(schemas.problems(validator, payload)))
    return payload


class _NotFinite(ValueError):
    """A JSON number that is not finite: `NaN`, `Infinity`, `-Infinity` or one that overflows."""


def _refuse_constant(name: str) -> Any:
    # json.loads accepts NaN and ±Infinity, which are not JSON; every comparison with NaN is
    # False, so a `rank: NaN` would pass the schema's bounds and every rank check.
    raise _NotFinite(f"{name} is not a finite number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 parses to inf
        raise _NotFinite(f"{text} is not a finite number")
    return value


def loads(data: str | bytes) -> Any:
    """Strict JSON: NaN, Infinity, -Infinity and numbers too large for a float are refused
    (ValueError), so no schema check or rank comparison ever sees a non-finite number."""
    return json.loads(data, parse_constant=_refuse_constant, parse_float=_finite_float)


def _too_large(subject: str, data: bytes) -> ContractError:
    return ContractError(subject, f"payload of {len(data)} bytes is over the {MAX_PAYLOAD} limit")


def decode(subject: str, data: bytes, key: str | None = None) -> Any:
    """Bytes off the wire to a validated payload; every failure is a ContractError.

    The hot path's subjects (runtime/wire/payloads.py) are decoded and validated in one step by
    msgspec; whatever that does not take, and every other subject, is parsed strictly (non-finite
    numbers refused, as neither schema check refuses NaN against a minimum or maximum) and
    judged by the JSON Schema, which words the error."""
    if len(data) > MAX_PAYLOAD:
        raise _too_large(subject, data)
    key = key or spec_key(subject)
    if key is not None and key in payloads.STRUCTS:
        fast = payloads.fast_decode(key, data)
        if fast is not None:
            return payloads.as_dict(fast)
    return _decode(subject, data, key)


def decode_struct(subject: str, data: bytes) -> tuple[Struct, dict[str, Any] | None]:
    """A hot-path payload as its Struct (payloads.STRUCTS), in one step; every failure is a
    ContractError worded by the JSON Schema.

    The second value is the payload as the schema accepted it when the Struct alone did not
    (fields the Struct does not list, a duplicate key): what a handler then sees, unknown fields
    included. None when the Struct took the payload as it is."""
    if len(data) > MAX_PAYLOAD:
        raise _too_large(subject, data)
    key = spec_key(subject)
    kind = payloads.STRUCTS.get(key or "")
    if key is None or kind is None:
        raise ValueError(f"{subject} has no Struct")  # a programming error, not a payload's
    fast = payloads.fast_decode(key, data)
    if fast is not None:
        return fast, None
    payload = _decode(subject, data, key)
    return payloads.build(kind, payload), payload


def _decode(subject: str, data: bytes, key: str | None) -> Any:
    try:
        payload = loads(data) if data else None
    except _NotFinite as e:
        raise ContractError(subject, f"payload is not valid JSON: {e}") from e
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ContractError(subject, f"payload is not JSON: {e}") from e
    except RecursionError as e:
        raise ContractError(subject, "payload is nested too deeply") from e
    try:
        return check(subject, payload, key)
    except RecursionError as e:
        raise ContractError(subject, "payload is nested too deeply") from e


def encode(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


_ENCODER = msgspec.json.Encoder()
# Subjects whose valid payloads hold only strings and booleans (their schemas refuse other
# fields), which msgspec writes as json.dumps would.
PLAIN = frozenset({SEND_CHAT, SEND_PM})
# Subjects whose payloads Rosey builds from checked strings and finite numbers (the router's
# routed commands); other publishers' payloads there may carry any extra field.
BUILT = frozenset(payloads.STRUCTS)


def encode_plain(payload: Any) -> bytes:
    """msgspec's encoder, about ten times as fast as `encode`, for a payload valid on a subject
    of PLAIN or built by Rosey for one of BUILT. Elsewhere use `encode`, which writes what
    json.dumps writes (a NaN as NaN, where msgspec writes null; a set is refused)."""
    return _ENCODER.encode(payload)


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
