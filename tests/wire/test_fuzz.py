"""Bad input, fuzzed: whatever comes in, the answer is a value or a clear Rosey error, never a crash."""

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.config import manifest
from runtime.config import settings as rosey_settings
from runtime.core.router import parse
from runtime.errors import ConfigError, ContractError, ManifestError
from runtime.wire import contract

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=30,
)
MANIFEST_KEYS = [
    "name",
    "version",
    "description",
    "handler",
    "commands",
    "subjects",
    "timeout",
    "concurrency",
    "collections",
    "config",
    "examples",
    "bogus",
]
manifests = st.dictionaries(st.sampled_from(MANIFEST_KEYS), JSON, max_size=8) | JSON
SUBJECTS = [key.replace("*", "x") for key in contract.specs()]


@given(manifests)
def test_manifest_parse_never_crashes(data: Any) -> None:
    try:
        f = manifest.parse(data, "fuzz.yaml")
    except ManifestError as e:
        assert e.problems
        assert all(isinstance(p, str) and p for p in e.problems)
    else:
        assert f.name and f.version


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60)
@given(st.text(max_size=300))
def test_yaml_text_never_crashes(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        manifest.load(path)
    except ManifestError as e:
        assert str(e).startswith("fuzz.yaml: ") or "fuzz.yaml" in str(e)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "nats",
                "redis",
                "data_dir",
                "command_prefix",
                "cytube",
                "heartbeat_interval",
                "deploy",
                "typo",
            ]
        ),
        JSON,
        max_size=5,
    )
)
def test_config_never_crashes(tmp_path: Path, data: dict[str, Any]) -> None:
    path = tmp_path / "rosey.yaml"
    path.write_text(json.dumps(data))  # JSON is YAML
    try:
        rosey_settings.load(path, environ={})
    except ConfigError as e:
        assert str(e).startswith(str(e.source))


@given(st.sampled_from(SUBJECTS), st.binary(max_size=200))
def test_random_bytes_on_every_subject(subject: str, data: bytes) -> None:
    try:
        contract.decode(subject, data)
    except ContractError as e:
        assert str(e).startswith(subject + ": ")


@given(st.sampled_from(SUBJECTS), JSON)
def test_random_json_on_every_subject(subject: str, payload: Any) -> None:
    try:
        contract.decode(subject, json.dumps(payload).encode())
    except ContractError as e:
        assert e.problem


@given(st.integers(1, 200))
def test_deep_nesting_is_refused_cleanly(depth: int) -> None:
    data = ("[" * depth + "]" * depth).encode()
    try:
        contract.decode("cytube.chat", data)
    except ContractError as e:
        assert "is not of type 'object'" in str(e)


def test_huge_and_odd_strings() -> None:
    for message in ("x" * 20_000, "\u0000\ud7ff\ufffd", "🎲" * 100, "\u202e!roll"):
        payload = json.dumps({"user": "u", "message": message, "rank": 0}).encode()
        try:
            decoded = contract.decode("cytube.chat", payload)
        except ContractError as e:
            assert "message" in str(e) or "over the" in str(e)
        else:
            assert parse(decoded["message"], "!") is None or decoded["message"].startswith("!")


def test_pathological_nesting_within_the_size_limit() -> None:
    for data in (b"[" * 30_000 + b"]" * 30_000, b'{"a":' * 5_000 + b"1" + b"}" * 5_000):
        for subject in ("cytube.chat", "plugin.x.request"):
            try:
                contract.decode(subject, data)
            except ContractError as e:
                assert str(e) == f"{subject}: payload is nested too deeply"
            else:
                raise AssertionError("a pathological payload was accepted")
