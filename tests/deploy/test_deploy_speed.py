"""What makes start-up and deploys fast (issue 16) without changing what they do: each manifest
parsed once, the import check of a deploy's bundles in one process."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from runtime.config import manifest
from runtime.core.bundle import Bundle, build
from runtime.core.runtime import Runtime
from runtime.deploy import check
from runtime.deploy.service import DeployService
from runtime.wire.bus import Bus
from tests.conftest import write_project


def source(name: str) -> str:
    return f'name: {name}\nversion: "1.0.0"\ndescription: x\nhandler: "{name}:f"\n'


def code(reply: str) -> str:
    return f"def f(event, ctx):\n    return {reply!r}\n"


async def test_start_up_parses_each_manifest_once(
    tmp_path: Path, bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = ["a", "b", "c"]
    settings = write_project(
        tmp_path, {n: source(n) for n in names}, {f"{n}.py": code(n) for n in names}
    )
    parsed: list[str] = []
    real = manifest.parse_yaml

    def counting(text: str, where: str) -> Any:
        parsed.append(where)
        return real(text, where)

    monkeypatch.setattr(manifest, "parse_yaml", counting)
    service = DeployService(Runtime(settings, bus), bus, "token")
    chosen = service.choose(manifest.read_dir(settings.manifests_dir))
    assert sorted(f.name for f, _ in chosen) == names
    assert len(parsed) == len(names)
    # The hashes are those of the bundles `rosey deploy` would make of the same files.
    monkeypatch.setattr(manifest, "parse_yaml", real)
    for name in names:
        path = settings.manifests_dir / f"{name}.yaml"
        assert service.hashes[name] == build(path, settings.functions_dir).hash


def bundle(name: str, text: str) -> Bundle:
    return Bundle.create(name, "1.0.0", source(name), {f"{name}.py": text})


def test_bundles_are_checked_in_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[list[str]] = []
    real = subprocess.Popen

    def counting(args: list[str], **options: Any) -> Any:
        started.append(args)
        return real(args, **options)

    monkeypatch.setattr(check.subprocess, "Popen", counting)
    bundles = [
        bundle("fine", code("ok")),
        bundle("broken", "def f(event, ctx):\n    return (\n"),
        bundle("missing", "x = 1\n"),
        bundle("also", code("ok")),
    ]
    problems = check.check_bundles(bundles, timeout=10)
    assert len(started) == 1
    assert sorted(problems) == ["broken", "missing"]
    assert problems["broken"].startswith(
        "cannot load broken: syntax error at functions/broken.py:2"
    )
    assert problems["missing"] == "cannot load missing:f: functions/missing.py has no 'f'"


def test_a_bundle_whose_import_ends_the_process_is_reported_and_the_rest_checked() -> None:
    bundles = [
        bundle("dies", "import os\nos._exit(3)\n"),
        bundle("after", "def f(event, ctx)\n    pass\n"),
        bundle("fine", code("ok")),
    ]
    problems = check.check_bundles(bundles, timeout=10)
    assert sorted(problems) == ["after", "dies"]
    assert problems["dies"].startswith("the import check crashed")
    assert "syntax error at functions/after.py:1" in problems["after"]


def test_a_bundle_with_a_schema_error_needs_no_process() -> None:
    broken = Bundle.create("bad", "1.0.0", source("bad") + "timeout: -1\n", {"bad.py": code("x")})
    problems = check.check_bundles([broken])
    assert problems == {"bad": "bad.yaml: timeout: -1 is less than or equal to the minimum of 0"}
