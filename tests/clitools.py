"""Running the `rosey` command as a user would, in a copy of the repository's project."""

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROSEY = str(Path(sys.executable).parent / "rosey")


def rosey(
    project: Path, *args: str, stdin: str = "", timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ROSEY, *args],
        cwd=project,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean_env(),
    )


def clean_env() -> dict[str, str]:
    """The environment without the developer's ROSEY_* settings, and with the HTTP endpoint off
    (it would take the machine's port 8080)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROSEY_")}
    env["ROSEY_HTTP_LISTEN"] = "off"
    return env


def start_server(project: Path, *args: str) -> subprocess.Popen[str]:
    server = subprocess.Popen(
        [ROSEY, "run", *args],
        cwd=project,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        env=clean_env(),
    )
    state = project / ".rosey" / "runtime.json"
    deadline = time.monotonic() + 20
    while not state.exists() and time.monotonic() < deadline and server.poll() is None:
        time.sleep(0.05)
    return server


def start_until(
    project: Path, env: dict[str, str], marker: str, *args: str
) -> tuple[subprocess.Popen[str], str]:
    """`rosey <args>` with its standard error read up to the line starting with `marker`;
    returns the process and that line's third word (the address it gives)."""
    process = subprocess.Popen(
        [ROSEY, *args],
        cwd=project,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stderr is not None
    said = []
    for line in process.stderr:  # ends when the process does: a failure shows what it said
        said.append(line)
        if line.startswith(marker):
            return process, line.split()[2]
    raise AssertionError("".join(said))
