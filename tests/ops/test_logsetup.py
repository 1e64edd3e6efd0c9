"""Log lines: text or JSON, invocation fields on every line about an invocation, no secrets."""

import io
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.config.settings import CytubeSettings, NatsSettings, RedisSettings, Settings
from runtime.errors import ConfigError
from runtime.ops import logsetup
from runtime.ops.logsetup import JsonFormatter, Redactor, TextFormatter
from tests.clitools import rosey
from tests.conftest import Chat, MakeRuntime, write_project

TALK = {
    "talk": """\
    name: talk
    version: "2.1.0"
    description: Logs through ctx.log.
    handler: talk:say
    commands:
      say: {}
      fail: {handler: "talk:fail"}
    """
}
TALK_CODE = {
    "talk.py": """\
    def say(event, ctx):
        ctx.log.warning("saying %s to %s", event.text, event.user)
        return "said"

    def fail(event, ctx):
        raise KeyError("nothing to say")
    """
}


def record(
    name: str = "rosey.test", message: str = "hello %s", **extra: object
) -> logging.LogRecord:
    made = logging.LogRecord(name, logging.WARNING, __file__, 1, message, ("world",), None)
    made.__dict__.update(extra)
    return made


def test_text_lines_name_the_invocation() -> None:
    line = TextFormatter().format(record(function="dice", version="1.0.0", id="4f2a"))
    assert line.endswith(" WARNING rosey.test [dice 1.0.0 #4f2a]: hello world")
    assert TextFormatter().format(record()).endswith(" WARNING rosey.test: hello world")
    # The Invoker's own lines come from the function's logger: the function at least.
    assert (
        TextFormatter()
        .format(record("rosey.fn.dice"))
        .endswith("rosey.fn.dice [dice]: hello world")
    )


def test_json_lines() -> None:
    try:
        raise ValueError("bad")
    except ValueError:
        failing = record(function="dice", version="1.0.0", id="4f2a")
        failing.exc_info = sys.exc_info()
    data = json.loads(JsonFormatter().format(failing))
    assert data["time"].endswith("+00:00")
    assert {k: data[k] for k in ("level", "logger", "message", "function", "version", "id")} == {
        "level": "WARNING",
        "logger": "rosey.test",
        "message": "hello world",
        "function": "dice",
        "version": "1.0.0",
        "id": "4f2a",
    }
    assert data["exception"].startswith("Traceback") and "ValueError: bad" in data["exception"]
    plain = json.loads(JsonFormatter().format(record()))
    assert set(plain) == {"time", "level", "logger", "message"}


def test_secrets_are_masked_in_both_formats() -> None:
    redact = Redactor(["s3cret-pass", "ab"])
    message = "connecting to nats://rosey:s3cret-pass@host:4222 and redis://:other-pw@r:6379/0"
    for formatter in (TextFormatter(redact), JsonFormatter(redact)):
        line = formatter.format(
            logging.LogRecord("rosey.test", logging.INFO, __file__, 1, message, None, None)
        )
        assert "s3cret-pass" not in line and "other-pw" not in line
        assert "nats://rosey:***@host:4222" in line and "redis://:***@r:6379/0" in line
    assert redact("about the abc") == "about the abc"  # too short to be worth masking


def test_secrets_of_settings() -> None:
    settings = Settings(
        nats=NatsSettings(url="nats://u:in-url-pw@h:4222", password="nats-pw", token="nats-tok"),
        redis=RedisSettings(url="redis://:redis-pw@h:6379/0"),
        cytube=CytubeSettings(password="cy-pw", channel_password="room-pw"),
    )
    settings.deploy.token = "deploy-tok"
    assert sorted(logsetup.secrets_of(settings)) == sorted(
        ["nats-pw", "nats-tok", "deploy-tok", "cy-pw", "room-pw", "in-url-pw", "redis-pw"]
    )
    assert logsetup.secrets_of(Settings()) == []


def test_secrets_of_every_server_of_a_cluster() -> None:
    settings = Settings(nats=NatsSettings(url="nats://u:first-pw@a:4222,nats://u:second-pw@b:4222"))
    assert sorted(logsetup.secrets_of(settings)) == ["first-pw", "second-pw"]


def test_unknown_format_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="log_format: expected one of text, json, got 'xml'"):
        logsetup.formatter("xml")


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logsetup.formatter("json"))
    logger = logging.getLogger("rosey.fn")
    logger.addHandler(handler)
    yield stream
    logger.removeHandler(handler)


async def test_handler_lines_carry_function_version_and_id(
    make_runtime: MakeRuntime, chat: Chat, captured: io.StringIO
) -> None:
    await make_runtime(TALK, TALK_CODE)
    await chat.say("!say hi")
    await chat.say("!fail")
    assert sorted(await chat.lines(2)) == ["Sorry, fail failed.", "said"]
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    said = next(line for line in lines if line["message"] == "saying hi to alice")
    assert (said["function"], said["version"], said["logger"]) == ("talk", "2.1.0", "rosey.fn.talk")
    assert len(said["id"]) == 16
    failed = next(line for line in lines if line["level"] == "ERROR")
    assert failed["function"] == "talk"
    assert "KeyError" in failed["exception"]


def test_rosey_run_json_logs(tmp_path: Path) -> None:
    write_project(tmp_path, TALK, TALK_CODE)
    (tmp_path / "rosey.yaml").write_text("log_level: INFO\nhttp: {listen: 'off'}\n")
    result = rosey(tmp_path, "run", "--log-format", "json", stdin="!say hello\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "rosey: said"
    logged = [
        json.loads(line) for line in result.stderr.splitlines() if not line.startswith("rosey: ")
    ]
    assert any(entry["message"].startswith("serving 1 functions: talk 2.1.0") for entry in logged)
    said = next(entry for entry in logged if entry["message"] == "saying hello to console")
    assert (said["function"], said["version"]) == ("talk", "2.1.0") and said["id"]


def test_rosey_run_refuses_an_unknown_log_format(tmp_path: Path) -> None:
    write_project(tmp_path, TALK, TALK_CODE)
    (tmp_path / "rosey.yaml").write_text("log_format: xml\n")
    result = rosey(tmp_path, "run")
    assert result.returncode == 1
    assert "log_format: expected one of text, json, got 'xml'" in result.stderr
