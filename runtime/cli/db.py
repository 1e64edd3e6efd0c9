"""`rosey db`: read and edit the running instance's database over NATS, without redis-cli.

NATS (whose client loads aiohttp) is imported when a command connects, not with this module."""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from runtime.config.settings import Settings
from runtime.config.settings import load as load_settings
from runtime.errors import RoseyError
from runtime.host import instance as instances


def _json_arg(text: str, name: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as e:
        raise click.BadParameter(f"not JSON: {e}", param_hint=name) from e


class Call:
    """Options every subcommand shares."""

    def __init__(self, config: Path | None, as_json: bool, timeout: float) -> None:
        self.config, self.as_json, self.timeout = config, as_json, timeout

    def run(self, operation: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Send one request to the running instance; exits 1 (after printing why) on failure."""
        try:
            settings = load_settings(self.config)
            url = instances.nats_url(settings)
            reply = asyncio.run(self._send(settings, url, operation, payload))
        except RoseyError as e:
            raise click.ClickException(str(e)) from e
        if self.as_json:
            click.echo(json.dumps(reply, ensure_ascii=False))
            if not reply.get("success"):
                sys.exit(1)
        elif not reply.get("success"):
            raise click.ClickException(f"{reply.get('error_code')}: {reply.get('error')}")
        return reply

    async def _send(
        self, settings: Settings, url: str, operation: str, payload: dict[str, Any]
    ) -> dict[str, Any]:
        from runtime.database import client
        from runtime.wire.bus import Bus

        # reconnect=False: a command gives up on an unreachable server instead of waiting.
        bus = await Bus.connect(
            url, name="rosey-db", timeout=self.timeout, reconnect=False, auth=settings.nats
        )
        try:
            return await client.request(bus, operation, payload, self.timeout)
        finally:
            await bus.close()


def common(command: Callable[..., None]) -> Callable[..., None]:
    """The options every subcommand takes, gathered into one Call."""

    @click.option(
        "--config",
        "config",
        type=click.Path(path_type=Path),
        default=None,
        help="Settings file (default: ./rosey.yaml if present).",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print the reply envelope as JSON.")
    @click.option("--timeout", type=float, default=5.0, show_default=True, help="Seconds to wait.")
    @functools.wraps(command)
    def wrapper(config: Path | None, as_json: bool, timeout: float, **kwargs: Any) -> None:
        command(Call(config, as_json, timeout), **kwargs)

    return wrapper


@click.group()
def db() -> None:
    """Read and edit the database of the running Rosey (over NATS)."""


def _show(record: Any) -> str:
    return json.dumps(record, ensure_ascii=False, indent=2)


@db.command()
@click.argument("collection")
@click.argument("record_id", metavar="ID")
@common
def get(call: Call, collection: str, record_id: str) -> None:
    """Print one record."""
    reply = call.run("get", {"collection": collection, "id": record_id})
    if not call.as_json:
        click.echo(_show(reply["data"]))


@db.command(name="set")
@click.argument("collection")
@click.argument("record_id", metavar="ID")
@click.argument("data", metavar="JSON")
@common
def set_record(call: Call, collection: str, record_id: str, data: str) -> None:
    """Create or replace a record; ID `-` allocates a new id."""
    fields = _json_arg(data, "JSON")
    rid = None if record_id == "-" else record_id  # the service reads "42" as the id 42
    reply = call.run("set", {"collection": collection, "id": rid, "data": fields})
    if not call.as_json:
        click.echo(f"{collection} {reply['id']}")


@db.command()
@click.argument("collection")
@click.argument("record_id", metavar="ID")
@click.option("--data", "data", default=None, metavar="JSON", help="Fields to set.")
@click.option("--inc", "inc", default=None, metavar="JSON", help="Numbers to add, by field.")
@common
def update(call: Call, collection: str, record_id: str, data: str | None, inc: str | None) -> None:
    """Change some fields of a record; print it after the change."""
    payload: dict[str, Any] = {"collection": collection, "id": record_id}
    if data is not None:
        payload["data"] = _json_arg(data, "--data")
    if inc is not None:
        payload["inc"] = _json_arg(inc, "--inc")
    reply = call.run("update", payload)
    if not call.as_json:
        click.echo(_show(reply["data"]))


@db.command()
@click.argument("collection")
@click.option(
    "--filter", "flt", default=None, metavar="JSON", help='Such as \'{"score": {"$gt": 5}}\'.'
)
@click.option("--order-by", "order_by", multiple=True, help='"field", "field DESC"; repeatable.')
@click.option("--limit", type=int, default=100, show_default=True)
@click.option("--offset", type=int, default=0, show_default=True)
@common
def query(
    call: Call, collection: str, flt: str | None, order_by: tuple[str, ...], limit: int, offset: int
) -> None:
    """Print matching records, one JSON object a line, then how many matched."""
    payload: dict[str, Any] = {"collection": collection, "limit": limit, "offset": offset}
    if flt is not None:
        payload["filter"] = _json_arg(flt, "--filter")
    if order_by:
        payload["order_by"] = list(order_by)
    reply = call.run("query", payload)
    if call.as_json:
        return
    for record in reply["data"]:
        click.echo(json.dumps(record, ensure_ascii=False))
    shown = len(reply["data"])
    first = offset + 1 if shown else offset
    click.echo(
        f"({first}-{offset + shown} of {reply['count']})" if shown else f"(0 of {reply['count']})"
    )


@db.command()
@click.argument("collection")
@click.argument("record_id", metavar="ID")
@common
def delete(call: Call, collection: str, record_id: str) -> None:
    """Delete one record."""
    call.run("delete", {"collection": collection, "id": record_id})
    if not call.as_json:
        click.echo(f"deleted {collection} {record_id}")


@db.command()
@click.argument("collection")
@click.option("--filter", "flt", default=None, metavar="JSON", help="Count only matching records.")
@common
def count(call: Call, collection: str, flt: str | None) -> None:
    """Print how many records (matching --filter) the collection holds."""
    payload: dict[str, Any] = {"collection": collection}
    if flt is not None:
        payload["filter"] = _json_arg(flt, "--filter")
    reply = call.run("count", payload)
    if not call.as_json:
        click.echo(str(reply["count"]))
