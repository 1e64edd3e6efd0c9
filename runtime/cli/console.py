"""`rosey console`: a one-time login link to the web console of the `rosey run` of this folder.

The link (runtime/web/links.py) is signed with the console token and logs in once, within a
minute; it does not contain the token. Loads neither aiohttp nor the server."""

from __future__ import annotations

import webbrowser
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import click

from runtime.cli.options import config_option, settings_or_exit
from runtime.host import instance as instances
from runtime.web.links import LINK_WINDOW, login_url

# A server listening on every address is reached from here on the loopback one.
ANY_ADDRESS = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]"}


def reachable(http: str) -> str:
    """The recorded base URL, with a wildcard listen address replaced by loopback."""
    parts = urlsplit(http)
    host, _, port = parts.netloc.rpartition(":")
    host = ANY_ADDRESS.get(host, host)
    return urlunsplit(parts._replace(netloc=f"{host}:{port}"))


@click.command(name="console")
@config_option
@click.option("--open", "open_browser", is_flag=True, help="Open the link in a web browser.")
def console(config_path: Path | None, open_browser: bool) -> None:
    """Print (or --open) a one-time login link to the web console of the running Rosey."""
    settings = settings_or_exit(config_path)
    running = instances.find(settings)
    if running is None:
        raise click.ClickException(
            f"no running Rosey recorded in {instances.state_path(settings)}; "
            "start one with `rosey run`"
        )
    if not running.http:
        raise click.ClickException(
            "the running Rosey serves no HTTP (http.listen is off); set http.listen and restart it"
        )
    if not settings.console.enabled:
        raise click.ClickException("the web console is off (console.enabled: false)")
    token = settings.console.token or running.token or settings.deploy.token
    if not token:
        raise click.ClickException("no console token: set console.token or deploy.token")
    url = login_url(reachable(running.http), token)
    click.echo(url)
    click.echo(f"(logs in once, within {LINK_WINDOW:g} seconds)", err=True)
    if open_browser and not webbrowser.open(url):
        raise click.ClickException("no web browser could be opened; open the link above")
