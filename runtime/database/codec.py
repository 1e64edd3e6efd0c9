"""How the database lays values out in Redis: field values, record ids and index entries.

Index entries are members of a lexicographically sorted set (all scores 0), shaped
`<value key> \\0\\0 <id key>` so that one ZRANGEBYLEX answers equality, ranges and ordering.
The value key preserves order across JSON types: missing < null < false < true < numbers <
strings < lists < objects. The Lua scripts build the same bytes (see runtime/database/scripts.py); a test holds
the two to it.
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Iterable
from typing import Any, Final

RecordId = int | str

MAX_INT_ID: Final = 2**53 - 1
MAX_STR_ID: Final = 256
COLLECTION = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")
FIELD = re.compile(r"^(?!id\Z)[A-Za-z0-9_-]{1,64}\Z")  # names that can carry an index
SEP: Final = b"\x00\x00"
_CANONICAL_INT = re.compile(r"^(?:0|[1-9][0-9]{0,15})\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class _Missing:
    """A field the record does not have (distinct from null)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


def check_collection(name: Any) -> str:
    if not isinstance(name, str) or not COLLECTION.match(name):
        raise ValueError(
            f"collection: {name!r} is not valid: expected 1 to 64 letters, digits, '-' or '_'"
        )
    return name


def check_index_field(name: Any, where: str = "indexes") -> str:
    if not isinstance(name, str) or not FIELD.match(name):
        raise ValueError(
            f"{where}: {name!r} cannot be indexed: expected 1 to 64 letters, digits, '-' or '_' "
            "(and not 'id', which is always indexed)"
        )
    return name


def normalize_id(value: Any, where: str = "id") -> RecordId:
    """An id as the database keeps it: a decimal string such as "42" is the integer 42."""
    if type(value) is int and 0 <= value <= MAX_INT_ID:
        return value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value <= MAX_INT_ID:
            return value
    elif isinstance(value, str):
        if _CANONICAL_INT.match(value) and int(value) <= MAX_INT_ID:
            return int(value)
        if 1 <= len(value) <= MAX_STR_ID and not _CONTROL.search(value):
            return value
    raise ValueError(
        f"{where}: {value!r} is not valid: expected an integer from 0 to 2^53-1 or a string of "
        f"1 to {MAX_STR_ID} characters without control characters"
    )


def raw_id(record_id: RecordId) -> str:
    """The id as it appears in the record's key."""
    return str(record_id)


def id_key(record_id: RecordId) -> str:
    """The id's member in the id index: integers in numeric order, then strings."""
    if isinstance(record_id, int):
        return f"i{record_id:016d}"
    return "s" + record_id


def id_from_key(key: str) -> RecordId:
    return int(key[1:]) if key.startswith("i") else key[1:]


def id_from_member(member: str) -> RecordId:
    return id_from_key(member[member.index("\x00\x00") + 2 :])


def encode_value(value: Any, where: str) -> bytes:
    """One field's value as stored: UTF-8 JSON, so every JSON type comes back as it went in."""
    try:
        return json.dumps(
            value, ensure_ascii=False, allow_nan=False, separators=(",", ":")
        ).encode()
    except ValueError as e:  # NaN or Infinity, which JSON has no words for
        raise ValueError(f"{where}: {e}") from e
    except UnicodeEncodeError as e:
        raise ValueError(f"{where}: text is not valid Unicode ({e.reason})") from e
    except RecursionError as e:
        raise ValueError(f"{where}: value nests too deeply") from e


def decode_record(flat: dict[str, str] | list[str]) -> dict[str, Any]:
    """A record from HGETALL (a dict, or the flat list a Lua script returns)."""
    if isinstance(flat, dict):
        return {k: json.loads(v) for k, v in flat.items()}
    return {flat[i]: json.loads(flat[i + 1]) for i in range(0, len(flat), 2)}


def number_key(value: int | float) -> bytes:
    """16 hex digits whose byte order is the numeric order (IEEE 754 bits, sign-folded)."""
    try:
        f = float(value)
    except OverflowError:  # an integer beyond the double range sorts with the infinities
        f = math.inf if value > 0 else -math.inf
    if f == 0:
        f = 0.0  # -0.0 and 0.0 are one value
    bits = int.from_bytes(struct.pack(">d", f), "big")
    bits = bits ^ 0xFFFF_FFFF_FFFF_FFFF if bits >> 63 else bits | (1 << 63)
    return b"%016x" % bits


def value_key(value: Any) -> bytes:
    """The order-preserving key of one JSON value (or MISSING)."""
    if value is MISSING:
        return b"0"
    if value is None:
        return b"1"
    if value is False:
        return b"2"
    if value is True:
        return b"3"
    if isinstance(value, int | float):
        return b"4" + number_key(value)
    if isinstance(value, str):
        # \0 is escaped as \0\1 so the \0\0 separator still sorts below every longer string.
        return b"5" + value.encode().replace(b"\x00", b"\x00\x01")
    return b"6" if isinstance(value, list) else b"7"


def is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def member(value: Any, record_id: RecordId) -> bytes:
    return value_key(value) + SEP + id_key(record_id).encode()


# Lexicographic range bounds in Redis syntax: b"[" inclusive, b"(" exclusive, b"-"/b"+" ends.
Bound = bytes


def eq_range(value: Any) -> tuple[Bound, Bound]:
    prefix = value_key(value) + SEP
    return b"[" + prefix, b"[" + prefix + b"\xff"


def type_range(value: Any) -> tuple[Bound, Bound]:
    """Every member whose value has the type of `value` (number or string)."""
    return (b"[4", b"(5") if isinstance(value, int | float) else (b"[5", b"(6")


def lower_bound(value: Any, inclusive: bool) -> Bound:
    key = value_key(value)
    return b"[" + key if inclusive else b"(" + key + SEP + b"\xff"


def upper_bound(value: Any, inclusive: bool) -> Bound:
    key = value_key(value)
    return b"[" + key + SEP + b"\xff" if inclusive else b"(" + key


def bound_order(bound: Bound) -> tuple[bytes, int]:
    """Sort key of a bound: the bytes, then whether it includes them."""
    if bound == b"-":
        return b"", 0
    if bound == b"+":
        return b"\xff" * 8, 0
    return bound[1:], 0 if bound[:1] == b"[" else 1


def tighter(bounds: Iterable[Bound], lower: bool) -> Bound:
    """The most restrictive of several lower (or upper) bounds."""
    ordered = sorted(bounds, key=bound_order)
    if lower:
        return ordered[-1]
    # For upper bounds, an exclusive bound at the same bytes is the tighter one.
    return min(ordered, key=lambda b: (bound_order(b)[0], -bound_order(b)[1]))
