"""The `rosey` command: one click group, thin subcommands over library functions.

Each command imports what it uses when it runs, and the subcommands of the other modules are
imported only when named (LazyGroup): `rosey deploy`, or `rosey run --help`, must not load the
server (aiohttp, socketio, prometheus_client), and `rosey --help` lists them all without
importing any (LAZY_HELP), nor YAML, jsonschema or NATS."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from runtime import __version__
from runtime.cli.options import config_option, json_option, settings_or_exit
from runtime.errors import RoseyError

if TYPE_CHECKING:
    from runtime.config.settings import Settings

# name → "module:attribute" of the subcommands that live in other modules.
LAZY_COMMANDS = {
    "console": "runtime.cli.console:console",
    "db": "runtime.cli.db:db",
    "deploy": "runtime.cli.deploy:deploy",
    "dev": "runtime.cli.deploy:dev",
    "enable": "runtime.cli.deploy:enable",
    "logs": "runtime.cli.logs:logs",
    "ls": "runtime.cli.deploy:list_functions",
    "remove": "runtime.cli.deploy:remove",
    "rollback": "runtime.cli.deploy:rollback",
}


# The one-line help `rosey --help` shows for LAZY_COMMANDS, so that listing them imports none
# (tests/cli/test_cli_imports.py checks each matches its command's own). A lazy command missing
# here is imported to list it.
LAZY_HELP = {
    "console": "Print (or --open) a one-time login link to the web console of the running Rosey.",
    "db": "Read and edit the database of the running Rosey (over NATS).",
    "deploy": "Validate, check and hot-swap the functions in PATHS into the running runtime(s).",
    "dev": "Deploy what differs from the running runtime, then watch functions/ and manifests/ "
    "and deploy what changes on every save.",
    "enable": "Resume a function paused (quarantined) after repeated failures, in every runtime.",
    "logs": "Activation records (outcome, version, user, duration, error or denial reason) of "
    "every function, or of function NAME; newest last.",
    "ls": "Functions served by the running runtime(s): version, commands, ranks, counters.",
    "remove": "Stop serving NAME on every runtime (a later deploy brings it back).",
    "rollback": "Serve an earlier deployed version of NAME again.",
}

# The choices of --log-format (runtime/ops/logsetup.py FORMATS, which imports the settings).
LOG_FORMATS = ("text", "json")

T = TypeVar("T")


def run_loop(main: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine on uvloop's event loop (asyncio's when uvloop is not installed)."""
    import asyncio

    try:
        import uvloop
    except ImportError:
        return asyncio.run(main())  # type: ignore[arg-type]
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())  # type: ignore[arg-type]


