"""The fast path of manifests (issue 16): libyaml's parser with the same strict duplicate-key
check, and the compiled schema check, which never accepts what jsonschema refuses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from runtime import schemas
from runtime.config import manifest
from runtime.errors import ManifestError
from tests.clitools import ROOT

BASE: dict[str, Any] = {"name": "a", "version": "1.0.0", "description": "x", "handler": "a:f"}

# Instances on the edges where a compiled check could differ from jsonschema: booleans as numbers
# and enum members, floats as integers, NaN, keys that are not strings, trailing newlines,
# duplicates by equality, `$` in patterns.
EDGES: list[dict[str, Any]] = [
    {},
    {"timeout": True},
    {"timeout": 1.0},
    {"timeout": float("nan")},
    {"timeout": 0},
    {"concurrency": 2.0},
    {"concurrency": 2.5},
    {"concurrency": True},
    {"name": "a\n"},
    {"version": "1.0.0\n"},
    {"handler": "a:f\n"},
    {"commands": {"x": {"rank": True}}},
    {"commands": {"x": {"rank": 1.0}}},
    {"commands": {"x": {"rank": 7}}},
    {"commands": {1: {}}},
    {"commands": {"x": {"aliases": ["y", "y"]}}},
    {"collections": ["a", "a"]},
    {"actions": [True]},
    {"subjects": [{"subject": "cytube.$x"}]},
    {"subjects": [{"subject": "cytube.%x"}]},
    {"subjects": [{"subject": "a.>"}]},
    {"config": {1: [None, {"deep": float("inf")}]}},
    {"memory": "256MB"},
    {"memory": "256 XB"},
    {"indexes": {"c": ["id"]}, "collections": ["c"]},
    {"bogus": 1},
    {"schedules": [{"every": "5s"}]},
    {"schedules": [{"every": 5}]},
    {"schedules": [{"cron": "* * * * *", "every": "5s"}]},
    {"reply": {"max_lines": 0}},
    {"quarantine": {"failures": 1.5}},
]


@pytest.mark.parametrize("extra", EDGES, ids=repr)
def test_the_compiled_check_accepts_only_what_jsonschema_accepts(extra: dict[str, Any]) -> None:
    instance = {**BASE, **extra}
    problems = schemas.problems(schemas.validator("manifest.json"), instance)
    if schemas.compiled("manifest.json")(instance):
        assert problems == []
    assert schemas.problems_of("manifest.json", instance) == problems


def test_every_shipped_manifest_passes_the_compiled_check() -> None:
    for path in manifest.paths(ROOT / "manifests"):
        assert schemas.compiled("manifest.json")(yaml.safe_load(path.read_text())), path


def test_the_libyaml_loader_refuses_duplicate_keys_too() -> None:
    if not getattr(yaml, "__with_libyaml__", False):
        pytest.skip("PyYAML is built without libyaml here")
    assert issubclass(manifest._FastLoader, yaml.CSafeLoader)
    with pytest.raises(yaml.constructor.ConstructorError) as info:
        yaml.load("a: 1\nb:\n  c: 1\n  c: 2\n", Loader=manifest._FastLoader)
    assert "duplicate key 'c'" in str(info.value)


def test_a_deep_value_libyaml_reads_is_still_too_deep(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    depth = manifest.MAX_DEPTH + 1
    path.write_text("x: " + "[" * depth + "]" * depth + "\n")
    with pytest.raises(ManifestError) as info:
        manifest.load(path)
    assert info.value.problems == ["YAML is nested too deeply"]
    path.write_text("x: " + "[" * (depth - 2) + "]" * (depth - 2) + "\n")
    with pytest.raises(ManifestError) as info:
        manifest.load(path)
    assert info.value.problems[0] == "name: required field is missing"


def test_valid_manifests_load_without_jsonschema() -> None:
    script = (
        "import sys, json\nfrom pathlib import Path\nfrom runtime.config import manifest\n"
        "names = [f.name for f in manifest.load_dir(Path(sys.argv[1]))]\n"
        "print(json.dumps([names, 'jsonschema' in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(ROOT / "manifests")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    names, loaded = json.loads(done.stdout)
    assert "dice" in names
    assert loaded is False


def test_read_gives_the_function_and_the_text_it_was_parsed_from(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    text = "name: a\nversion: '1.0.0'\ndescription: x\nhandler: a:f\n"
    path.write_text(text)
    read = manifest.read(path)
    assert read.text == text
    assert read.function == manifest.from_text(text, manifest.display_path(path))
    assert manifest.read_dir(tmp_path) == [read]
