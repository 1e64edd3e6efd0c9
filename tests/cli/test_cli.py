import json
import re
import signal
from pathlib import Path

import pytest
from click.testing import CliRunner

from runtime.cli.main import cli
from tests.clitools import ROOT, rosey, start_server


def test_console_run_answers_piped_lines(project: Path) -> None:
    result = rosey(project, "run", stdin="!roll 2d6\n!help\n")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("rosey: console rolled 2d6: [") for line in lines), result.stdout
    [commands] = [line for line in lines if line.startswith("rosey: Commands: ")]
    assert {"!flip", "!help", "!roll"} <= set(re.findall(r"![\w-]+", commands.split(" Try ")[0]))
    assert "nats://127.0.0.1:" in result.stderr
    assert not (project / ".rosey" / "runtime.json").exists()


def test_console_rank_option(project: Path) -> None:
    (project / "manifests" / "mod.yaml").write_text(
        'name: mod\nversion: "1.0.0"\ndescription: m\nhandler: "mod:f"\ncommands:\n  kick: {rank: 2}\n'
    )
    (project / "functions" / "mod.py").write_text("def f(event, ctx):\n    return 'kicked'\n")
    low = rosey(project, "run", stdin="!kick\n")
    high = rosey(project, "run", "--rank", "2", stdin="!kick\n")
    assert (
        low.stdout.strip()
        == "rosey: console: !kick needs moderator rank or higher (you are guest)."
    )
    assert high.stdout.strip() == "rosey: kicked"


def test_broken_manifest_exits_non_zero_with_the_message(project: Path) -> None:
    path = project / "manifests" / "dice.yaml"
    path.write_text(path.read_text().replace("rank: 0", "rank: 7", 1))
    result = rosey(project, "run", stdin="!roll\n")
    assert result.returncode != 0
    assert (
        "manifests/dice.yaml: commands.roll.rank: 7 is not one of [-1, 0, 1, 1.5, 2, 3, 4, 5, 255]"
    ) in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_config_names_the_key(project: Path) -> None:
    (project / "rosey.yaml").write_text("nats:\n  ulr: nats://x\n")
    result = rosey(project, "run")
    assert result.returncode != 0
    assert (
        "rosey.yaml: nats.ulr: unknown key; expected one of: connect_timeout, creds, nkey_seed, password, tls_ca, tls_cert, tls_key, token, url, user"
        in result.stderr
    )


def test_invoke_without_a_running_instance(project: Path) -> None:
    result = rosey(project, "invoke", "roll", "3d4", "--rank", "0")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("console rolled 3d4: [")


def test_invoke_denied_and_unknown(project: Path) -> None:
    (project / "manifests" / "mod.yaml").write_text(
        'name: mod\nversion: "1.0.0"\ndescription: m\nhandler: "mod:f"\ncommands:\n  kick: {rank: 2}\n'
    )
    (project / "functions" / "mod.py").write_text("def f(event, ctx):\n    return 'kicked'\n")
    denied = rosey(project, "invoke", "kick")
    assert denied.returncode == 1
    assert "PERMISSION_DENIED" in denied.stderr
    unknown = rosey(project, "invoke", "nothing")
    assert unknown.returncode == 1
    assert "no function has a command 'nothing'" in unknown.stderr


def test_invoke_finds_the_running_instance(project: Path) -> None:
    state = project / ".rosey" / "runtime.json"
    with start_server(project) as server:
        recorded = json.loads(state.read_text())
        assert recorded["pid"] == server.pid
        result = rosey(project, "invoke", "--json", "flip")
        reply = json.loads(result.stdout)
        assert reply["success"] is True
        assert reply["data"]["replies"][0].startswith("console flipped a coin: ")
        assert server.stdin is not None
        server.stdin.close()
        assert server.wait(20) == 0
    assert not state.exists()


def test_sigterm_stops_cleanly_without_console(project: Path) -> None:
    with start_server(project, "--no-console") as server:
        assert server.stdin is not None
        server.stdin.close()  # end of input does not stop a server without console chat
        # It still answers after its input has ended (it never reads it).
        assert rosey(project, "invoke", "flip").returncode == 0
        assert server.poll() is None
        assert (project / ".rosey" / "runtime.json").exists()
        server.send_signal(signal.SIGTERM)
        assert server.wait(20) == 0
    assert not (project / ".rosey" / "runtime.json").exists()


