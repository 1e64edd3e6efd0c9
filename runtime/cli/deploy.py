"""`rosey deploy`, `rollback`, `remove`, `dev` and `ls`: thin commands over bundles and NATS.

NATS (whose client loads aiohttp) is imported when a command connects, not with this module."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from runtime.cli.options import config_option, json_option, settings_or_exit
from runtime.config.settings import Settings
from runtime.constants import DEPLOY, ENABLE, STATUS
from runtime.core.bundle import Bundle
from runtime.deploy import check, collect
from runtime.errors import ConfigError, DeployError, RoseyError
from runtime.host import instance as instances
from runtime.wire.signing import Signer

if TYPE_CHECKING:
    from runtime.wire.bus import Bus


def _token(settings: Settings) -> str:
    if settings.deploy.token:
        return settings.deploy.token
    instance = instances.find(settings)
    return instance.token if instance else ""


async def _connect(settings: Settings) -> Bus:
    from runtime.wire.bus import Bus

    return await Bus.connect(
        instances.nats_url(settings), name="rosey-cli", reconnect=False, auth=settings.nats
    )


async def gather_status(bus: Bus, window: float = 0.3) -> list[dict[str, Any]]:
    """Every running runtime's status (they all answer rosey.status)."""
    replies = await bus.gather(STATUS, {}, window)
    return [r["data"] for r in replies if r.get("success") and isinstance(r.get("data"), dict)]


