"""The processes a benchmark measures, started through public entry points only: `rosey run`
(the installed console script, a rosey.yaml of the bench's own) and the baseline scripts in
bench/baselines/, each in a process of its own, and what /proc says about them."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import nats

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ROSEY = str(BIN / "rosey")
BASELINES = Path(__file__).resolve().parent / "baselines"
TICK = os.sysconf("SC_CLK_TCK")
READY_TIMEOUT = 180.0


def clean_env() -> dict[str, str]:
    """The environment without ROSEY_* variables, so only the bench's rosey.yaml counts."""
    return {k: v for k, v in os.environ.items() if not k.startswith("ROSEY_")}


def project(
    base: Path,
    nats_url: str | None,
    redis_url: str | None,
    library: bool = True,
    extra: Iterable[tuple[str, str, str]] = (),
) -> Path:
    """A folder with rosey.yaml, the shipped functions (`library`) and `extra` functions given
    as (name, manifest text, code). A fresh Redis prefix, so runs never see each other's keys."""
    base.mkdir(parents=True, exist_ok=True)
    if library:
        shutil.copytree(ROOT / "functions", base / "functions", dirs_exist_ok=True)
        shutil.copytree(ROOT / "manifests", base / "manifests", dirs_exist_ok=True)
    (base / "functions").mkdir(exist_ok=True)
    (base / "manifests").mkdir(exist_ok=True)
    for name, manifest, code in extra:
        (base / "manifests" / f"{name}.yaml").write_text(manifest)
        if code:
            (base / "functions" / f"{name}.py").write_text(code)
    lines = [
        "data_dir: .rosey",
        "functions_dir: functions",
        "manifests_dir: manifests",
        "log_level: WARNING",
        "http: {listen: '127.0.0.1:0'}",
        "deploy: {token: bench}",
    ]
    if nats_url:
        lines.append(f"nats: {{url: '{nats_url}'}}")
    if redis_url:
        lines.append(f"redis: {{url: '{redis_url}', prefix: 'bench:{time.time_ns()}:'}}")
    (base / "rosey.yaml").write_text("\n".join(lines) + "\n")
    return base


def trivial(name: str, reply: str = "x") -> tuple[str, str, str]:
    """A generated function: one command `name` answering `<reply> <user>`."""
    manifest = (
        f'name: {name}\nversion: "1.0.0"\ndescription: generated\nhandler: {name}:answer\n'
        f"commands:\n  {name}: {{}}\n"
    )
    code = f"def answer(event, ctx):\n    return {reply!r} + ' ' + event.user\n"
    return name, manifest, code


def spawn(argv: list[str], **options: Any) -> subprocess.Popen[bytes]:
    """Popen returns once the child is forked: nothing here waits on it."""
    return subprocess.Popen(argv, **options)


class Proc:
    """A started process: its pid, CPU time and resident set, and how to stop it."""

    def __init__(self, popen: subprocess.Popen[bytes], began: float, log: Path | None) -> None:
        self.popen, self.began, self.log = popen, began, log
        self.ready_after = float("nan")  # seconds from spawn to ready

    @property
    def pid(self) -> int:
        return self.popen.pid

    def cpu(self) -> float:
        """utime + stime of the process (all its threads), in seconds."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-1500:] if self.log else ""


async def reset_streams(nats_url: str) -> None:
    """Delete the JetStream streams `rosey run` made (durable delivery: ROSEY_CHAT holds chat
    lines until a runtime takes them). Without this, lines sent to a baseline while Rosey was
    down would be stored by the server, and replayed to the next `rosey run` as a backlog."""
    nc = await nats.connect(nats_url, name="bench-reset")
    try:
        js = nc.jsm()
        for info in await js.streams_info():
            if info.config.name and info.config.name.startswith("ROSEY_"):
                await js.delete_stream(info.config.name)
    finally:
        await nc.close()


async def start_rosey(
    folder: Path,
    nats_url: str | None,
    *args: str,
    prefix: tuple[str, ...] = (),
    settings: dict[str, str] | None = None,
) -> Proc:
    """`rosey run --no-console` in `folder`; returns once /readyz answers 200. With `nats_url`,
    it starts with no stream left by an earlier run. `prefix` runs it under valgrind;
    `settings`: ROSEY_* variables on top of the folder's rosey.yaml."""
    if nats_url:
        await reset_streams(nats_url)
    log = folder / "rosey.log"
    began = time.perf_counter()
    popen = spawn(
        [*prefix, ROSEY, "run", "--no-console", *args],
        cwd=folder,
        env={**clean_env(), **(settings or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    proc = Proc(popen, began, log)
    try:
        url = await _http_line(proc, READY_TIMEOUT * (20 if prefix else 1))
        while not await asyncio.to_thread(_ready, url):
            _alive(proc)
            await asyncio.sleep(0.005)
    except BaseException:
        proc.stop()
        raise
    proc.ready_after = time.perf_counter() - began
    return proc


async def _http_line(proc: Proc, timeout: float) -> str:
    """`rosey: HTTP http://…` is printed once the runtime is up and recorded."""
    assert proc.log is not None
    while True:
        for line in proc.log.read_text(errors="replace").splitlines():
            if line.startswith("rosey: HTTP "):
                return line.split()[2]
        _alive(proc)
        if time.perf_counter() - proc.began > timeout:
            proc.stop()
            raise RuntimeError(f"rosey run not ready after {timeout:g}s:\n{proc.tail()}")
        await asyncio.sleep(0.005)


def _alive(proc: Proc) -> None:
    if proc.popen.poll() is not None:
        raise RuntimeError(f"rosey run exited ({proc.popen.returncode}):\n{proc.tail()}")


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=5) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


async def start_baseline(script: str, *args: str, prefix: tuple[str, ...] = ()) -> Proc:
    """`python bench/baselines/<script>.py ARGS`; returns once it prints `ready`."""
    began = time.perf_counter()
    popen = spawn(
        [*prefix, sys.executable, str(BASELINES / f"{script}.py"), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        env=clean_env(),
    )
    proc = Proc(popen, began, None)
    assert popen.stdout is not None
    line = await asyncio.to_thread(popen.stdout.readline)
    if line.strip() != b"ready":
        proc.stop()
        raise RuntimeError(f"baseline {script} did not start: {line!r}")
    proc.ready_after = time.perf_counter() - began
    return proc


def wall(args: list[str], cwd: Path, timeout: float = 120) -> float:
    """Seconds one command takes from spawn to exit; it must succeed."""
    began = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=clean_env(), capture_output=True, timeout=timeout)
    took = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {done.stderr.decode()[-1500:]}")
    return took