def test_validate_ls_and_contract() -> None:
    runner = CliRunner()
    config = ["--config", str(ROOT / "rosey.yaml")]
    result = runner.invoke(cli, ["validate", *config, "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["valid"] is True
    assert {"dice", "help"} <= set(answer["functions"])
    assert runner.invoke(cli, ["contract", "--markdown"]).output.startswith(
        "# Rosey's NATS contract"
    )


def test_validate_reports_broken_manifest(project: Path) -> None:
    (project / "manifests" / "bad.yaml").write_text("name: bad\nversion: 1\n")
    result = rosey(project, "validate")
    assert result.returncode == 1
    assert "manifests/bad.yaml: description: required field is missing" in result.stderr


def test_unreachable_nats_is_a_clear_error(project: Path) -> None:
    from runtime.host.servers import free_port

    (project / "rosey.yaml").write_text(f"nats: {{url: 'nats://127.0.0.1:{free_port()}'}}\n")
    result = rosey(project, "invoke", "roll")
    assert result.returncode == 1
    assert "NATS connect failed: nats://127.0.0.1:" in result.stderr
    assert "Traceback" not in result.stderr


async def test_sigterm_drains_in_flight_work_and_announces_shutdown(project: Path) -> None:
    import asyncio

    from runtime.wire.bus import Bus

    (project / "manifests" / "slow.yaml").write_text(
        'name: slow\nversion: "1.0.0"\ndescription: s\nhandler: "slow:f"\ncommands:\n  slow: {}\n'
    )
    (project / "functions" / "slow.py").write_text(
        "import asyncio\n\nasync def f(event, ctx):\n"
        "    await ctx.publish('test.slow.started', {})\n"
        "    await asyncio.sleep(1)  # still running when SIGTERM comes\n"
        "    return 'finished'\n"
    )
    with start_server(project, "--no-console") as server:
        url = json.loads((project / ".rosey" / "runtime.json").read_text())["nats_url"]
        bus = await Bus.connect(url, name="test-sigterm", reconnect=False)
        shutdown: list[dict[str, object]] = []

        async def on_shutdown(msg: object) -> None:
            shutdown.append(json.loads(msg.data))  # type: ignore[attr-defined]

        started = asyncio.Event()

        async def on_started(msg: object) -> None:
            started.set()

        await bus.nc.subscribe("platform.shutdown", cb=on_shutdown)
        await bus.nc.subscribe("test.slow.started", cb=on_started)
        await bus.flush()
        payload = {"command": "slow", "args": [], "user": "u", "rank": 0}
        pending = asyncio.create_task(bus.request("plugin.slow.command", payload, 20))
        async with asyncio.timeout(10):
            await started.wait()  # the command is in the handler
        server.send_signal(signal.SIGTERM)
        reply = await pending
        assert reply == {"success": True, "data": {"replies": ["finished"]}}
        assert await asyncio.to_thread(server.wait, 20) == 0
        await bus.close()
    assert [s["reason"] for s in shutdown] == ["signal"]


def test_a_second_run_in_the_same_folder_is_refused(project: Path) -> None:
    with start_server(project, "--no-console") as server:
        second = rosey(project, "run", "--no-console")
        assert second.returncode == 1
        assert f"Rosey is already running from this folder (pid {server.pid})" in second.stderr
        assert rosey(project, "invoke", "flip").returncode == 0  # the first one is unharmed
        server.send_signal(signal.SIGTERM)
        assert server.wait(20) == 0


# A legacy plugin whose command a function has (issue 15, item 6), and `rosey validate`
# checking the code (item 7).

QUOTE_CLASH = (
    "plugin 'quote-db' (plugins/quote-db/__init__.py): command 'quote' is already a command of "
    "function 'quotes' (manifests/quotes.yaml)"
)


def with_quote_db(project: Path) -> Path:
    import shutil

    shutil.copytree(
        ROOT / "tests" / "legacy_plugins" / "quote-db", project / "plugins" / "quote-db"
    )
    (project / "rosey.yaml").write_text("log_level: WARNING\nplugins:\n  enabled: [quote-db]\n")
    return project


def test_run_refuses_a_plugin_whose_command_a_function_has(project: Path) -> None:
    result = rosey(with_quote_db(project), "run", stdin="!quote\n")
    assert result.returncode == 1, result.stderr
    assert QUOTE_CLASH in result.stderr
    assert "Traceback" not in result.stderr
    assert "rosey: " not in result.stdout  # nothing was answered
    assert not (project / ".rosey" / "runtime.json").exists()


def test_validate_reports_a_plugin_whose_command_a_function_has(project: Path) -> None:
    result = rosey(with_quote_db(project), "validate")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert QUOTE_CLASH in lines
    assert lines[-1] == "Error: 3 problems found"  # quote, addquote and delquote
    (project / "plugins" / "quote-db" / "__init__.py").write_text(
        (project / "plugins" / "quote-db" / "__init__.py")
        .read_text()
        .replace('["quote", "addquote", "delquote"]', '["saying"]')
    )
    fixed = rosey(project, "validate")
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.stdout.splitlines()[-1] == "1 legacy plugins valid: quote-db"


def test_validate_imports_every_function_in_one_process(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    from runtime.deploy import check

    functions = project / "functions"
    (functions / "why.py").write_text((functions / "why.py").read_text() + "\ndef oops(:\n")
    lines = (functions / "dice.py").read_text().count("\n")
    (functions / "dice.py").write_text(
        (functions / "dice.py").read_text() + "import no_such_module_at_all\n"
    )
    (functions / "seen.py").write_text(  # what code prints does not confuse the check
        (functions / "seen.py").read_text() + "print('hello from seen')\n"
    )
    started: list[list[str]] = []
    real = subprocess.Popen

    def popen(args: list[str], **options: object) -> subprocess.Popen[bytes]:
        started.append(args)
        return real(args, **options)  # type: ignore[call-overload, no-any-return]

    monkeypatch.setattr(check.subprocess, "Popen", popen)
    monkeypatch.chdir(project)
    result = CliRunner().invoke(cli, ["validate"])
    assert result.exit_code == 1, result.output
    assert len(started) == 1  # one process imports them all
    why_lines = (functions / "why.py").read_text().count("\n")
    problems = result.output.splitlines()
    assert problems == [
        "function 'dice': cannot load dice: ModuleNotFoundError at "
        f"functions/dice.py:{lines + 1}: No module named 'no_such_module_at_all'",
        f"function 'why': cannot load why: syntax error at functions/why.py:{why_lines}: "
        "invalid syntax",
        "Error: 2 problems found",
    ]
