"""What every `rosey` subcommand shares: --config, --json, and settings errors as one line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from runtime.errors import RoseyError

if TYPE_CHECKING:  # settings bring YAML; `rosey --help` loads neither
    from runtime.config.settings import Settings

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Settings file (default: ./rosey.yaml if present).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def settings_or_exit(config_path: Path | None) -> Settings:
    """The settings of `config_path` (or ./rosey.yaml); a problem ends the command with one line."""
    from runtime.config.settings import load as load_settings

    try:
        return load_settings(config_path)
    except RoseyError as e:
        raise click.ClickException(str(e)) from e
