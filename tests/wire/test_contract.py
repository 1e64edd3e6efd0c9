import json

import pytest

from runtime.errors import ContractError
from runtime.wire import contract
from tests.clitools import ROOT


def test_docs_are_generated_from_the_schemas() -> None:
    doc = (ROOT / "docs" / "contracts.md").read_text()
    assert doc == contract.render_markdown(), "run: rosey contract --markdown > docs/contracts.md"


def test_every_public_subject_has_a_schema() -> None:
    for subject in (
        "cytube.chat",
        "cytube.pm",
        "cytube.send.chat",
        "cytube.send.pm",
        "cytube.user.join",
        "cytube.user.leave",
        "cytube.media.change",
        "plugin.dice.command",
        "plugin.dice.request",
        "platform.startup",
        "platform.shutdown",
        "platform.heartbeat",
    ):
        assert contract.spec_key(subject) is not None, subject


def test_decode_valid() -> None:
    payload = {"user": "a", "message": "hi", "rank": 1, "channel": "c", "time": 5}
    assert contract.decode("cytube.chat", json.dumps(payload).encode()) == payload


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"{", "cytube.chat: payload is not JSON"),
        (b"\xff", "cytube.chat: payload is not JSON"),
        (b'{"user": "a", "message": "x"}', "cytube.chat: rank: required field is missing"),
        (
            b'{"user": "", "message": "x", "rank": 0}',
            "cytube.chat: user: '' is not valid: expected a user name of 1 to 100 characters "
            "without control characters",
        ),
        (
            b'{"user": "a", "message": "x", "rank": "5"}',
            "cytube.chat: rank: '5' is not of type 'number'",
        ),
        (b"x" * 70_000, "cytube.chat: payload of 70000 bytes is over the 65536 limit"),
    ],
)
def test_decode_errors(data: bytes, expected: str) -> None:
    with pytest.raises(ContractError) as info:
        contract.decode("cytube.chat", data)
    assert str(info.value).startswith(expected)


def test_outbound_checked() -> None:
    with pytest.raises(ContractError) as info:
        contract.check("cytube.send.chat", {"message": "x", "colour": "red"})
    assert str(info.value).startswith("cytube.send.chat: colour: unknown field")


def test_unlisted_subjects_pass() -> None:
    assert contract.check("plugin.x.event.thing", {"any": 1}) == {"any": 1}


def test_envelopes() -> None:
    assert contract.ok({"a": 1}) == {"success": True, "data": {"a": 1}}
    assert contract.failure("TIMEOUT", "slow") == {
        "success": False,
        "error": "slow",
        "error_code": "TIMEOUT",
    }


@pytest.mark.parametrize(
    ("number", "named"),
    [("NaN", "NaN"), ("Infinity", "Infinity"), ("-Infinity", "-Infinity"), ("1e400", "1e400")],
)
@pytest.mark.parametrize(
    ("subject", "template"),
    [
        ("cytube.chat", '{"user":"m","message":"!delquote 2","rank":%s}'),
        ("cytube.pm", '{"user":"m","message":"!delquote 2","rank":%s}'),
        ("plugin.quotes.command", '{"command":"delquote","args":["2"],"user":"m","rank":%s}'),
        ("plugin.x.event.thing", '{"value":%s}'),  # outside the contract: refused all the same
    ],
)
def test_decode_refuses_non_finite_numbers(
    subject: str, template: str, number: str, named: str
) -> None:
    """`rank: NaN` is within no bounds, but every comparison with NaN is False: refused at decode."""
    with pytest.raises(ContractError) as info:
        contract.decode(subject, (template % number).encode())
    assert info.value.code == "INVALID_INPUT"
    assert (
        str(info.value) == f"{subject}: payload is not valid JSON: {named} is not a finite number"
    )


def test_decode_keeps_finite_floats() -> None:
    data = b'{"user":"m","message":"x","rank":1.5,"time":1e3}'
    assert contract.decode("cytube.chat", data)["rank"] == 1.5
