"""`rosey` loads only what a command uses: help and the operator commands never load the server."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.clitools import ROOT, clean_env, rosey

SERVER = ("aiohttp", "socketio", "prometheus_client", "runtime.host.serve")

# Runs `rosey ARGS...` in a fresh interpreter, then prints its output and which of SERVER loaded.
SCRIPT = """
import json, sys
from click.testing import CliRunner
from runtime.cli.main import cli
result = CliRunner().invoke(cli, sys.argv[2:])
loaded = [m for m in json.loads(sys.argv[1]) if m in sys.modules]
print(json.dumps({"code": result.exit_code, "output": result.output, "loaded": loaded}))
"""


def run_in_fresh_python(*args: str, cwd: Path = ROOT) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(SERVER), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, object] = json.loads(done.stdout)
    return answer


COMMANDS = [
    "db",
    "db get",
    "deploy",
    "logs",
    "ls",
    "rollback",
    "remove",
    "enable",
    "dev",
    "validate",
    "contract",
    "invoke",
    "run",
    "worker",
]


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_does_not_load_the_server(command: str) -> None:
    answer = run_in_fresh_python(*command.split(), "--help")
    assert answer["code"] == 0, answer["output"]
    assert str(answer["output"]).startswith("Usage: ")
    assert answer["loaded"] == []


def test_validate_and_contract_run_without_the_server(project: Path) -> None:
    validated = run_in_fresh_python("validate", "--json", cwd=project)
    assert validated["code"] == 0, validated["output"]
    assert json.loads(str(validated["output"]))["valid"] is True
    assert validated["loaded"] == []
    contract = run_in_fresh_python("contract", "--markdown")
    assert str(contract["output"]).startswith("# Rosey's NATS contract")
    assert contract["loaded"] == []


def test_the_console_script_lists_every_command(project: Path) -> None:
    result = rosey(project, "--help")
    assert result.returncode == 0, result.stderr
    listed = {line.split()[0] for line in result.stdout.split("Commands:")[1].splitlines() if line}
    assert set(COMMANDS) - {"db get"} <= listed


# What `rosey --help` and `rosey --version` must not load: they start in a tenth of a second.
HEAVY = (*SERVER, "nats", "redis", "jsonschema", "yaml", "runtime.config.settings")


@pytest.mark.parametrize("args", [["--help"], ["--version"]])
def test_help_and_version_load_no_client_library(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(HEAVY), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["code"] == 0, answer["output"]
    assert answer["loaded"] == []


@pytest.mark.parametrize("width", [45, 80, 200])
def test_the_listed_help_of_lazy_commands_is_their_own(width: int) -> None:
    import importlib

    import click

    from runtime.cli.main import LAZY_COMMANDS, LAZY_HELP

    assert set(LAZY_HELP) <= set(LAZY_COMMANDS)
    for name, target in LAZY_COMMANDS.items():
        module, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        if name in LAZY_HELP:
            stand_in = click.Command(name, help=LAZY_HELP[name])
            assert stand_in.get_short_help_str(width) == command.get_short_help_str(width), name


def test_the_command_list_is_the_one_click_would_print() -> None:
    import click
    from click.testing import CliRunner

    from runtime.cli.main import LazyGroup, cli

    class Eager(LazyGroup):
        format_commands = click.Group.format_commands

    eager = Eager(name=cli.name, commands=cli.commands, help=cli.help, params=cli.params)
    assert (
        CliRunner().invoke(cli, ["--help"]).output == CliRunner().invoke(eager, ["--help"]).output
    )
