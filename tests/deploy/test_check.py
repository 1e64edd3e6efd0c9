"""`rosey validate`'s import check: every function's code in one throwaway process, each problem
reported, also when an import hangs or ends the process (issue 15, item 7)."""

from __future__ import annotations

from pathlib import Path

from runtime.deploy import check
from tests.conftest import write_project


def manifest(name: str) -> str:
    return f'name: {name}\nversion: "1.0.0"\ndescription: x\nhandler: "{name}:f"\n'


def test_a_hanging_or_dying_import_is_reported_and_the_rest_still_checked(
    tmp_path: Path,
) -> None:
    code = {
        "hangs.py": "import time\ntime.sleep(60)\n",  # the hang is what is under test
        "dies.py": "import os\nos._exit(3)\n",
        "broken.py": "def f(event, ctx):\n    return (\n",
        "fine.py": "def f(event, ctx):\n    return 'ok'\n",
    }
    names = ["hangs", "dies", "broken", "fine"]
    settings = write_project(tmp_path, {n: manifest(n) for n in names}, code)
    jobs = [
        check.Job(n, str(settings.manifests_dir / f"{n}.yaml"), str(settings.functions_dir))
        for n in names
    ]
    problems = check.check_all(jobs, timeout=2)
    assert problems[0] == "function 'hangs': importing the code took over 2s"
    assert problems[1].startswith("function 'dies': the import check crashed: ")
    assert problems[2].startswith("function 'broken': cannot load broken: syntax error at ")
    assert problems[2].endswith("functions/broken.py:2: '(' was never closed")
    assert len(problems) == 3  # fine imports


def test_validate_reports_every_problem_one_line_each(tmp_path: Path) -> None:
    code = {"a.py": "import json\nraise ValueError('no')\n", "b.py": "x = (\n"}
    manifests = {"a": manifest("a"), "b": manifest("b"), "c": manifest("c").replace("c:f", "b:f")}
    settings = write_project(tmp_path, manifests, code)
    found = check.validate(settings)
    assert found.functions == ["a", "b", "c"]
    assert len(found.problems) == 3
    assert all("\n" not in p for p in found.problems)
    assert "function 'a': cannot load a: ValueError at " in found.problems[0]
    assert found.problems[0].endswith("functions/a.py:2: no")
    assert "functions/b.py:1: '(' was never closed" in found.problems[1]
    assert "functions/b.py:1: '(' was never closed" in found.problems[2]
