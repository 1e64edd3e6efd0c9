import json
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path

from tests.clitools import ROSEY, clean_env, rosey, start_server

HELLO_MANIFEST = """\
name: hello
version: "{version}"
description: Says hello.
handler: hello:hi
commands:
  hi: {{rank: {rank}}}
examples:
  - input: "!hi"
    expect: '^\\w+ example from '
"""


def add_hello(project: Path, version: str = "1.0.0", rank: int = 0, word: str = "hello") -> None:
    (project / "functions" / "hello.py").write_text(
        f"def hi(event, ctx):\n    return '{word} ' + event.user + ' from {version}'\n"
    )
    (project / "manifests" / "hello.yaml").write_text(
        HELLO_MANIFEST.format(version=version, rank=rank)
    )


def test_deploy_walkthrough(project: Path) -> None:
    with start_server(project) as server:
        add_hello(project)
        plan = rosey(project, "deploy", "--plan", "functions/")
        assert plan.returncode == 0, plan.stderr
        assert "hello: (new) → 1.0.0 (new); adds !hi" in plan.stdout
        assert rosey(project, "invoke", "hi").returncode == 1  # the plan changed nothing

        done = rosey(project, "deploy", "functions/")
        assert done.returncode == 0, done.stderr
        assert "dice: unchanged (1.0.0)" in done.stdout
        assert "hello: (new) → 1.0.0 in " in done.stdout
        assert "drained 0, lost 0; added !hi; 1 runtime(s)" in done.stdout
        assert rosey(project, "invoke", "hi").stdout.strip() == "hello console from 1.0.0"

        add_hello(project, "1.1.0")
        as_json = json.loads(rosey(project, "deploy", "--json", "functions/hello.py").stdout)
        assert as_json[0]["data"]["report"]["old_version"] == "1.0.0"
        assert as_json[0]["data"]["report"]["new_version"] == "1.1.0"

        listed = json.loads(rosey(project, "ls", "--json").stdout)
        versions = {f["name"]: f["version"] for f in listed[0]["functions"]}
        assert {"dice": "1.0.0", "help": "1.0.0", "hello": "1.1.0"}.items() <= versions.items()

        back = rosey(project, "rollback", "hello")
        assert back.returncode == 0, back.stderr
        assert "hello: 1.1.0 → 1.0.0" in back.stdout
        assert server.stdin is not None
        server.stdin.close()
        assert server.wait(20) == 0


def test_broken_code_is_reported_and_nothing_sent(project: Path) -> None:
    with start_server(project) as server:
        add_hello(project)
        (project / "functions" / "hello.py").write_text("x = 1\ndef hi(event, ctx)\n    pass\n")
        result = rosey(project, "deploy", "functions/hello.py")
        assert result.returncode == 1
        assert "hello: cannot load hello: syntax error at functions/hello.py:2" in result.stderr
        assert "deploying" not in result.stderr
        listed = json.loads(rosey(project, "ls", "--json").stdout)
        assert "hello" not in {f["name"] for f in listed[0]["functions"]}
        server.send_signal(signal.SIGTERM)
        assert server.wait(20) == 0


def test_schema_error_names_file_and_field(project: Path) -> None:
    add_hello(project)
    path = project / "manifests" / "hello.yaml"
    path.write_text(path.read_text().replace("rank: 0", "rank: 7"))
    result = rosey(project, "deploy", "manifests/hello.yaml")
    assert result.returncode == 1
    assert "hello.yaml: commands.hi.rank: 7 is not one of" in result.stderr


def test_lowering_a_rank_needs_yes(project: Path) -> None:
    add_hello(project, rank=2)
    with start_server(project) as server:
        add_hello(project, "1.1.0", rank=0)
        refused = rosey(project, "deploy", "functions/hello.py")
        assert refused.returncode == 1
        assert "hello lowers a rank or grants collections" in refused.stderr
        assert "!hi rank 2 → 0" in refused.stderr
        allowed = rosey(project, "deploy", "--yes", "functions/hello.py")
        assert allowed.returncode == 0, allowed.stderr
        assert "!hi rank 2 → 0" in allowed.stdout
        server.send_signal(signal.SIGTERM)
        assert server.wait(20) == 0


def test_granting_channel_actions_needs_yes(project: Path) -> None:
    add_hello(project)
    with start_server(project) as server:
        add_hello(project, "1.1.0")
        manifest = project / "manifests" / "hello.yaml"
        manifest.write_text(manifest.read_text() + "actions: [playlist, poll]\n")
        shown = rosey(project, "deploy", "--plan", "functions/hello.py")
        assert shown.returncode == 0, shown.stderr
        assert "grants channel actions playlist, poll  [needs --yes]" in shown.stdout
        rows = json.loads(rosey(project, "deploy", "--plan", "--json", "functions/hello.py").stdout)
        assert (rows[0]["actions_added"], rows[0]["needs_yes"]) == (["playlist", "poll"], True)
        refused = rosey(project, "deploy", "functions/hello.py")
        assert refused.returncode == 1
        assert "hello lowers a rank or grants collections or channel actions" in refused.stderr
        allowed = rosey(project, "deploy", "--yes", "functions/hello.py")
        assert allowed.returncode == 0, allowed.stderr
        # The runtime now reports the actions: the same manifest grants nothing more.
        rows = json.loads(rosey(project, "deploy", "--plan", "--json", "functions/hello.py").stdout)
        assert (rows[0]["actions_added"], rows[0]["needs_yes"]) == ([], False)
        server.send_signal(signal.SIGTERM)
        assert server.wait(20) == 0


