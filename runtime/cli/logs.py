"""`rosey logs`: activation records from Redis, newest last, optionally followed as they come."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any

import click
from redis.asyncio import Redis

from runtime.config.keys import Namespace
from runtime.config.settings import Settings
from runtime.config.settings import load as load_settings
from runtime.errors import ConfigError, RoseyError
from runtime.host import instance as instances
from runtime.ops.records import ActivationLog


def redis_url(settings: Settings) -> str:
    """Configured, or that of the `rosey run` recorded in data_dir."""
    if settings.redis.url:
        return settings.redis.url
    instance = instances.find(settings)
    if instance is None or not instance.redis_url:
        raise ConfigError(
            "redis.url",
            "",
            f"not set, and no running `rosey run` recorded in {instances.state_path(settings)}",
        )
    return instance.redis_url


def describe(record: dict[str, Any]) -> str:
    """One line: when, outcome, function and version, command, user, duration, correlation id,
    then the error or the reason, if any."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record["time"]))
    what = f"!{record['command']}" if record["command"] else record["kind"]
    line = (
        f"{when} {record['outcome']:<8} {record['function']} {record['version']} {what} "
        f"{record['user'] or '-'} {record['duration'] * 1000:.1f}ms #{record['id']}"
    )
    detail = record["error"] or record["reason"]
    return f"{line}: {detail}" if detail else line


async def _logs(
    settings: Settings,
    name: str | None,
    user: str | None,
    count: int,
    follow: bool,
    as_json: bool,
) -> None:
    keys = Namespace(settings.redis.prefix)  # the stream is a key under it, as `rosey run` writes
    redis = Redis.from_url(redis_url(settings), decode_responses=True)
    records = ActivationLog(redis, keys, settings.activations)

    def show(record: dict[str, Any]) -> None:
        click.echo(json.dumps(record) if as_json else describe(record))

    try:
        recent = await records.query(function=name, user=user, limit=count) if count else []
        for record in reversed(recent):
            show(record)
        if follow:
            after = recent[0]["entry"] if recent else "$"
            async for record in records.follow(name, user, after=after):
                show(record)
    finally:
        await redis.aclose()


@click.command(name="logs")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Settings file (default: ./rosey.yaml if present).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON record a line.")
@click.argument("name", required=False)
@click.option("--user", default=None, help="Only this user's invocations.")
@click.option("-n", "--lines", "count", type=click.IntRange(0, 100), default=20, show_default=True)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new records as they come.")
def logs(
    config_path: Path | None,
    as_json: bool,
    name: str | None,
    user: str | None,
    count: int,
    follow: bool,
) -> None:
    """Activation records (outcome, version, user, duration, error or denial reason) of every
    function, or of function NAME; newest last."""
    try:
        settings = load_settings(config_path)
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_logs(settings, name, user, count, follow, as_json))
    except RoseyError as e:
        raise click.ClickException(str(e)) from e
