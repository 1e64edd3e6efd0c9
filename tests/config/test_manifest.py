from pathlib import Path
from textwrap import dedent

import pytest

from runtime.config import manifest
from runtime.errors import ManifestError

GOOD = """\
name: dice
version: "1.2.3"
description: Dice.
handler: dice:roll
commands:
  roll:
    rank: 0
    aliases: [r]
    usage: "!roll NdM"
    help: Rolls.
  flip:
    handler: dice:flip
subjects:
  - subject: cytube.user.join
    handler: dice:greet
timeout: 3
concurrency: 4
collections: [rolls]
config: {max: 10}
"""


def write(tmp_path: Path, text: str, name: str = "dice.yaml") -> Path:
    path = tmp_path / name
    path.write_text(dedent(text))
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ManifestError) as info:
        manifest.load(write(tmp_path, text))
    return info.value.problems


def test_valid_manifest_builds_function(tmp_path: Path) -> None:
    f = manifest.load(write(tmp_path, GOOD))
    assert (f.name, f.version, f.timeout, f.concurrency) == ("dice", "1.2.3", 3.0, 4)
    assert f.commands["roll"].aliases == ("r",)
    assert f.handler_for("roll") == "dice:roll"
    assert f.handler_for("flip") == "dice:flip"
    assert f.subjects[0].subject == "cytube.user.join"
    assert f.collections == ("rolls",)
    assert f.config == {"max": 10}
    assert not f.external
    assert f.handler_targets() == {"dice:roll", "dice:flip", "dice:greet"}


def test_defaults(tmp_path: Path) -> None:
    f = manifest.load(write(tmp_path, 'name: a\nversion: "0.1.0"\ndescription: x\nhandler: a:b\n'))
    assert f.timeout == 5.0
    assert f.concurrency == 16
    assert f.commands == {}


def test_rank_error_names_file_field_and_expectation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "manifests").mkdir()
    path = write(tmp_path / "manifests", GOOD.replace("rank: 0", "rank: 7"))
    with pytest.raises(ManifestError) as info:
        manifest.load(path.relative_to(tmp_path))
    assert str(info.value) == (
        "manifests/dice.yaml: commands.roll.rank: 7 is not one of [-1, 0, 1, 1.5, 2, 3, 4, 5, 255]"
    )


def test_unknown_fields_are_errors(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD.replace("    usage:", "    usgae:"))
    assert found[0].startswith("commands.roll.usgae: unknown field; expected one of: aliases,")
    top = problems(tmp_path, GOOD + "timeot: 3\n")
    assert top[0].startswith("timeot: unknown field")


def test_missing_required_fields(tmp_path: Path) -> None:
    found = problems(tmp_path, "name: x\nhandler: a:b\n")
    assert "description: required field is missing" in found
    assert "version: required field is missing" in found


def test_version_must_be_semver_string(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD.replace('"1.2.3"', "1.0"))
    assert found == [
        "version: 1.0 is not valid: expected a semantic version string such as "
        '"1.0.0" (quote it in YAML)'
    ]


def test_handler_format(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD.replace("handler: dice:roll", "handler: dice.roll"))
    assert found[0].startswith("handler: 'dice.roll' is not valid: expected \"module:function\"")


def test_bad_types_and_ranges(tmp_path: Path) -> None:
    assert problems(tmp_path, GOOD.replace("timeout: 3", "timeout: -1"))[0].startswith("timeout:")
    assert problems(tmp_path, GOOD.replace("concurrency: 4", "concurrency: many"))[0] == (
        "concurrency: 'many' is not of type 'integer'"
    )
    assert problems(tmp_path, GOOD.replace("aliases: [r]", "aliases: r"))[0] == (
        "commands.roll.aliases: 'r' is not of type 'array'"
    )
    assert problems(tmp_path, GOOD.replace("[rolls]", "[bad name]"))[0].startswith(
        "collections[0]:"
    )
    assert problems(tmp_path, GOOD.replace("cytube.user.join", "cytube..join"))[0].startswith(
        "subjects[0].subject:"
    )


def test_bad_command_name(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD.replace("  flip:", "  Flip Coin:"))
    assert any("Flip Coin" in p for p in found)


def test_yaml_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    found = problems(tmp_path, "name: x\nversion: [1\ndescription: y\n")
    assert found == ["line 3, column 12: YAML syntax error: expected ',' or ']', but got ':'"]
    found = problems(tmp_path, "name: x\n  bad: indent\n")
    assert found == ["line 2, column 6: YAML syntax error: mapping values are not allowed here"]


def test_duplicate_keys_are_errors(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD + "timeout: 4\n")
    assert found[0].startswith("line 20, column 1: YAML syntax error: duplicate key 'timeout'")


def test_empty_file(tmp_path: Path) -> None:
    assert problems(tmp_path, "") == ["the file is empty; expected name, version and description"]


def test_top_level_not_a_mapping(tmp_path: Path) -> None:
    assert problems(tmp_path, "- a\n- b\n") == ["(top level): ['a', 'b'] is not of type 'object'"]


def test_alias_clashes_within_manifest(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD.replace("aliases: [r]", "aliases: [flip]"))
    assert found == ["commands.roll.aliases: 'flip' is already a command"]


def test_local_manifest_needs_a_handler_for_each_command(tmp_path: Path) -> None:
    text = GOOD.replace("handler: dice:roll\n", "", 1)
    found = problems(tmp_path, text)
    assert "commands.roll.handler: required, since the manifest has no top-level handler" in found
    assert "subjects[0].handler: required, since the manifest has no top-level handler" not in found


def test_external_manifest(tmp_path: Path) -> None:
    f = manifest.load(
        write(
            tmp_path,
            """\
        name: weather
        version: "2.0.0"
        description: Answered by a separate process.
        commands:
          weather: {rank: 1}
        """,
        )
    )
    assert f.external
    assert f.handler_targets() == set()


def test_manifest_with_nothing_to_do(tmp_path: Path) -> None:
    assert problems(tmp_path, 'name: x\nversion: "1.0.0"\ndescription: y\n') == [
        "handler: a manifest needs a handler, commands or subjects"
    ]


def test_load_dir_reports_every_broken_file(tmp_path: Path) -> None:
    write(tmp_path, GOOD.replace("rank: 0", "rank: 9"), "a.yaml")
    write(tmp_path, "name: [\n", "b.yml")
    write(tmp_path, GOOD.replace("name: dice", "name: other"), "c.yaml")
    with pytest.raises(ManifestError) as info:
        manifest.load_dir(tmp_path)
    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert lines[0].endswith(
        "a.yaml: commands.roll.rank: 9 is not one of [-1, 0, 1, 1.5, 2, 3, 4, 5, 255]"
    )
    assert "b.yml: line 2" in lines[1]


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as info:
        manifest.load(tmp_path / "missing.yaml")
    assert "cannot read" in str(info.value)


def test_a_function_with_only_event_handlers_is_not_external(tmp_path: Path) -> None:
    # automod: no commands, one subject handler and one schedule; it runs in the runtime.
    f = manifest.load(
        write(
            tmp_path,
            """\
        name: watcher
        version: "1.0.0"
        description: Reads chat.
        subjects:
          - {subject: cytube.chat, handler: "watcher:on_chat"}
        schedules:
          - {every: 30s, handler: "watcher:tick"}
        """,
        )
    )
    assert not f.external
    assert f.handler_targets() == {"watcher:on_chat", "watcher:tick"}
