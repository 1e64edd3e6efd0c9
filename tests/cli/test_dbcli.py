"""`rosey db` against a real database service found the way operators find it: runtime.json."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from runtime.cli.db import db
from runtime.config.settings import Settings
from runtime.database.service import DatabaseService
from runtime.database.store import Store
from runtime.errors import ConfigError
from runtime.host.instance import nats_url as find_nats_url
from runtime.host.servers import free_port
from runtime.wire.bus import Bus


@pytest.fixture
async def project(tmp_path: Path, bus: Bus, redis_url: str, nats_url: str) -> AsyncIterator[Path]:
    """A rosey.yaml whose data_dir records a running instance, and its database service."""
    (tmp_path / "rosey.yaml").write_text("data_dir: state\n")
    (tmp_path / "state").mkdir()
    state = {"nats_url": nats_url, "redis_url": redis_url, "pid": os.getpid()}
    (tmp_path / "state" / "runtime.json").write_text(json.dumps(state))
    store = await Store.connect(redis_url)
    service = DatabaseService(bus, store)
    await service.start()
    yield tmp_path / "rosey.yaml"
    await service.stop()
    await store.close()


async def rosey_db(config: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    # The command runs its own event loop, so it runs in a thread while the service runs here.
    runner = CliRunner()
    argv = [args[0], "--config", str(config), *args[1:]]
    return await asyncio.to_thread(runner.invoke, db, argv, env=env or {"ROSEY_NATS_URL": None})


async def test_set_get_query_count_delete(project: Path) -> None:
    coll = "t" + uuid.uuid4().hex[:12]
    result = await rosey_db(project, "set", coll, "-", '{"text": "hi", "score": 3}')
    assert (result.exit_code, result.output) == (0, f"{coll} 1\n")
    await rosey_db(project, "set", coll, "alice", '{"text": "é", "score": 9}')
    result = await rosey_db(project, "get", coll, "1")
    assert result.exit_code == 0
    assert json.loads(result.output) == {"id": 1, "text": "hi", "score": 3}
    result = await rosey_db(
        project,
        "query",
        coll,
        "--filter",
        '{"score": {"$gt": 1}}',
        "--order-by",
        "score DESC",
        "--limit",
        "1",
    )
    assert result.output.splitlines() == ['{"id": "alice", "text": "é", "score": 9}', "(1-1 of 2)"]
    result = await rosey_db(project, "update", coll, "alice", "--inc", '{"score": 1}')
    assert json.loads(result.output)["score"] == 10
    result = await rosey_db(project, "count", coll)
    assert result.output == "2\n"
    result = await rosey_db(project, "delete", coll, "alice")
    assert (result.exit_code, result.output) == (0, f"deleted {coll} alice\n")
    result = await rosey_db(project, "count", coll, "--filter", '{"text": "é"}')
    assert result.output == "0\n"


async def test_json_output_is_the_envelope(project: Path) -> None:
    coll = "t" + uuid.uuid4().hex[:12]
    result = await rosey_db(project, "set", coll, "7", '{"a": [1, true]}', "--json")
    assert json.loads(result.output) == {"success": True, "id": 7}
    result = await rosey_db(project, "query", coll, "--json")
    assert json.loads(result.output) == {
        "success": True,
        "data": [{"id": 7, "a": [1, True]}],
        "count": 1,
    }
    result = await rosey_db(project, "get", coll, "8", "--json")
    assert result.exit_code == 1
    assert json.loads(result.output)["error_code"] == "RECORD_NOT_FOUND"


async def test_failures_say_why(project: Path) -> None:
    result = await rosey_db(project, "get", "quotes", "999999")
    assert result.exit_code == 1
    assert "RECORD_NOT_FOUND" in result.output
    result = await rosey_db(project, "set", "quotes", "-", "{not json")
    assert result.exit_code == 2
    assert "not JSON" in result.output
    result = await rosey_db(project, "query", "quotes", "--filter", '{"a": {"$like": 1}}')
    assert result.exit_code == 1
    assert "INVALID_INPUT" in result.output and "filter.a: unknown operator $like" in result.output
    result = await rosey_db(project, "get", "bad name", "1")
    assert result.exit_code == 1
    assert "collection" in result.output


async def test_environment_url_wins_over_runtime_json(project: Path, nats_url: str) -> None:
    (project.parent / "state" / "runtime.json").unlink()
    result = await rosey_db(project, "count", "quotes", env={"ROSEY_NATS_URL": nats_url})
    assert result.exit_code == 0, result.output


def test_no_running_instance_is_a_clear_error(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with pytest.raises(ConfigError, match="rosey run"):
        find_nats_url(settings)
    (tmp_path / "runtime.json").write_text(json.dumps({"nats_url": "nats://x", "pid": 2**22 + 7}))
    with pytest.raises(ConfigError, match="is gone"):
        find_nats_url(settings)
    (tmp_path / "runtime.json").write_text("{")
    with pytest.raises(ConfigError, match="unreadable"):
        find_nats_url(settings)
    settings.nats.url = "nats://127.0.0.1:1"
    assert find_nats_url(settings) == "nats://127.0.0.1:1"


def test_cli_without_a_running_instance(tmp_path: Path) -> None:
    config = tmp_path / "rosey.yaml"
    config.write_text("data_dir: state\n")
    result = CliRunner().invoke(
        db, ["get", "quotes", "1", "--config", str(config)], env={"ROSEY_NATS_URL": None}
    )
    assert result.exit_code == 1
    assert "no running Rosey found" in result.output
    dead = f"nats://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(
        db, ["get", "quotes", "1", "--config", str(config)], env={"ROSEY_NATS_URL": dead}
    )
    assert result.exit_code == 1
    assert "NATS connect failed" in result.output
