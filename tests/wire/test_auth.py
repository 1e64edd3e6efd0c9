"""NATS authentication: servers started with auth, `rosey run`-style connects, clear refusals,
the roles of docker/nats.conf, and secrets that never show in logs or `rosey ls`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from nats.aio.client import Client

from runtime.config.settings import NatsSettings
from runtime.host.servers import find_binary
from runtime.wire.bus import Bus
from tests.clitools import ROOT, ROSEY, clean_env, rosey
from tests.conftest import write_project
from tests.opskit import CALC, CALC_CODE, WHY, WHY_CODE

PASSWORD = "pw-Zq81-xK2v"
TOKEN = "tok-Jr77-aaQ9"
DEPLOY_TOKEN = "dep-Hh42-Lm0p"


class AuthNats:
    """A nats-server of the test's own, started from a configuration file."""

    def __init__(self, workdir: Path, conf: str, env: dict[str, str] | None = None) -> None:
        self.workdir, self.env = workdir, env or {}
        workdir.mkdir(parents=True, exist_ok=True)
        self.conf = workdir / "nats.conf"
        self.conf.write_text(conf)
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> str:
        ports = self.workdir / "ports"
        ports.mkdir(exist_ok=True)
        log = open(self.workdir / "nats.log", "wb")  # noqa: SIM115 (the child writes it)
        self.process = subprocess.Popen(
            [
                *(find_binary("nats-server"), "-c", str(self.conf), "-a", "127.0.0.1", "-p", "-1"),
                *("--ports_file_dir", str(ports), "-sd", str(self.workdir / "js")),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
        )
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.process.poll() is None:
            for found in ports.glob("*.ports"):
                with contextlib.suppress(ValueError, KeyError, IndexError):
                    self.url = json.loads(found.read_text())["nats"][0]
                    return self.url
            time.sleep(0.01)
        raise AssertionError((self.workdir / "nats.log").read_text())

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(5)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project of its own (not the repository's functions, which other work changes)."""
    write_project(tmp_path / "project", {**CALC, **WHY}, {**CALC_CODE, **WHY_CODE})
    return tmp_path / "project"


@pytest.fixture
def user_nats(tmp_path: Path) -> Iterator[AuthNats]:
    server = AuthNats(
        tmp_path / "nats-user",
        f'authorization {{ users = [ {{user: rosey, password: "{PASSWORD}"}} ] }}\n'
        "jetstream: enabled\n",
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def token_nats(tmp_path: Path) -> Iterator[AuthNats]:
    server = AuthNats(tmp_path / "nats-token", f'authorization {{ token: "{TOKEN}" }}\n')
    server.start()
    yield server
    server.stop()


ROLES = {
    "ROSEY_NATS_PASSWORD": PASSWORD,
    "ROSEY_DEPLOY_NATS_PASSWORD": "deploy-pw-77",
    "ROSEY_OBSERVER_NATS_PASSWORD": "observe-pw-88",
}


@pytest.fixture
def role_nats(tmp_path: Path) -> Iterator[AuthNats]:
    """The docker-compose stack's nats-server configuration, as shipped."""
    server = AuthNats(tmp_path / "nats-roles", (ROOT / "docker" / "nats.conf").read_text(), ROLES)
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("server", "auth"),
    [
        ("user_nats", NatsSettings(user="rosey", password=PASSWORD)),
        ("token_nats", NatsSettings(token=TOKEN)),
    ],
)
async def test_credentials_from_settings(
    server: str, auth: NatsSettings, request: pytest.FixtureRequest
) -> None:
    bus = await Bus.connect(request.getfixturevalue(server).url, timeout=2, auth=auth)
    try:
        await bus.publish("test.auth", {"ok": True})
        await bus.flush()
        assert bus.connected
    finally:
        await bus.close()


@pytest.mark.parametrize(
    ("server", "nats"),
    [
        ("user_nats", "user: rosey, password: '${TEST_NATS_SECRET}'"),
        ("token_nats", "token: '${TEST_NATS_SECRET}'"),
        ("token_nats", "user: rosey, password: '${TEST_NATS_SECRET}'"),
        ("user_nats", ""),
    ],
)
def test_wrong_credentials_are_a_clear_error(
    server: str,
    nats: str,
    project: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Run as a command: nats-py leaves the refused connection's socket open in this process.
    url = request.getfixturevalue(server).url
    monkeypatch.setenv("TEST_NATS_SECRET", "not-the-secret")
    (project / "rosey.yaml").write_text(f"nats: {{url: '{url}', {nats}}}\n")
    result = rosey(project, "ls")
    assert result.returncode == 1
    assert f"Error: NATS connect failed: {url}: nats: 'Authorization Violation'" in result.stderr
    assert "not-the-secret" not in result.stderr + result.stdout


def write_config(project: Path, url: str, password_var: str = "TEST_NATS_PW") -> None:
    (project / "rosey.yaml").write_text(
        "log_level: DEBUG\n"
        f"nats: {{url: '{url}', user: rosey, password: '${{{password_var}}}', connect_timeout: 1}}\n"
        "deploy: {token: '${TEST_DEPLOY_TOKEN}'}\n"
        "http: {listen: '127.0.0.1:0'}\n"
    )


def serve(project: Path) -> tuple[subprocess.Popen[str], Path]:
    """`rosey run --no-console` with its standard error in a file."""
    errors = project / "run.stderr"
    with open(errors, "w") as out:
        process = subprocess.Popen(
            [ROSEY, "run", "--no-console"],
            cwd=project,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            text=True,
            env=clean_env(),
        )
    state = project / ".rosey" / "runtime.json"
    deadline = time.monotonic() + 20
    while not state.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert state.exists(), errors.read_text()
    return process, errors


def test_rosey_run_with_credentials_and_no_secret_in_output(
    project: Path, user_nats: AuthNats, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_NATS_PW", PASSWORD)
    monkeypatch.setenv("TEST_DEPLOY_TOKEN", DEPLOY_TOKEN)
    write_config(project, user_nats.url)
    process, errors = serve(project)
    try:
        listing = rosey(project, "ls")
        as_json = rosey(project, "ls", "--json")
        deployed = rosey(project, "deploy", "manifests/calc.yaml", "--force")
        assert listing.returncode == 0, listing.stderr
        assert "calc" in listing.stdout and "runtime " in listing.stdout
        assert json.loads(as_json.stdout)[0]["functions"]
        assert deployed.returncode == 0, deployed.stderr + deployed.stdout

        monkeypatch.setenv("TEST_NATS_PW", "not-the-password")
        refused = rosey(project, "ls")
        assert refused.returncode == 1
        assert "NATS connect failed" in refused.stderr
        assert "Authorization Violation" in refused.stderr
    finally:
        process.terminate()
        process.wait(20)
    logged = errors.read_text()
    assert "DEBUG" in logged and "serving" in logged  # the log really was written
    outputs = [logged, listing.stdout, listing.stderr, as_json.stdout, deployed.stdout]
    outputs += [deployed.stderr, refused.stdout, refused.stderr]
    for secret in (PASSWORD, DEPLOY_TOKEN):
        assert not any(secret in text for text in outputs), secret


def test_rosey_run_with_a_wrong_password_exits_saying_why(
    project: Path, user_nats: AuthNats, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_NATS_PW", "not-the-password")
    monkeypatch.setenv("TEST_DEPLOY_TOKEN", DEPLOY_TOKEN)
    write_config(project, user_nats.url)
    result = rosey(project, "run", "--no-console")
    assert result.returncode == 1
    assert f"NATS connect failed: {user_nats.url}" in result.stderr
    assert "Authorization Violation" in result.stderr
    assert "not-the-password" not in result.stderr


async def test_roles_of_the_shipped_nats_conf(role_nats: AuthNats) -> None:
    """docker/nats.conf: only `rosey` may speak for chat users; `deployer` may deploy and list."""
    denied: list[str] = []

    async def on_error(e: Exception) -> None:
        denied.append(str(e))

    async def connect(user: str, password: str) -> Client:
        import nats

        return await nats.connect(
            role_nats.url, user=user, password=password, error_cb=on_error, max_reconnect_attempts=1
        )

    runtime = await connect("rosey", PASSWORD)
    deployer = await connect("deployer", ROLES["ROSEY_DEPLOY_NATS_PASSWORD"])
    observer = await connect("observer", ROLES["ROSEY_OBSERVER_NATS_PASSWORD"])
    try:

        async def status(msg: object) -> None:
            await runtime.publish(msg.reply, b'{"success": true}')  # type: ignore[attr-defined]

        await runtime.subscribe("rosey.status", cb=status)
        await runtime.subscribe("$SRV.PING", cb=status)
        await runtime.flush()
        assert (await deployer.request("rosey.status", b"{}", timeout=5)).data
        assert (await observer.request("$SRV.PING", b"", timeout=5)).data

        for client, subject in (
            (deployer, "cytube.chat"),
            (deployer, "plugin.dice.command"),
            (observer, "rosey.deploy"),
        ):
            await client.publish(subject, b"{}")
            await client.flush()

        async def all_denied() -> bool:
            return len(denied) >= 3

        async with asyncio.timeout(10):
            while not await all_denied():
                await asyncio.sleep(0.02)
        for subject in ("cytube.chat", "plugin.dice.command", "rosey.deploy"):
            assert any(f'violation for publish to "{subject}"' in d for d in denied), denied
    finally:
        for client in (runtime, deployer, observer):
            await client.close()
