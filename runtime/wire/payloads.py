"""The hot path's payloads as msgspec Structs: decoded and validated in one step.

Each Struct states what `runtime/schemas/contracts.json` says of its subject, no more and no
less: the same required fields, types, lengths, patterns and bounds. Fields the schema lists as
optional default to UNSET (so an explicit `null` is refused, as the schema refuses it, and UNSET
fields are left out when encoding). `forbid_unknown_fields` makes the Struct refuse what it
does not describe; a refusal here is not the answer but only the end of the fast path:
`runtime/wire/contract.py` then judges the payload with the JSON Schema, which accepts fields
it does not list and words the error for what it refuses. So the fast path can only ever be
stricter than the schema, never more lenient, and payloads the schema accepts still pass.
"""

from __future__ import annotations

import sys
from functools import cache
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

# $defs of contracts.json. The pattern is matched with re.search, as jsonschema matches it.
User = Annotated[str, Meta(min_length=1, max_length=100, pattern="^[^\\u0000-\\u001f\\u007f]+$")]
Channel = Annotated[str, Meta(max_length=100)]
# "number": an int stays an int, as json.loads gives it. A float bound below the largest float
# refuses 1e400 (msgspec reads it as infinity); JSON has no NaN for msgspec to read.
Rank = Annotated[int, Meta(ge=-1, le=255)] | Annotated[float, Meta(ge=-1, le=255)]
Time = Annotated[int, Meta(ge=0)] | Annotated[float, Meta(ge=0, le=sys.float_info.max)]
Message = Annotated[str, Meta(max_length=10000)]


class ChatLine(Struct, forbid_unknown_fields=True):
    """`cytube.chat`: a line said in the channel."""

    user: User
    message: Message
    rank: Rank
    channel: Channel | UnsetType = UNSET
    time: Time | UnsetType = UNSET
    html: str | UnsetType = UNSET
    emote: bool | UnsetType = UNSET


class PrivateLine(Struct, forbid_unknown_fields=True):
    """`cytube.pm`: a private message to the bot (the schema has no `emote`)."""

    user: User
    message: Message
    rank: Rank
    channel: Channel | UnsetType = UNSET
    time: Time | UnsetType = UNSET
    html: str | UnsetType = UNSET


class RoutedCommand(Struct, forbid_unknown_fields=True):
    """`plugin.<name>.command`: a command the router resolved, for the function's invoker."""

    command: Annotated[str, Meta(min_length=1, max_length=64)]
    args: Annotated[list[str], Meta(max_length=256)]
    user: User
    rank: Rank
    channel: Channel | UnsetType = UNSET
    raw_message: str | UnsetType = UNSET
    source: Literal["chat", "pm"] | UnsetType = UNSET
    id: Annotated[str, Meta(max_length=64)] | UnsetType = UNSET
    time: Time | UnsetType = UNSET


Line = ChatLine | PrivateLine

# The contract's subject keys (contract.spec_key) that have a Struct.
STRUCTS: dict[str, type[Struct]] = {
    "cytube.chat": ChatLine,
    "cytube.pm": PrivateLine,
    "plugin.*.command": RoutedCommand,
}


@cache
def decoder(key: str) -> msgspec.json.Decoder[Any] | None:
    """The Decoder of the Struct for the contract entry `key`, None when it has none."""
    kind = STRUCTS.get(key)
    return None if kind is None else msgspec.json.Decoder(kind)


def fast_decode(key: str, data: bytes) -> Struct | None:
    """The Struct of `data`, or None when the fast path does not take it (then the JSON Schema
    decides, and words what it refuses)."""
    found = decoder(key)
    if found is None:
        return None
    try:
        value: Struct = found.decode(data)
    except (msgspec.DecodeError, RecursionError):  # a ValidationError is a DecodeError
        return None
    return value


def build(kind: type[Struct], payload: dict[str, Any]) -> Struct:
    """A Struct from a payload the JSON Schema accepted but the fast path did not (duplicate
    keys, fields the Struct does not list, escapes msgspec refuses): its fields as they are,
    without checking them again."""
    fields = {name: payload[name] for name in kind.__struct_fields__ if name in payload}
    return kind(**fields)


def as_dict(value: Struct) -> dict[str, Any]:
    """The payload a handler sees (`event.payload`): the fields that were set."""
    return {
        name: getattr(value, name)
        for name in value.__struct_fields__
        if getattr(value, name) is not UNSET
    }