def test_deployed_version_survives_a_restart(project: Path) -> None:
    with start_server(project) as server:
        add_hello(project, "2.0.0", word="deployed")
        assert rosey(project, "deploy", "functions/hello.py").returncode == 0
        server.send_signal(signal.SIGTERM)
        assert server.wait(20) == 0
    add_hello(project, "1.0.0", word="disk")  # the folder goes back; the deploy still stands
    with start_server(project) as server:
        assert rosey(project, "invoke", "hi").stdout.strip() == "deployed console from 2.0.0"
        server.send_signal(signal.SIGTERM)
        assert server.wait(20) == 0


def test_wrong_token_refused(project: Path) -> None:
    with start_server(project) as server:
        add_hello(project)
        (project / "rosey.yaml").write_text("log_level: WARNING\ndeploy: {token: wrong}\n")
        result = rosey(project, "deploy", "functions/hello.py")
        assert result.returncode == 1
        assert "FAILED (PERMISSION_DENIED): deploy token rejected" in result.stdout
        server.send_signal(signal.SIGTERM)
        assert server.wait(20) == 0


class Lines:
    """A process's output lines, read as they come by a thread, waited for by content."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        self.stream = process.stdout
        self.seen: list[str] = []
        self.queue: queue.Queue[str | None] = queue.Queue()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for line in self.stream:
            self.queue.put(line.rstrip("\n"))
        self.queue.put(None)

    def until(self, text: str, timeout: float = 30) -> str:
        """The first new line containing `text`; fails on end of output or after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {text!r} within {timeout}s in {self.seen}") from None
            if line is None:
                raise AssertionError(f"output ended without {text!r}: {self.seen}")
            self.seen.append(line)
            if text in line:
                return line

    def rest(self) -> list[str]:
        """Every line, once the process has ended; closes its output."""
        self.thread.join(20)
        self.stream.close()
        while not self.queue.empty():
            line = self.queue.get_nowait()
            if line is not None:
                self.seen.append(line)
        return self.seen


def test_dev_deploys_what_differs_then_every_save(project: Path) -> None:
    with start_server(project) as server:
        add_hello(project, "1.0.0", word="started")  # on disk, not yet deployed
        dev = subprocess.Popen(
            [ROSEY, "dev"],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=clean_env(),
        )
        lines = Lines(dev)
        try:
            lines.until("watching ")
            before_watching = list(lines.seen)
            assert "dice: unchanged (1.0.0)" in before_watching
            assert any(line.startswith("hello: (new) → 1.0.0 in ") for line in before_watching)
            assert rosey(project, "invoke", "hi").stdout.strip() == "started console from 1.0.0"

            add_hello(project, "3.0.0", word="saved")  # right after the line: must not be lost
            lines.until("hello: 1.0.0 → 3.0.0 in ")
            assert rosey(project, "invoke", "hi").stdout.strip() == "saved console from 3.0.0"
        finally:
            dev.send_signal(signal.SIGINT)
            dev.wait(20)
            output = lines.rest()
        assert not any("not deployed" in line for line in output)
        assert not list((project / ".rosey").glob("dev-probe-*"))  # the probe folder is removed
        server.send_signal(signal.SIGTERM)
        assert server.wait(20) == 0


def test_remove_invoke_and_rollback_say_what_happened(project: Path) -> None:
    with start_server(project) as server:
        for version in ("2.0.0", "3.0.0"):
            add_hello(project, version)
            assert rosey(project, "deploy", "functions/hello.py").returncode == 0
        assert rosey(project, "remove", "hello").returncode == 0
        gone = rosey(project, "invoke", "hi")
        again = rosey(project, "remove", "hello")
        back = rosey(project, "rollback", "hello")
        served = rosey(project, "invoke", "hi")
        server.send_signal(signal.SIGTERM)
        assert server.wait(20) == 0
    assert gone.returncode == 1
    assert "no such command: 'hi' belongs to hello, which the running Rosey does not serve" in (
        gone.stderr
    )
    assert "no responders" not in gone.stderr
    assert again.returncode == 1
    assert again.stdout.strip() == (
        "hello: NOT removed (RECORD_NOT_FOUND): hello is not served (it was removed already); "
        "nothing changed (`rosey ls` lists what is served)"
    )
    assert back.returncode == 0, back.stdout
    assert back.stdout.startswith("hello: (not served) → 3.0.0 in ")
    assert served.stdout.strip() == "hello console from 3.0.0"
