"""isolation: process — a worker's log lines are the runtime's: the same format (text or JSON)
and the same masking of the configured secrets, which never reach the worker."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.config.settings import NatsSettings, RedisSettings, Settings
from runtime.ops import logsetup
from tests.clitools import rosey
from tests.conftest import Chat, MakeRuntime, wait_for, write_project

TOKEN = "deploy-token-7f3a9c"
NATS_PASSWORD = "nats-pw-41c2"
REDIS_PASSWORD = "redis-pw-9d0e"

MANIFEST = {
    "leaky": """\
    name: leaky
    version: "1.0.0"
    description: logs what it should not
    handler: leaky:say
    isolation: process
    commands:
      say: {}
    """
}
CODE = {
    "leaky.py": f"""\
    import logging
    import sys

    logging.getLogger("leaky").warning("loading with {TOKEN}")

    def say(event, ctx):
        where = sys.modules["__main__"].__spec__.name
        ctx.log.warning("token {TOKEN}, nats {NATS_PASSWORD}, in %s", where)
        try:
            raise ValueError("redis://:{REDIS_PASSWORD}@db:6379/0")
        except ValueError:
            ctx.log.exception("failed with {REDIS_PASSWORD}")
        return "said from " + where
    """
}
SECRETS = (TOKEN, NATS_PASSWORD, REDIS_PASSWORD)
WORKER = "runtime.isolation.worker"


def configured() -> Settings:
    """Settings holding the secrets, as rosey.yaml or the environment would give them."""
    settings = Settings(
        nats=NatsSettings(password=NATS_PASSWORD),
        redis=RedisSettings(url=f"redis://:{REDIS_PASSWORD}@db:6379/0"),
    )
    settings.deploy.token = TOKEN
    return settings


@pytest.fixture
def runtime_log() -> Iterator[Callable[[str], io.StringIO]]:
    """Set up logging as `rosey run` does (logsetup.setup with the settings' secrets), into a
    buffer; the previous logging set-up comes back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level

    def configure(fmt: str) -> io.StringIO:
        stream = io.StringIO()
        logsetup.setup("INFO", fmt, logsetup.secrets_of(configured()), stream=stream)
        return stream

    yield configure
    root.handlers[:] = handlers
    root.setLevel(level)


def logged(stream: io.StringIO, text: str) -> bool:
    return text in stream.getvalue()


@pytest.mark.parametrize("fmt", ["text", "json"])
async def test_worker_lines_are_masked_and_formatted_by_the_runtime(
    make_runtime: MakeRuntime,
    chat: Chat,
    runtime_log: Callable[[str], io.StringIO],
    capfd: pytest.CaptureFixture[str],
    fmt: str,
) -> None:
    stream = runtime_log(fmt)
    await make_runtime(MANIFEST, CODE)
    await chat.say("!say")
    assert await chat.lines(1) == [f"said from {WORKER}"]
    await wait_for(lambda: logged(stream, f"in {WORKER}") and logged(stream, "failed with"))
    output = stream.getvalue()
    for secret in SECRETS:
        assert secret not in output
    # The worker wrote nothing itself: no line of it escaped the runtime's logging.
    assert not any(secret in capfd.readouterr().err for secret in SECRETS)
    lines = output.splitlines()
    if fmt == "json":
        entries = [json.loads(line) for line in lines if line.startswith("{")]
        said = next(e for e in entries if e["message"].endswith(f"in {WORKER}"))
        assert said["message"] == f"token ***, nats ***, in {WORKER}"
        assert (said["logger"], said["function"], said["version"]) == (
            "rosey.fn.leaky",
            "leaky",
            "1.0.0",
        )
        assert said["level"] == "WARNING" and len(said["id"]) == 16
        failed = next(e for e in entries if e["message"] == "failed with ***")
        assert failed["level"] == "ERROR" and failed["id"] == said["id"]
        assert "ValueError: redis://:***@db:6379/0" in failed["exception"]
        loading = next(e for e in entries if e["logger"] == "leaky")
        assert loading["message"] == "loading with ***"
    else:
        said = next(line for line in lines if line.endswith(f"in {WORKER}"))
        assert " WARNING rosey.fn.leaky [leaky 1.0.0 #" in said
        assert said.endswith(f"]: token ***, nats ***, in {WORKER}")
        assert any(line.endswith(" WARNING leaky: loading with ***") for line in lines)
        assert "ValueError: redis://:***@db:6379/0" in output


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_rosey_run_masks_a_workers_lines(tmp_path: Path, fmt: str) -> None:
    write_project(tmp_path, MANIFEST, CODE)
    (tmp_path / "rosey.yaml").write_text(
        f"log_format: {fmt}\nhttp: {{listen: 'off'}}\ndeploy: {{token: {TOKEN}}}\n"
    )
    result = rosey(tmp_path, "run", stdin="!say\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"rosey: said from {WORKER}"
    assert TOKEN not in result.stderr and TOKEN not in result.stdout
    assert "ValueError: redis://:***@db:6379/0" in result.stderr  # a URL's password, always
    lines = [line for line in result.stderr.splitlines() if not line.startswith("rosey: ")]
    if fmt == "json":
        entries: list[dict[str, Any]] = [json.loads(line) for line in lines]  # every line
        said = next(e for e in entries if e["message"].endswith(f"in {WORKER}"))
        # This project configures no NATS password: only configured secrets are masked.
        assert said["message"] == f"token ***, nats {NATS_PASSWORD}, in {WORKER}"
        assert said["function"] == "leaky" and said["id"]
    else:
        said = next(line for line in lines if line.endswith(f"in {WORKER}"))
        assert said.endswith(f"]: token ***, nats {NATS_PASSWORD}, in {WORKER}")
