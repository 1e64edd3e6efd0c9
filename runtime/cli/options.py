"""What every `rosey` subcommand shares: --config, --json, and settings errors as one line."""

from __future__ import annotations

from pathlib import Path

import click

from runtime.config.settings import Settings
from runtime.config.settings import load as load_settings
from runtime.errors import RoseyError

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Settings file (default: ./rosey.yaml if present).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def settings_or_exit(config_path: Path | None) -> Settings:
    try:
        return load_settings(config_path)
    except RoseyError as e:
        raise click.ClickException(str(e)) from e
