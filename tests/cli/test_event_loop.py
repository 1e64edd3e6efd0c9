"""`rosey run`, `rosey invoke` and isolated workers run their handlers on uvloop's event loop."""

from pathlib import Path

import pytest

from tests.clitools import rosey

LOOP = "async def loop(event, ctx):\n    import asyncio\n    return type(asyncio.get_running_loop()).__module__\n"


def manifest(isolation: str) -> str:
    return (
        'name: loop\nversion: "1.0.0"\ndescription: which loop\nhandler: "loop:loop"\n'
        f"isolation: {isolation}\ncommands:\n  loop: {{}}\n"
    )


@pytest.mark.parametrize("isolation", ["none", "process"])
def test_invoke_runs_handlers_on_uvloop(project: Path, isolation: str) -> None:
    (project / "manifests" / "loop.yaml").write_text(manifest(isolation))
    (project / "functions" / "loop.py").write_text(LOOP)
    result = rosey(project, "invoke", "loop")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "uvloop"


def test_run_serves_on_uvloop(project: Path) -> None:
    (project / "manifests" / "loop.yaml").write_text(manifest("none"))
    (project / "functions" / "loop.py").write_text(LOOP)
    result = rosey(project, "run", stdin="!loop\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "rosey: uvloop"
