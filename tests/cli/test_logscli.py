"""`rosey logs`: activation records from Redis, as text or JSON, filtered, and followed."""

import asyncio
import json
import sys
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from redis.asyncio import Redis

from runtime.cli.logs import logs
from runtime.config.keys import Namespace
from runtime.config.settings import ActivationSettings
from runtime.core.activation import Activation
from runtime.ops.records import ActivationLog
from tests.clitools import ROOT, clean_env


def act(n: int, function: str = "calc", user: str = "alice", **extra: object) -> Activation:
    fields: dict[str, object] = {
        "id": f"id{n}",
        "function": function,
        "version": "1.0.0",
        "kind": "command",
        "command": "ok",
        "user": user,
        "channel": "test",
        "outcome": "ok",
        "duration": 0.0042,
        "time": 1_700_000_000.0 + n,
    }
    return Activation(**{**fields, **extra})  # type: ignore[arg-type]


async def write(redis_url: str, keys: Namespace, *records: Activation) -> None:
    """As `rosey run` writes them, under the namespace of its `redis.prefix`."""
    redis = Redis.from_url(redis_url, decode_responses=True)
    log = ActivationLog(redis, keys, ActivationSettings())
    for record in records:
        log(record)
    await log.flush()
    await redis.aclose()


@pytest.fixture
def config(tmp_path: Path, redis_url: str) -> tuple[Path, Namespace]:
    """Settings with a `redis.prefix` of the test's own, which `rosey logs` reads under."""
    keys = Namespace(f"test:{uuid.uuid4().hex}:")
    path = tmp_path / "rosey.yaml"
    path.write_text(f"redis: {{url: '{redis_url}', prefix: '{keys.prefix}'}}\n")
    return path, keys


def test_lists_records_oldest_first(config: tuple[Path, Namespace], redis_url: str) -> None:
    path, keys = config
    asyncio.run(
        write(
            redis_url,
            keys,
            act(1),
            act(2, function="dice", user="bob"),
            act(3, outcome="error", error="calc 1.0.0 failed: ValueError: bad"),
        )
    )
    result = CliRunner().invoke(logs, ["--config", str(path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 3
    assert lines[0].endswith(" ok       calc 1.0.0 !ok alice 4.2ms #id1")
    assert lines[2].endswith(
        " error    calc 1.0.0 !ok alice 4.2ms #id3: calc 1.0.0 failed: ValueError: bad"
    )

    only = CliRunner().invoke(logs, ["--config", str(path), "calc", "-n", "1", "--json"])
    assert [json.loads(line)["id"] for line in only.output.splitlines()] == ["id3"]
    bob = CliRunner().invoke(logs, ["--config", str(path), "--user", "bob", "--json"])
    [record] = [json.loads(line) for line in bob.output.splitlines()]
    assert (record["function"], record["user"], record["duration"]) == ("dice", "bob", 0.0042)


def test_without_redis_says_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "rosey.yaml").write_text("data_dir: state\n")
    result = CliRunner().invoke(logs, ["--config", str(tmp_path / "rosey.yaml")])
    assert result.exit_code == 1
    assert "redis.url: not set, and no running `rosey run` recorded in" in result.output


async def test_follow_prints_new_records(config: tuple[Path, Namespace], redis_url: str) -> None:
    path, keys = config
    await write(redis_url, keys, act(1))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from runtime.cli.logs import logs; logs()",
        "--config",
        str(path),
        "--follow",
        "--json",
        "calc",
        cwd=ROOT,
        env=clean_env(),
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(20):
            assert json.loads(await process.stdout.readline())["id"] == "id1"
            await write(redis_url, keys, act(2, function="dice"), act(3))
            assert json.loads(await process.stdout.readline())["id"] == "id3"
    finally:
        process.terminate()
        await process.wait()
