"""The compiled fast path never accepts a payload jsonschema refuses, and accepts the usual ones."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.wire import contract

# Values near the contract's edges: bounds, bools among numbers, control characters, nesting.
edges = st.sampled_from(
    [
        0,
        -1,
        1,
        1.0,
        2.5,
        -0.0,
        9007199254740991,
        9007199254740992,
        1000,
        1001,
        255,
        256,
        True,
        False,
        None,
        "",
        "a",
        "a b",
        "abc\n",
        "\n",
        "x" * 65,
        "x" * 257,
        "DESC",
        "$gt",
        "chat",
        "pm",
        "RECORD_NOT_FOUND",
        [],
        [1],
        ["a"],
        {},
        {"a": 1},
    ]
)
json_values = st.recursive(
    edges | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.text(max_size=5) | edges.filter(lambda v: isinstance(v, str)), inner, max_size=3
        )
    ),
    max_leaves=8,
)


def payloads(key: str) -> st.SearchStrategy[Any]:
    props = list(contract.specs()[key]["schema"].get("properties", {}))
    names = st.sampled_from([*props, "extra"]) if props else st.just("extra")
    objects = st.dictionaries(names, json_values, max_size=len(props) + 1)
    return objects | json_values


@pytest.mark.parametrize("key", sorted(contract.specs()))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_the_predicate_accepts_nothing_jsonschema_refuses(key: str, data: st.DataObject) -> None:
    accepts = contract._accepts(key)
    if accepts is None:
        return  # this subject keeps the jsonschema path alone
    payload = data.draw(payloads(key))
    if accepts(payload):
        assert contract._validator(key).is_valid(payload), payload


TYPICAL: list[tuple[str, dict[str, Any]]] = [
    ("database.get", {"collection": "quotes", "id": 5}),
    ("database.get", {"collection": "quotes", "id": "alice"}),
    ("database.set", {"collection": "quotes", "id": None, "data": {"text": "hi", "n": [1]}}),
    ("database.update", {"collection": "q", "id": 1, "data": {"a": 1}, "inc": {"n": 1.5}}),
    (
        "database.query",
        {"collection": "q", "filter": {"n": {"$gt": 1}}, "order_by": ["n DESC"], "limit": 10},
    ),
    ("database.delete", {"collection": "q", "id": 3}),
    ("database.count", {"collection": "q"}),
    ("cytube.chat", {"user": "bob", "message": "!roll", "rank": 1.5, "channel": "c", "time": 1}),
    ("reply", {"success": True, "data": [1], "count": 1}),
]


@pytest.mark.parametrize(("key", "payload"), TYPICAL)
def test_usual_payloads_take_the_fast_path(key: str, payload: dict[str, Any]) -> None:
    accepts = contract._accepts(key)
    assert accepts is not None and accepts(payload)
    assert contract._validator(key).is_valid(payload)
