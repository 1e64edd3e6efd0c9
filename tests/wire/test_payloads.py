"""Issue 16: the hot path's msgspec Structs decode and validate in one step, never accept what the
JSON Schema refuses, and give what the schema path gives (a refusal falls back to the schema,
which accepts or words the error)."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.errors import ContractError
from runtime.wire import contract, payloads
from tests.wire.test_contract_fastpath import payloads as drawn

SUBJECT = {"cytube.chat": "cytube.chat", "cytube.pm": "cytube.pm"}
SUBJECT["plugin.*.command"] = "plugin.dice.command"


@pytest.mark.parametrize("key", sorted(payloads.STRUCTS))
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_a_struct_accepts_nothing_the_schema_refuses(key: str, data: st.DataObject) -> None:
    payload = data.draw(drawn(key))
    raw = json.dumps(payload).encode()
    fast = payloads.fast_decode(key, raw)
    if fast is not None:
        assert contract._validator(key).is_valid(payload), payload
        assert payloads.as_dict(fast) == payload
    # Both ways agree on the answer, whichever way it came.
    try:
        slow = contract._decode(SUBJECT[key], raw, key)
    except ContractError:
        slow = None
    try:
        got = contract.decode(SUBJECT[key], raw)
    except ContractError:
        got = None
    assert got == slow


ROUTED = {
    "command": "roll",
    "args": ["2d6"],
    "user": "amy",
    "rank": 1,
    "raw_message": "!roll 2d6",
    "source": "chat",
    "id": "0123456789abcdef",
    "time": 1700000000000,
    "channel": "test",
}
LINE = {"user": "amy", "message": "!roll 2d6", "rank": 1, "channel": "test", "time": 1}


@pytest.mark.parametrize(
    ("key", "payload"),
    [
        ("plugin.*.command", ROUTED),
        ("cytube.chat", LINE),
        ("cytube.chat", {**LINE, "emote": True, "html": "<b>x</b>"}),
        ("cytube.pm", LINE),
    ],
)
def test_usual_payloads_take_the_struct(key: str, payload: dict[str, Any]) -> None:
    found = payloads.fast_decode(key, json.dumps(payload).encode())
    assert found is not None and payloads.as_dict(found) == payload
    assert type(payloads.as_dict(found)["rank"]) is int  # a JSON int stays an int


REFUSED = [
    b'{"user":"amy","message":"x","rank":NaN}',
    b'{"user":"amy","message":"x","rank":Infinity}',
    b'{"user":"amy","message":"x","rank":1e400}',
    b'{"user":"amy","message":"x","rank":1,"time":1e400}',
    b'{"user":"amy","message":"x","rank":1,"time":-1}',
    b'{"user":"amy","message":"x","rank":256}',
    b'{"user":"amy","message":"x","rank":-2}',
    b'{"user":"amy","message":"x","rank":true}',
    b'{"user":"amy","message":"x"}',
    b'{"user":"","message":"x","rank":1}',
    b'{"user":"a\\u0007","message":"x","rank":1}',
    b'{"user":"amy","message":"x","rank":1,"channel":null}',
    b'{"user":"amy","message":"x","rank":1,"emote":"yes"}',
    b'{"user":"amy","message":"x","rank":1,"extra":1e400}',
    b'{"user":"amy","message":"x","rank":1,"extra":NaN}',
    b"[]",
    b"",
]


@pytest.mark.parametrize("data", REFUSED)
def test_refusals_are_as_strict_as_the_schema(data: bytes) -> None:
    with pytest.raises(ContractError) as refused:
        contract.decode_struct("cytube.chat", data)
    with pytest.raises(ContractError) as worded:
        contract._decode("cytube.chat", data, "cytube.chat")
    assert str(refused.value) == str(worded.value)  # the schema's words, not msgspec's


def test_over_long_fields_are_refused() -> None:
    long_user = {**LINE, "user": "x" * 101}
    long_message = {**LINE, "message": "x" * 10001}
    many_args = {**ROUTED, "args": ["a"] * 257}
    long_id = {**ROUTED, "id": "x" * 65}
    for subject, payload in [
        ("cytube.chat", long_user),
        ("cytube.chat", long_message),
        ("plugin.dice.command", many_args),
        ("plugin.dice.command", long_id),
        ("plugin.dice.command", {**ROUTED, "source": "web"}),
    ]:
        with pytest.raises(ContractError):
            contract.decode_struct(subject, json.dumps(payload).encode())


def test_what_only_the_schema_accepts_still_passes_with_its_fields() -> None:
    # Unknown fields are allowed on these subjects (no additionalProperties: false): the Struct
    # leaves such payloads to the schema, and a handler sees them whole.
    data = json.dumps({**ROUTED, "extra": {"x": [1, 2]}}).encode()
    command, payload = contract.decode_struct("plugin.dice.command", data)
    assert isinstance(command, payloads.RoutedCommand) and command.user == "amy"
    assert payload == {**ROUTED, "extra": {"x": [1, 2]}}
    assert contract.decode("plugin.dice.command", data) == payload
    # A duplicate key: the last one counts, as json.loads reads it.
    line, _ = contract.decode_struct(
        "cytube.chat", b'{"user":5,"user":"amy","message":"hi","rank":0}'
    )
    assert isinstance(line, payloads.ChatLine) and line.user == "amy"


def test_a_struct_subject_is_not_refused_over_the_size_limit_by_msgspec_alone() -> None:
    big = json.dumps({**LINE, "message": "x" * 10000, "html": "y" * 70000}).encode()
    with pytest.raises(ContractError, match="limit"):
        contract.decode_struct("cytube.chat", big)


def test_encode_plain_writes_what_json_writes() -> None:
    for payload in (ROUTED, {"message": "héllo ✓", "channel": "c"}, {"to": "amy", "message": "x"}):
        assert json.loads(contract.encode_plain(payload)) == payload
        assert json.loads(contract.encode(payload)) == payload


@pytest.mark.parametrize("key", sorted(payloads.STRUCTS))
def test_each_struct_names_the_fields_of_its_schema(key: str) -> None:
    # A field the schema adds and the Struct lacks would send every such payload down the slow
    # path (still correct, as the schema decides): keep them in step.
    schema = contract.specs()[key]["schema"]
    info = msgspec.inspect.type_info(payloads.STRUCTS[key])
    assert isinstance(info, msgspec.inspect.StructType)
    assert {f.name for f in info.fields} == set(schema["properties"])
    assert {f.name for f in info.fields if f.required} == set(schema["required"])
