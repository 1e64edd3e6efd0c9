"""Bundles from the outside: a hash or a file path that would leave the data folder, a bundle whose
hash does not match its content, symbolic links and special files in what is bundled."""

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest

from runtime.config import manifest
from runtime.core.bundle import Bundle, build, content_hash
from runtime.core.runtime import Runtime
from runtime.deploy.collect import collect
from runtime.deploy.service import DeployService
from runtime.errors import DeployError
from runtime.legacy import plugin as legacy
from runtime.wire.bus import Bus
from tests.conftest import write_project

TOKEN = "s3cret"
MANIFEST = dedent("""\
    name: hello
    version: "1.0.0"
    description: Says hi.
    handler: hello:hi
    commands:
      hi: {}
    """)
CODE = "def hi(event, ctx):\n    return 'hi'\n"


def good() -> Bundle:
    return Bundle.create("hello", "1.0.0", MANIFEST, {"hello.py": CODE})


def raw(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(good().to_json())
    data.update(changes)
    return data


def files_outside(root: Path, inside: Path) -> set[Path]:
    return {p for p in root.rglob("*") if not p.is_relative_to(inside)}


# Received bundles


def test_a_good_bundle_round_trips() -> None:
    bundle = good()
    assert Bundle.from_json(bundle.to_json()) == bundle


@pytest.mark.parametrize(
    "hash_",
    ["../../../tmp/x", "/tmp/x", "..", "", "0123456789ABCDEF", "0123456789abcdef0", 5],
)
def test_a_hash_that_is_not_a_hex_digest_is_refused(hash_: Any) -> None:
    with pytest.raises(DeployError) as info:
        Bundle.from_json(raw(hash=hash_))
    assert f"hash {hash_!r} is not a 16-digit hex digest" in str(info.value)


@pytest.mark.parametrize("name", ["../../x", "/abs", "Hello", "a/b", "", "x" * 65, None])
def test_a_name_manifests_would_refuse_is_refused(name: Any) -> None:
    with pytest.raises(DeployError) as info:
        Bundle.from_json(raw(name=name))
    assert f"name {name!r} must start with a lowercase letter" in str(info.value)


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("../../escape.py", "has an empty, '.' or '..' part"),
        ("pkg/../../escape.py", "has an empty, '.' or '..' part"),
        ("/tmp/escape.py", "is absolute"),
        ("pkg//x.py", "has an empty, '.' or '..' part"),
        ("./x.py", "has an empty, '.' or '..' part"),
        ("..\\x.py", "is empty or holds a NUL or a backslash"),
        ("x\0.py", "is empty or holds a NUL or a backslash"),
        ("", "is empty or holds a NUL or a backslash"),
    ],
)
def test_file_paths_that_leave_the_bundle_are_refused(path: str, problem: str) -> None:
    # Hashed correctly, so only the path check can refuse it.
    files = {"hello.py": CODE, path: "x = 1\n"}
    data = raw(files=files, hash=content_hash(MANIFEST, files))
    with pytest.raises(DeployError) as info:
        Bundle.from_json(data)
    assert f"file path {path!r} {problem}" in str(info.value)
    with pytest.raises(DeployError):
        Bundle.create("hello", "1.0.0", MANIFEST, files)


@pytest.mark.parametrize(
    "change",
    [
        {"files": {"hello.py": "import os\ndef hi(event, ctx):\n    return os.getcwd()\n"}},
        {"files": {"hello.py": CODE, "extra.py": "x = 1\n"}},
        {"manifest": MANIFEST.replace("Says hi.", "Says something else.")},
    ],
)
def test_a_bundle_whose_hash_does_not_match_its_content_is_refused(
    change: dict[str, Any],
) -> None:
    with pytest.raises(DeployError) as info:
        Bundle.from_json(raw(**change))
    assert f"bundle hash {good().hash} does not match its content" in str(info.value)


@pytest.mark.parametrize("data", ["[]", "not json", "[" * 10_000, '"x"'])
def test_a_bundle_that_is_not_an_object_is_refused(data: str) -> None:
    with pytest.raises(DeployError) as info:
        Bundle.from_json(data)
    assert "malformed bundle" in str(info.value)


# Over NATS


@pytest.fixture
async def service(tmp_path: Path, nats_url: str) -> AsyncIterator[tuple[Runtime, Path]]:
    settings = write_project(tmp_path / "project", {}, {})
    bus = await Bus.connect(nats_url)
    runtime = Runtime(settings, bus)
    deploys = DeployService(runtime, bus, TOKEN, None, ack_window=0.05)
    await runtime.start(deploys.choose([]))
    await deploys.start()
    yield runtime, settings.data_dir
    await deploys.stop()
    await runtime.stop()
    await bus.close()


async def send(bus: Bus, bundle: dict[str, Any]) -> dict[str, Any]:
    request = {"token": TOKEN, "action": "deploy", "bundle": bundle}
    msg = await bus.nc.request("rosey.deploy", json.dumps(request).encode(), timeout=20)
    reply: dict[str, Any] = json.loads(msg.data)
    return reply