class LazyGroup(click.Group):
    """A group whose LAZY_COMMANDS are imported when named, not when `rosey` starts."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of `rosey --help` as click words it, lazy commands described from
        LAZY_HELP."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names), default=0)
        rows = []
        for name in names:
            if name in LAZY_COMMANDS and name in LAZY_HELP:
                # A stand-in with the same help text, shortened as click shortens the real one's.
                command: click.Command | None = click.Command(name, help=LAZY_HELP[name])
            else:
                command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = LAZY_COMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command


def _fail(error: RoseyError) -> click.ClickException:
    return click.ClickException(str(error))


def _logging(level: str, fmt: str = "text", secrets: Iterable[str] = ()) -> None:
    # Text or JSON lines (runtime/logsetup.py), with the configured secrets masked.
    from runtime.ops import logsetup

    try:
        logsetup.setup(level, fmt, secrets)
    except RoseyError as e:
        raise _fail(e) from e


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="rosey")
def cli() -> None:
    """Rosey: plain Python functions, declared in YAML manifests, serving a CyTube channel."""


@cli.command()
@config_option
@click.option("--rank", type=float, default=0, show_default=True, help="Console user's rank.")
@click.option("--user", default="console", show_default=True, help="Console user's name.")
@click.option(
    "--console/--no-console",
    default=True,
    help="Chat on standard input when there is no cytube section.",
)
@click.option(
    "--log-format",
    type=click.Choice(LOG_FORMATS),
    default=None,
    help="Log lines as text (default) or JSON objects (log_format in rosey.yaml).",
)
def run(
    config_path: Path | None, rank: float, user: str, console: bool, log_format: str | None
) -> None:
    """Start Rosey (embedded NATS when none is configured; console chat without cytube)."""
    from runtime.host import serve as service
    from runtime.ops import logsetup

    settings = settings_or_exit(config_path)
    _logging(settings.log_level, log_format or settings.log_format, logsetup.secrets_of(settings))
    try:
        code = run_loop(lambda: service.serve(settings, rank=rank, user=user, console_chat=console))
    except RoseyError as e:
        raise _fail(e) from e
    sys.exit(code)


@cli.command()
@config_option
@click.option(
    "--log-format",
    type=click.Choice(LOG_FORMATS),
    default=None,
    help="Log lines as text (default) or JSON objects (log_format in rosey.yaml).",
)
def worker(config_path: Path | None, log_format: str | None) -> None:
    """Serve functions only (no connector, router or console), sharing each function's queue
    group with every other runtime and worker: on the configured NATS and Redis, or on those of
    the `rosey run` of this folder."""
    from runtime.host import serve as service
    from runtime.ops import logsetup

    settings = settings_or_exit(config_path)
    _logging(settings.log_level, log_format or settings.log_format, logsetup.secrets_of(settings))
    try:
        code = run_loop(lambda: service.serve(settings, console_chat=False, worker=True))
    except RoseyError as e:
        raise _fail(e) from e
    sys.exit(code)


@cli.command()
@config_option
@json_option
def validate(config_path: Path | None, as_json: bool) -> None:
    """Check every manifest and legacy plugin, that no two claim a name or a command, and that
    all their code imports (in one throwaway process), without starting anything."""
    from runtime.deploy import check

    settings = settings_or_exit(config_path)
    found = check.validate(settings)
    if as_json:
        answer = {"valid": not found.problems, "functions": found.functions}
        click.echo(json.dumps({**answer, "plugins": found.plugins, "problems": found.problems}))
        if found.problems:
            sys.exit(1)
        return
    for problem in found.problems:
        click.echo(problem, err=True)
    if found.problems:
        count = len(found.problems)
        raise click.ClickException(f"{count} problem{'s' if count > 1 else ''} found")
    click.echo(f"{len(found.functions)} functions valid: {', '.join(found.functions)}")
    if found.plugins:
        click.echo(f"{len(found.plugins)} legacy plugins valid: {', '.join(found.plugins)}")


@cli.command()
@config_option
@json_option
@click.argument("command")
@click.argument("args", nargs=-1)
@click.option("--rank", type=float, default=0, show_default=True)
@click.option("--user", default="console", show_default=True)
@click.option("--timeout", type=float, default=None, help="Seconds to wait for the reply.")
def invoke(
    config_path: Path | None,
    as_json: bool,
    command: str,
    args: tuple[str, ...],
    rank: float,
    user: str,
    timeout: float | None,
) -> None:
    """Run one command and print the reply (against the running instance, or a private one)."""
    settings = settings_or_exit(config_path)
    _logging("WARNING")
    try:
        reply = run_loop(lambda: _invoke(settings, command, list(args), rank, user, timeout))
    except RoseyError as e:
        raise _fail(e) from e
    if as_json:
        click.echo(json.dumps(reply))
    elif reply.get("success"):
        for line in (reply.get("data") or {}).get("replies", []):
            click.echo(line)
    else:
        raise click.ClickException(f"{reply.get('error_code')}: {reply.get('error')}")
    if not reply.get("success"):
        sys.exit(1)


async def _invoke(
    settings: Settings, word: str, args: list[str], rank: float, user: str, timeout: float | None
) -> dict[str, Any]:
    from runtime.config import manifest
    from runtime.constants import command_subject
    from runtime.core.permissions import check_rank, rank_name
    from runtime.core.registry import Registry
    from runtime.host import instance as instances
    from runtime.wire import contract

    registry = Registry(manifest.load_dir(settings.manifests_dir))
    route = registry.resolve(word.lstrip(settings.command_prefix))
    if route is None:
        raise click.ClickException(f"no function has a command {word!r} (see `rosey ls`)")
    try:
        check_rank(route.command, rank)
    except RoseyError as e:
        return contract.failure(e.code, f"{e} ({rank_name(route.command.rank)} or higher)")
    payload = {
        "command": route.command.name,
        "args": args,
        "user": user,
        "rank": rank,
        "channel": settings.channel,
        "raw_message": " ".join([settings.command_prefix + word, *args]),
    }
    wait = timeout or route.function.timeout + 1.0
    running = settings.nats.url or (instances.find(settings) and instances.nats_url(settings))
    if running:
        from runtime.wire.bus import Bus

        bus = await Bus.connect(
            str(running), name="rosey-invoke", reconnect=False, auth=settings.nats
        )
        try:
            reply: dict[str, Any] = await bus.request(
                command_subject(route.function.name), payload, wait
            )
            return reply
        except RoseyError:
            await _unserved(bus, word, route.function.name)
            raise
        finally:
            await bus.close()
    from runtime.host import serve as service

    return await service.invoke_once(settings, route.function.name, payload, wait)


async def _unserved(bus: Any, word: str, name: str) -> None:
    """After a failed request: when no running runtime serves `name` (`rosey remove`d, say),
    raise that instead of NATS's "no responders"."""
    from runtime.cli.deploy import gather_status

    served = {f["name"] for status in await gather_status(bus) for f in status["functions"]}
    if name not in served:
        raise click.ClickException(
            f"no such command: {word!r} belongs to {name}, which the running Rosey does not "
            "serve (removed with `rosey remove`?); `rosey ls` lists what it serves"
        )


@cli.command(name="contract")
@config_option
@click.option("--markdown", is_flag=True, help="Print docs/contracts.md.")
def show_contract(config_path: Path | None, markdown: bool) -> None:
    """Print the NATS contract's JSON Schemas (or the generated Markdown)."""
    from runtime.wire import contract

    if config_path is not None:  # the contract is the same whatever the settings say
        settings_or_exit(config_path)
    if markdown:
        click.echo(contract.render_markdown(), nl=False)
    else:
        click.echo(json.dumps(contract.specs(), indent=2))


def main() -> None:
    cli()
