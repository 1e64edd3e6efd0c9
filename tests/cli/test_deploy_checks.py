"""`rosey deploy` asks the runtime first and checks only what differs from what it serves."""

import json
import signal
from pathlib import Path

from tests.clitools import rosey, start_server


def test_without_a_runtime_deploy_fails_before_checking(project: Path) -> None:
    result = rosey(project, "deploy", "functions/")
    assert result.returncode == 1
    assert "rosey run" in result.stderr
    assert "checking" not in result.stderr


def test_only_changed_functions_are_checked_and_sent(project: Path) -> None:
    with start_server(project) as server:
        dice = project / "functions" / "dice.py"
        dice.write_text(dice.read_text() + "\n# changed\n")
        done = rosey(project, "deploy", "functions/")
        assert done.returncode == 0, done.stderr
        checked = [line for line in done.stderr.splitlines() if line.startswith("checking ")]
        assert checked == ["checking dice 1.0.0 ..."]
        assert "dice: 1.0.0 → 1.0.0 in " in done.stdout
        assert "help: unchanged (1.0.0)" in done.stdout
        again = rosey(project, "deploy", "--json", "functions/")
        assert again.returncode == 0, again.stderr
        results = {r["name"]: r for r in json.loads(again.stdout)}
        assert results["dice"]["data"]["status"] == "unchanged"
        forced = rosey(project, "deploy", "--force", "manifests/help.yaml")
        assert forced.returncode == 0, forced.stderr
        assert "checking help 1.0.0 ..." in forced.stderr
        assert "help: 1.0.0 → 1.0.0 in " in forced.stdout
        server.send_signal(signal.SIGTERM)
        assert server.wait(20) == 0


def test_broken_functions_are_all_reported_and_none_sent(project: Path) -> None:
    with start_server(project) as server:
        (project / "functions" / "dice.py").write_text("def roll(event, ctx)\n")
        (project / "functions" / "help.py").write_text("import nothing_such_module\n")
        result = rosey(project, "deploy", "functions/")
        assert result.returncode == 1
        assert "deploying" not in result.stderr
        assert "dice: cannot load" in result.stderr
        assert "help: cannot load" in result.stderr
        server.send_signal(signal.SIGTERM)
        assert server.wait(20) == 0