async def test_deploy_with_a_traversal_hash_writes_nothing_outside_the_data_folder(
    service: tuple[Runtime, Path], bus: Bus, tmp_path: Path
) -> None:
    runtime, data_dir = service
    before = files_outside(tmp_path, data_dir)
    for hash_ in ("../../../escape", "../../../../escape", str(tmp_path / "escape")):
        reply = await send(bus, raw(hash=hash_))
        assert reply["success"] is False
        assert f"malformed bundle: hash {hash_!r} is not a 16-digit hex digest" in reply["error"]
    files = {"../../../escape.py": "x = 1\n", "hello.py": CODE}
    reply = await send(bus, raw(files=files))
    assert reply["success"] is False
    assert "file path '../../../escape.py' has an empty, '.' or '..' part" in reply["error"]
    assert files_outside(tmp_path, data_dir) == before
    assert not (tmp_path / "escape").exists()
    assert runtime.registry.get("hello") is None


async def test_deploy_of_a_tampered_bundle_is_refused(
    service: tuple[Runtime, Path], bus: Bus
) -> None:
    runtime, data_dir = service
    tampered = raw(files={"hello.py": "def hi(event, ctx):\n    return 'pwned'\n"})
    reply = await send(bus, tampered)
    assert reply["success"] is False
    assert f"bundle hash {good().hash} does not match its content" in reply["error"]
    assert runtime.registry.get("hello") is None
    assert not (data_dir / "bundles" / "hello").exists()
    # The honest bundle still deploys.
    reply = await send(bus, raw())
    assert reply["success"] is True, reply
    assert (data_dir / "bundles" / "hello" / good().hash / "hello.py").read_text() == CODE


# From disk


def project(tmp_path: Path) -> tuple[Path, Path]:
    settings = write_project(tmp_path / "project", {"hello": MANIFEST}, {})
    return settings.manifests_dir, settings.functions_dir


def test_a_symlinked_function_file_is_refused_by_build_and_collect(tmp_path: Path) -> None:
    manifests_dir, functions_dir = project(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("password\n")
    (functions_dir / "hello.py").symlink_to(secret)
    with pytest.raises(DeployError) as info:
        build(manifests_dir / "hello.yaml", functions_dir)
    assert f"{functions_dir / 'hello.py'} is a symbolic link" in str(info.value)
    with pytest.raises(DeployError) as info:
        collect([functions_dir], manifests_dir, functions_dir)
    assert "is a symbolic link" in str(info.value)


def test_a_symlinked_package_folder_is_refused(tmp_path: Path) -> None:
    manifests_dir, functions_dir = project(tmp_path)
    real = tmp_path / "elsewhere" / "hello"
    real.mkdir(parents=True)
    (real / "__init__.py").write_text(CODE)
    (functions_dir / "hello").symlink_to(real, target_is_directory=True)
    with pytest.raises(DeployError) as info:
        build(manifests_dir / "hello.yaml", functions_dir)
    assert f"{functions_dir / 'hello'} is a symbolic link" in str(info.value)


def test_a_special_file_is_refused(tmp_path: Path) -> None:
    manifests_dir, functions_dir = project(tmp_path)
    os.mkfifo(functions_dir / "hello.py")  # reading it would hang the deploy
    with pytest.raises(DeployError) as info:
        build(manifests_dir / "hello.yaml", functions_dir)
    assert f"{functions_dir / 'hello.py'} is not a regular file" in str(info.value)


def test_a_real_file_still_builds(tmp_path: Path) -> None:
    manifests_dir, functions_dir = project(tmp_path)
    (functions_dir / "hello.py").write_text(CODE)
    built = build(manifests_dir / "hello.yaml", functions_dir)
    assert (built.hash, built.files) == (good().hash, {"hello.py": CODE})


def test_a_symlink_in_a_legacy_plugin_package_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "plugins" / "plug"
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("PLUGIN_INFO = {}\n")
    (tmp_path / "secret.txt").write_text("password\n")
    (folder / "notes.txt").symlink_to(tmp_path / "secret.txt")
    function = manifest.parse(
        {"name": "plug", "version": "1.0.0", "description": "x", "commands": {"hi": {}}}
    )
    with pytest.raises(DeployError) as info:
        legacy.bundle_of(folder, function)
    assert f"{folder / 'notes.txt'} is a symbolic link" in str(info.value)
    (folder / "notes.txt").unlink()
    assert "__init__.py" in legacy.bundle_of(folder, function).files


def test_a_bundle_with_a_lone_surrogate_is_refused() -> None:
    data = raw(files={"hello.py": "x = '\ud800'\n"})
    with pytest.raises(DeployError) as info:
        Bundle.from_json(json.dumps(data))
    assert "malformed bundle: not UTF-8 text" in str(info.value)
