"""Manifests nobody meant to write: not UTF-8, nested thousands deep, mangled. Each is a
ManifestError naming the file (never another exception), also in `rosey validate` and in deploys."""

import json
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from textwrap import dedent

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.cli.main import cli
from runtime.config import manifest
from runtime.config import settings as rosey_settings
from runtime.core.bundle import Bundle
from runtime.core.runtime import Runtime
from runtime.deploy.service import DeployService
from runtime.errors import ConfigError, ManifestError
from runtime.wire.bus import Bus
from tests.conftest import write_project

TOKEN = "s3cret"
VALID = dedent("""\
    name: hello
    version: "1.0.0"
    description: Says hi.
    handler: hello:hi
    commands:
      hi: {aliases: [hey], rank: 2, cooldown: {seconds: 5, per: channel}}
    schedules:
      - {every: 10m}
    examples:
      - {input: "!hi", expect: "hi"}
    """)
DEEP = [
    "[" * 5000,
    "{a: " * 5000,
    "- " * 5000,
    "a:\n" + "".join(" " * i + "b:\n" for i in range(1, 3000)),
    "x: " + "[" * 700 + "]" * 700,  # PyYAML reads it; too deep to validate
]


def load_or_refuse(data: bytes) -> None:
    """The property: the loader returns a Function or raises a ManifestError naming the file."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hostile.yaml"
        path.write_bytes(data)
        try:
            function = manifest.load(path)
        except ManifestError as e:
            assert e.problems, "a ManifestError says what is wrong"
            assert e.source == manifest.display_path(path)
            assert str(e).startswith(e.source + ": ")
        else:
            assert isinstance(function, manifest.Function)


def test_a_valid_manifest_loads() -> None:
    load_or_refuse(VALID.encode())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hello.yaml"
        path.write_text(VALID)
        assert manifest.load(path).commands["hi"].rank == 2


@pytest.mark.parametrize("text", DEEP)
def test_deep_nesting_is_a_manifest_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text(text)
    with pytest.raises(ManifestError) as info:
        manifest.load(path)
    assert info.value.source == manifest.display_path(path)
    assert info.value.problems == ["YAML is nested too deeply"]


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ("timeout: .nan\n", "timeout: nan is not a finite number"),
        ("listen: {max_seconds: .nan}\n", "listen.max_seconds: nan is not a finite number"),
        ("quarantine: {window: .nan}\n", "quarantine.window: nan is not a finite number"),
    ],
)
def test_non_finite_numbers_are_a_manifest_error(tmp_path: Path, extra: str, problem: str) -> None:
    path = tmp_path / "nan.yaml"
    path.write_text(VALID + extra)
    with pytest.raises(ManifestError) as info:
        manifest.load(path)
    assert info.value.problems == [problem]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (VALID.encode("utf-16"), "not UTF-8 text: byte 0xff at offset 0 is invalid"),
        ("description: Caf\u00e9\n".encode("latin-1"), "not UTF-8 text: byte 0xe9 at offset 16"),
        (b"\xff\xfe\x00", "not UTF-8 text: byte 0xff at offset 0 is invalid"),
    ],
)
def test_other_encodings_are_a_manifest_error(tmp_path: Path, data: bytes, problem: str) -> None:
    path = tmp_path / "enc.yaml"
    path.write_bytes(data)
    with pytest.raises(ManifestError) as info:
        manifest.load(path)
    assert str(info.value).startswith(f"{manifest.display_path(path)}: {problem}")


def test_a_non_utf8_rosey_yaml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "rosey.yaml"
    path.write_bytes("log_level: \u00e9\n".encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        rosey_settings.load(path, environ={})
    # Named as the user gave it (issue 15, item 12).
    assert str(info.value).startswith(f"{path}: not UTF-8 text")


def mutations(text: str) -> st.SearchStrategy[bytes]:
    data = text.encode()

    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        out = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            at = draw(st.integers(0, len(out)))
            kind = draw(st.sampled_from(["insert", "delete", "replace"]))
            chunk = draw(
                st.one_of(
                    st.binary(min_size=1, max_size=8),
                    st.sampled_from(
                        [
                            b"[",
                            b"{",
                            b"- ",
                            b": ",
                            b"\n  ",
                            b"&a ",
                            b"*a",
                            b"!!binary ",
                            b"!!str",
                            b"? ",
                            b"|",
                            b">",
                            b"'",
                            b'"',
                            b"\t",
                            b"~",
                            b"1e999",
                            b"-.inf",
                            b".nan",
                            b"2001-13-45",
                            b"<<: *a",
                            b"!!python/object:os.system",
                            b"\xc3",
                            b"\x00",
                        ]
                    ),
                )
            )
            if kind == "insert":
                out[at:at] = chunk
            elif kind == "delete":
                del out[at : at + len(chunk)]
            else:
                out[at : at + len(chunk)] = chunk
        return bytes(out)

    return mutate()


def encodings(text: str) -> st.SearchStrategy[bytes]:
    return st.sampled_from(["latin-1", "utf-16", "utf-16-be", "utf-32", "cp1252", "utf-8-sig"]).map(
        lambda codec: (text + "# caf\u00e9\n").encode(codec)
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=400),
        st.text(max_size=200).map(str.encode),
        encodings(VALID),
        mutations(VALID),
        st.sampled_from(DEEP).map(str.encode),
        st.integers(1, 3000).map(lambda n: ("x: " + "[" * n + "1" + "]" * n).encode()),
        st.integers(1, 3000).map(
            lambda n: (VALID + "config: " + "{a: " * n + "1" + "}" * n).encode()
        ),
    )
)
def test_any_bytes_load_or_are_a_manifest_error(data: bytes) -> None:
    load_or_refuse(data)


def test_rosey_validate_names_a_non_utf8_manifest(tmp_path: Path) -> None:
    write_project(tmp_path, {}, {})
    (tmp_path / "manifests" / "latin.yaml").write_bytes(
        VALID.replace("Says hi.", "Caf\u00e9").encode("latin-1")
    )
    (tmp_path / "rosey.yaml").write_text("log_level: WARNING\n")
    result = CliRunner().invoke(cli, ["validate", "--config", str(tmp_path / "rosey.yaml")])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if "latin.yaml" in line]
    assert lines and "not UTF-8 text" in lines[0], result.output


# A deploy whose manifest is hostile gets an answer.


@pytest.fixture
async def deploys(tmp_path: Path, nats_url: str) -> AsyncIterator[Runtime]:
    project = write_project(tmp_path / "project", {}, {})
    bus = await Bus.connect(nats_url)
    runtime = Runtime(project, bus)
    service = DeployService(runtime, bus, TOKEN, None, ack_window=0.05)
    await runtime.start(service.choose([]))
    await service.start()
    yield runtime
    await service.stop()
    await runtime.stop()
    await bus.close()


@pytest.mark.parametrize("text", ["[" * 5000, "{a: " * 5000, "- " * 5000])
async def test_a_deeply_nested_manifest_deploy_gets_an_answer(
    deploys: Runtime, bus: Bus, text: str
) -> None:
    bundle = Bundle.create("hello", "1.0.0", text, {"hello.py": "def hi(e, c):\n    return 1\n"})
    request = {"token": TOKEN, "action": "deploy", "bundle": json.loads(bundle.to_json())}
    msg = await bus.nc.request("rosey.deploy", json.dumps(request).encode(), timeout=20)
    reply = json.loads(msg.data)
    assert reply["success"] is False
    assert reply["error_code"] == "INVALID_INPUT"
    assert reply["error"].endswith("YAML is nested too deeply")
    assert deploys.registry.get("hello") is None