def plan(bundles: list[Bundle], current: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """What deploying `bundles` would change, function by function."""
    rows = []
    for b in bundles:
        f = b.function()
        now = current.get(b.name)
        commands = {c.name: c.rank for c in f.commands.values()}
        before: dict[str, float] = now["commands"] if now else {}
        row: dict[str, Any] = {
            "name": b.name,
            "version": b.version,
            "old_version": now["version"] if now else None,
            "change": "new"
            if now is None
            else ("unchanged" if now.get("hash") == b.hash else "update"),
            "commands_added": sorted(set(commands) - set(before)),
            "commands_removed": sorted(set(before) - set(commands)),
            "rank_changes": {
                c: [before[c], commands[c]]
                for c in sorted(set(commands) & set(before))
                if before[c] != commands[c]
            },
            "subjects": [s.subject for s in f.subjects],
            "collections_added": sorted(
                set(f.collections) - set(now["collections"] if now else [])
            ),
            # Channel actions (playlist, poll, moderate) are privileges like collections.
            "actions_added": sorted(
                set(f.actions) - set((now.get("actions") or []) if now else [])
            ),
        }
        lowered = [c for c, (old, new) in row["rank_changes"].items() if new < old]
        row["needs_yes"] = bool(lowered or row["collections_added"] or row["actions_added"])
        rows.append(row)
    return rows


def _describe(row: dict[str, Any]) -> str:
    parts = [f"{row['name']}: {row['old_version'] or '(new)'} → {row['version']} ({row['change']})"]
    if row["commands_added"]:
        parts.append("adds " + ", ".join("!" + c for c in row["commands_added"]))
    if row["commands_removed"]:
        parts.append("removes " + ", ".join("!" + c for c in row["commands_removed"]))
    for c, (old, new) in row["rank_changes"].items():
        parts.append(f"!{c} rank {old:g} → {new:g}")
    if row["collections_added"]:
        parts.append("grants collections " + ", ".join(row["collections_added"]))
    if row["actions_added"]:
        parts.append("grants channel actions " + ", ".join(row["actions_added"]))
    return "; ".join(parts)


async def _send(bus: Bus, request: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
    reply: dict[str, Any] = await bus.request(DEPLOY, request, timeout)
    return reply


def _report(name: str, reply: dict[str, Any], action: str = "deploy") -> str:
    if not reply.get("success"):
        refused = f"{name}: {_FAILED[action]} ({reply.get('error_code')}): {reply.get('error')}"
        return refused if action == "remove" else f"{refused}; the old version keeps serving"
    data = reply["data"]
    if data["status"] == "unchanged":
        return f"{name}: unchanged ({data['version']})"
    r = data["report"]
    peers = data.get("peers", [])
    failed = [p for p in peers if not p.get("ok")]
    # A rollback after `rosey remove` brings back a function that nothing served.
    before = r["old_version"] or ("(not served)" if action == "rollback" else "(new)")
    line = (
        f"{name}: {before} → {r['new_version'] or '(removed)'} in "
        f"{r['swap_ms']:.1f} ms, drained {r['drained']}, lost {r['lost']}"
    )
    if r["added"]:
        line += "; added " + ", ".join("!" + c for c in r["added"])
    if r["removed"]:
        line += "; removed " + ", ".join("!" + c for c in r["removed"])
    for c, (old, new) in r["rank_changes"].items():
        line += f"; !{c} rank {old:g} → {new:g}"
    line += f"; {len(peers) + 1} runtime(s)"
    if failed:
        line += "; NOT applied on " + ", ".join(f"{p['runtime']}: {p.get('error')}" for p in failed)
    return line


_FAILED = {"deploy": "FAILED", "rollback": "NOT rolled back", "remove": "NOT removed"}


@click.command()
@config_option
@json_option
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--plan", "plan_only", is_flag=True, help="Show what would change; change nothing.")
@click.option(
    "--yes",
    is_flag=True,
    help="Allow lowering a rank or granting collections or channel actions.",
)
@click.option("--force", is_flag=True, help="Deploy even when unchanged.")
def deploy(
    config_path: Path | None,
    as_json: bool,
    paths: tuple[Path, ...],
    plan_only: bool,
    yes: bool,
    force: bool,
) -> None:
    """Validate, check and hot-swap the functions in PATHS into the running runtime(s)."""
    settings = settings_or_exit(config_path)
    try:
        results = asyncio.run(_deploy(settings, list(paths), plan_only, yes, force, as_json))
    except RoseyError as e:
        raise click.ClickException(str(e)) from e
    if as_json:
        click.echo(json.dumps(results))
    if any(not r.get("success", True) for r in results):
        sys.exit(1)


async def ask_served(bus: Bus, timeout: float = 5.0) -> dict[str, dict[str, Any]]:
    """What a running runtime serves, by function name (with each bundle's hash): the first
    runtime to answer on rosey.status. A clear error at once when none is up."""
    try:
        reply = await bus.request(STATUS, {}, timeout)
    except RoseyError as e:
        raise ConfigError(
            "nats", "", f"no runtime answered on rosey.status ({e}); is `rosey run` up?"
        ) from e
    data = reply.get("data") if isinstance(reply, dict) and reply.get("success") else None
    if not isinstance(data, dict):
        raise ConfigError("nats", "", f"rosey.status answered {reply!r}")
    return {f["name"]: f for f in data.get("functions", [])}


async def _deploy(
    settings: Settings, paths: list[Path], plan_only: bool, yes: bool, force: bool, quiet: bool
) -> list[dict[str, Any]]:
    """Bundle PATHS (manifests validated here), ask the runtime what it serves, import-check
    the bundles that differ (all in one throwaway process) and send them together."""
    say = (lambda _: None) if quiet else (lambda text: click.echo(text, err=True))
    bundles = collect.collect(
        paths, settings.manifests_dir, settings.functions_dir, settings.plugins.ranks
    )
    bus = await _connect(settings)
    try:
        rows = plan(bundles, await ask_served(bus))
        if plan_only:
            if not quiet:
                for row in rows:
                    click.echo(_describe(row) + ("  [needs --yes]" if row["needs_yes"] else ""))
            return rows
        risky = [r["name"] for r in rows if r["needs_yes"] and r["change"] != "unchanged"]
        if risky and not yes:
            for row in rows:
                say(_describe(row))
            raise ConfigError(
                "deploy",
                "",
                f"{', '.join(risky)} lowers a rank or grants "
                "collections or channel actions; look at the plan above and add --yes",
            )
        changed = [
            b for b, r in zip(bundles, rows, strict=True) if force or r["change"] != "unchanged"
        ]
        for b in changed:
            say(f"checking {b.name} {b.version} ...")
        problems = await asyncio.to_thread(check.check_bundles, changed)
        if problems:
            for name, problem in list(problems.items())[1:]:
                say(f"{name}: {problem}")
            name, problem = next(iter(problems.items()))
            raise DeployError(name, problem)
        token = _token(settings)
        for b in changed:
            say(f"deploying {b.name} {b.version} ...")
        # Together: the runtime swaps them one after another, but no request waits for another.
        sent = await asyncio.gather(
            *(
                _send(
                    bus,
                    {
                        "token": token,
                        "action": "deploy",
                        "bundle": json.loads(b.to_json()),
                        "force": force,
                    },
                )
                for b in changed
            )
        )
        replies = {b.name: reply for b, reply in zip(changed, sent, strict=True)}
        results = []
        for b in bundles:
            reply = replies.get(b.name) or _unchanged(b)
            results.append({"name": b.name, **reply})
            if not quiet:
                click.echo(_report(b.name, reply))
        return results
    finally:
        await bus.close()


def _unchanged(bundle: Bundle) -> dict[str, Any]:
    """The runtime's answer to a bundle it serves already, without sending it."""
    data = {"status": "unchanged", "name": bundle.name, "version": bundle.version, "peers": []}
    return {"success": True, "data": data}


@click.command()
@config_option
@json_option
@click.argument("name")
@click.option(
    "--to",
    "version",
    default=None,
    help="Version to go back to (default: the previous; after `remove`, the removed one).",
)
def rollback(config_path: Path | None, as_json: bool, name: str, version: str | None) -> None:
    """Serve an earlier deployed version of NAME again."""
    _one(config_path, as_json, {"action": "rollback", "name": name, "version": version}, name)


@click.command()
@config_option
@json_option
@click.argument("name")
def remove(config_path: Path | None, as_json: bool, name: str) -> None:
    """Stop serving NAME on every runtime (a later deploy brings it back)."""
    _one(config_path, as_json, {"action": "remove", "name": name}, name)


def _one(config_path: Path | None, as_json: bool, request: dict[str, Any], name: str) -> None:
    settings = settings_or_exit(config_path)

    async def go() -> dict[str, Any]:
        bus = await _connect(settings)
        try:
            return await _send(bus, {"token": _token(settings), **request})
        finally:
            await bus.close()

    try:
        reply = asyncio.run(go())
    except RoseyError as e:
        raise click.ClickException(str(e)) from e
    click.echo(json.dumps(reply) if as_json else _report(name, reply, request["action"]))
    if not reply.get("success"):
        sys.exit(1)


@click.command(name="ls")
@config_option
@json_option
def list_functions(config_path: Path | None, as_json: bool) -> None:
    """Functions served by the running runtime(s): version, commands, ranks, counters."""
    settings = settings_or_exit(config_path)

    async def go() -> list[dict[str, Any]]:
        bus = await _connect(settings)
        try:
            return await gather_status(bus)
        finally:
            await bus.close()

    try:
        statuses = asyncio.run(go())
    except RoseyError as e:
        raise click.ClickException(str(e)) from e
    if as_json:
        click.echo(json.dumps(statuses))
        return
    for status in statuses:
        click.echo(f"runtime {status['runtime']} (pid {status['pid']})")
        for f in status["functions"]:
            commands = " ".join(f"!{c}({r:g})" for c, r in f["commands"].items())
            counters = (
                f"{f.get('invocations', 0)} calls, {f.get('errors', 0)} errors, "
                f"{f.get('timeouts', 0)} timeouts"
            )
            click.echo(
                f"  {f['name']:<12} {f['version']:<8} {f['status']:<8} {commands}  {counters}"
            )


@click.command()
@config_option
def dev(config_path: Path | None) -> None:
    """Deploy what differs from the running runtime, then watch functions/ and manifests/ and
    deploy what changes on every save."""
    settings = settings_or_exit(config_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    probes = Path(tempfile.mkdtemp(prefix="dev-probe-", dir=settings.data_dir)).resolve()
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_dev(settings, probes))
    finally:
        shutil.rmtree(probes, ignore_errors=True)


async def _dev(settings: Settings, probes: Path, probe_every: float = 0.2) -> None:
    """`rosey dev`: says `watching` only once the watcher is armed, so no save after it is lost.

    watchfiles says nothing when it starts watching, so a private probe folder is watched too
    and written to until the watcher reports it. Then everything is deployed once (unchanged
    functions answer "unchanged"); saves made meanwhile come in the watcher's next batch.
    `probes` is that folder, empty and used by nothing else."""
    from watchfiles import awatch

    async def deploy(paths: list[Path]) -> None:
        try:
            await _deploy(settings, paths, plan_only=False, yes=True, force=False, quiet=False)
        except RoseyError as e:
            click.echo(f"not deployed: {e}", err=True)

    armed = asyncio.Event()
    prober = asyncio.create_task(_probe(probes / "probe", armed, probe_every))
    try:
        async for changes in awatch(settings.functions_dir, settings.manifests_dir, probes):
            if not armed.is_set():
                if any(_within(path, probes) for _, path in changes):
                    armed.set()
                    # What was saved before this is in the first deploy.
                    await deploy([settings.functions_dir, settings.manifests_dir])
                    click.echo(
                        f"watching {settings.functions_dir} and {settings.manifests_dir}", err=True
                    )
                continue
            paths = _changed_sources({c for c in changes if not _within(c[1], probes)})
            if paths:
                await deploy(paths)
    finally:
        prober.cancel()
        await asyncio.wait({prober})


async def _probe(path: Path, armed: asyncio.Event, every: float) -> None:
    """Write `path` every `every` seconds until `armed` is set."""
    written = 0
    while not armed.is_set():
        written += 1
        await asyncio.to_thread(path.write_text, str(written))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(every):
                await armed.wait()


def _within(path: str, folder: Path) -> bool:
    return Path(path).resolve().is_relative_to(folder)


def _changed_sources(changes: set[tuple[Any, str]]) -> list[Path]:
    suffixes = (".py", ".yaml", ".yml")
    return sorted({Path(p) for _, p in changes if Path(p).exists() and Path(p).suffix in suffixes})


@click.command()
@config_option
@json_option
@click.argument("name")
def enable(config_path: Path | None, as_json: bool, name: str) -> None:
    """Resume a function paused (quarantined) after repeated failures, in every runtime."""
    settings = settings_or_exit(config_path)
    try:
        answers = asyncio.run(_enable(settings, name))
    except RoseyError as e:
        raise click.ClickException(str(e)) from e
    if as_json:
        click.echo(json.dumps(answers))
    refused = [a for a in answers if not a.get("success")]
    if refused:
        raise click.ClickException(f"{refused[0].get('error_code')}: {refused[0].get('error')}")
    if not answers:
        raise click.ClickException(f"no running runtime serves {name!r}")
    if not as_json:
        resumed = sum(1 for a in answers if a["data"].get("resumed"))
        click.echo(f"{name}: resumed on {resumed} of {len(answers)} runtime(s)")


async def _enable(settings: Settings, name: str, window: float = 0.5) -> list[dict[str, Any]]:
    bus = await _connect(settings)
    try:
        request = Signer(_token(settings)).sign({"name": name})
        return await bus.gather(ENABLE, request, window)
    finally:
        await bus.close()
