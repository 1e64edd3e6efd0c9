"""The import check of code, run in a throwaway process (`python -m runtime.deploy.check`): the
bundles of a deploy, or every function and plugin of a project for `rosey validate`; each time all
of them in one process."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from runtime.config import manifest
from runtime.config.manifest import display_path
from runtime.config.settings import Settings
from runtime.core import loader
from runtime.core.bundle import Bundle, check_elsewhere
from runtime.core.registry import Registry
from runtime.errors import DeployError, LoadError, ManifestError, RoseyError
from runtime.legacy import plugin as legacy


def precheck(bundle: Bundle, timeout: float = 30.0) -> None:
    """Import the bundle in a throwaway process; raises with file and line on any problem."""
    bundle.function()  # schema errors need no process
    check_elsewhere(bundle.name, ["runtime.deploy.check"], bundle.to_json(), timeout)


def check_bundles(bundles: Sequence[Bundle], timeout: float = 30.0) -> dict[str, str]:
    """Import every bundle's code in one throwaway process (as `rosey deploy` does before it
    sends them): what is wrong with each that fails, by name, with file and line. An import
    that hangs over `timeout` seconds, or ends the process, is that bundle's problem and the
    bundles after it are checked in a fresh process."""
    problems: dict[str, str] = {}
    for b in bundles:
        try:
            b.function()  # schema errors need no process
        except RoseyError as e:
            problems[b.name] = str(e).removeprefix(f"{b.name}: ")
    jobs = [Job(b.name, bundle=b.to_json()) for b in bundles if b.name not in problems]
    pending = list(jobs)
    while pending:
        answers, crash = _run(pending, timeout)
        for job, answer in zip(pending, answers, strict=False):
            if answer:
                problems[job.name] = answer
        pending = pending[len(answers) :]
        if pending:
            problems[pending[0].name] = crash
            pending = pending[1:]
    return problems


def _check_here(bundle: Bundle) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = bundle.materialize(Path(tmp))
        try:
            code = loader.load(bundle.function(), folder)
        except LoadError as e:
            reason = f"cannot load {e.target}: {e.reason}"
            return {"ok": False, "error": reason.replace(f"{folder}/", "functions/")}
        except (ManifestError, DeployError) as e:
            return {"ok": False, "error": str(e)}
        code.purge()
    return {"ok": True}


# `rosey validate`: every function's and plugin's code imported in one throwaway process.


@dataclass
class Validation:
    """What `rosey validate` found: the functions and plugins, and every problem, one line each."""

    functions: list[str]
    plugins: list[str]
    problems: list[str]


def validate(settings: Settings, timeout: float = 30.0) -> Validation:
    """Check the manifests, the legacy plugins' PLUGIN_INFO, that no two claim a name or a
    command, and that every function's and enabled plugin's code imports (one process)."""
    problems: list[str] = []
    registry, jobs = Registry(), []
    folder = settings.manifests_dir
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        try:
            function = manifest.load(path)
            registry.add(function)
        except ManifestError as e:
            problems += str(e).splitlines()
            continue
        except RoseyError as e:  # RegistryError: its name or a command is taken
            problems.append(str(e))
            continue
        if not function.external:
            jobs.append(Job(function.name, str(path), str(settings.functions_dir)))
    plugins = []
    config = str(getattr(settings, "source", "rosey.yaml"))
    enabled = settings.plugins.enabled
    for name in [*enabled, *settings.plugins.standalone]:
        package = settings.plugins.dir / name
        if not (package / "__init__.py").exists():
            shown = display_path(package)
            problems.append(f"{config}: plugins: {name!r}: no plugin package {shown}/__init__.py")
            continue
        try:
            info = legacy.read_info(package)
            source = f"{display_path(package)}/__init__.py"
            plugins.append(legacy.function_of(info, settings.plugins.ranks, source))
        except RoseyError as e:
            problems.append(str(e))
            continue
        if name in enabled:  # a standalone plugin runs in a process of its own
            jobs.append(Job(name, folder=str(package)))
    problems += legacy.clashes(registry, plugins)
    problems += check_all(jobs, timeout)
    return Validation([f.name for f in registry], [p.name for p in plugins], problems)


@dataclass(frozen=True)
class Job:
    """One import to check: a function (its manifest and its functions folder) or a legacy
    plugin package (its folder)."""

    name: str
    manifest: str = ""  # a function's manifest file
    folder: str = ""  # the functions folder, or the plugin package
    bundle: str = ""  # or a bundle, as JSON (Bundle.to_json)


def check_all(jobs: Sequence[Job], timeout: float = 30.0) -> list[str]:
    """Import every job's code in one throwaway process; one problem line for each that fails,
    naming its file and line. An import that hangs over `timeout` seconds, or ends the process,
    is reported and the jobs after it are checked in a fresh process."""
    problems: list[str] = []
    pending = list(jobs)
    while pending:
        answers, crash = _run(pending, timeout)
        problems += [a for a in answers if a]
        pending = pending[len(answers) :]
        if pending:
            problems.append(f"function {pending[0].name!r}: {crash}")
            pending = pending[1:]
    return problems


def _run(jobs: Sequence[Job], timeout: float) -> tuple[list[str | None], str]:
    """The answers of one process, in order, and why it stopped early (if it did)."""
    answers: list[str | None] = []
    crash = ""
    with (
        tempfile.TemporaryFile() as errors,
        subprocess.Popen(
            [sys.executable, "-m", "runtime.deploy.check", "--all"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
        ) as child,
    ):
        assert child.stdin is not None and child.stdout is not None
        try:
            child.stdin.write(json.dumps([asdict(j) for j in jobs]).encode())
            child.stdin.close()
            fd, buffer = child.stdout.fileno(), b""
            while len(answers) < len(jobs):
                ready, _, _ = select.select([fd], [], [], timeout)
                if not ready:
                    crash = f"importing the code took over {timeout:g}s"
                    break
                chunk = os.read(fd, 65536)
                if not chunk:
                    errors.seek(0)
                    tail = errors.read().decode(errors="replace").strip().splitlines()[-3:]
                    crash = "the import check crashed: " + (" | ".join(tail) or "no output")
                    break
                *lines, buffer = (buffer + chunk).split(b"\n")
                answers += [json.loads(line)["error"] for line in lines if line.strip()]
        finally:
            child.kill()
    return answers, crash


def _check_job(job: Job) -> str | None:
    """One job's problem in one line, or None; the paths as the user knows them."""
    folder = Path(job.folder)
    try:
        if job.bundle:
            answer = _check_here(Bundle.from_json(job.bundle))
            return None if answer["ok"] else str(answer["error"])
        if job.manifest:
            loader.load(manifest.load(Path(job.manifest)), folder).purge()
        else:
            legacy.load(folder).purge()
    except RoseyError as e:
        problem = str(e)
    except BaseException as e:  # SystemExit and the like, raised while importing
        frames = traceback.extract_tb(e.__traceback__)
        own = [f for f in frames if f.filename.startswith((job.folder, str(folder.absolute())))]
        at = f" at {own[-1].filename}:{own[-1].lineno}" if own else ""
        problem = f"function {job.name!r}: importing raised {type(e).__name__}{at}: {e}"
    else:
        return None
    shown = display_path(folder)
    return " ".join(problem.replace(f"{folder.absolute()}/", f"{shown}/").split())


def _check_all_here(jobs: list[Job]) -> None:
    # The answers go to the real standard output; what the code prints, to standard error.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    for job in jobs:
        out.write(json.dumps({"error": _check_job(job)}) + "\n")
        out.flush()


if __name__ == "__main__":
    if sys.argv[1:] == ["--all"]:
        _check_all_here([Job(**j) for j in json.loads(sys.stdin.read())])
    else:
        print(json.dumps(_check_here(Bundle.from_json(sys.stdin.read()))))
