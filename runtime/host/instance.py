"""The running `rosey run` of a folder, as recorded in its data_dir: found by CLI commands without
importing the server."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from runtime.config.settings import Settings
from runtime.errors import ConfigError

STATE_FILE = "runtime.json"


@dataclass
class Instance:
    """Where a running `rosey run` can be reached, as recorded in its data_dir."""

    nats_url: str
    redis_url: str | None
    pid: int
    token: str = ""  # the deploy token, so local commands can deploy without configuring one
    http: str = ""  # the URL of /healthz, /readyz and /metrics; empty when the endpoint is off


def state_path(settings: Settings) -> Path:
    return settings.data_dir / STATE_FILE


def record(settings: Settings, instance: Instance) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = state_path(settings)
    tmp = path.with_suffix(".tmp")
    # Owner-only: the file holds the deploy token.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(json.dumps(instance.__dict__))
    tmp.replace(path)


def forget(settings: Settings) -> None:
    instance = find(settings)
    if instance is None or instance.pid == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            state_path(settings).unlink()


def find(settings: Settings) -> Instance | None:
    """The running instance recorded in data_dir, if its process is still alive."""
    try:
        data = json.loads(state_path(settings).read_text())
        instance = Instance(
            data["nats_url"],
            data.get("redis_url"),
            int(data["pid"]),
            data.get("token", ""),
            data.get("http", ""),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return instance if pid_alive(instance.pid) else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def nats_url(settings: Settings) -> str:
    """nats.url when set (rosey.yaml or ROSEY_NATS_URL), else that of the running `rosey run`."""
    if settings.nats.url:
        return settings.nats.url
    path = state_path(settings)
    try:
        data = json.loads(path.read_text())
        url, pid = str(data["nats_url"]), int(data["pid"])
    except FileNotFoundError as e:
        raise ConfigError(
            str(path), "", "no running Rosey found; start one with `rosey run`"
        ) from e
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(str(path), "", f"unreadable ({e}); is `rosey run` running?") from e
    if not pid_alive(pid):
        raise ConfigError(
            str(path),
            "",
            f"the Rosey that wrote it (pid {pid}) is gone; start one with `rosey run`",
        )
    return url
