"""`--config FILE` for every analyzing command, and the precedence of its values.

The file is read and validated before anything else happens (no socket opened, no file
read): a bad file ends the command with exit 2 and the `FILE:LINE: ` message. A value
comes from the command line (or the option's environment variable) first, then from the
config file, then from the built-in default.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict, TypeVar

import click
from click.core import ParameterSource

from oob_analyzer.cli.exit_codes import ExitCode
from oob_analyzer.config import ConfigError, SensorConfig, load_config

__all__ = [
    "ConfigFileError",
    "WriterSettings",
    "config_option",
    "from_config",
    "recording_settings",
    "sensor_config",
]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


class ConfigFileError(click.ClickException):
    """The config file is not valid: a usage error (exit 2), message `FILE:LINE: ...`."""

    exit_code = ExitCode.USAGE


def config_option(function: F) -> F:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        envvar="OOB_ANALYZER_CONFIG",
        show_envvar=True,
        metavar="FILE",
        help="YAML config file (docs/configuration.md). Options given on the command line win over it; "
        "it wins over the defaults shown here.",
    )(function)


def sensor_config(config_path: Path | None) -> SensorConfig:
    """The config file's contents (an empty config without one); exit 2 when it is not valid."""
    if config_path is None:
        return SensorConfig()
    try:
        return load_config(config_path)
    except ConfigError as exc:
        raise ConfigFileError(str(exc)) from exc


def from_config(name: str, given: T, configured: T | None) -> T:
    """`given` unless option `name` was left at its default and the config file sets it."""
    context = click.get_current_context()
    if configured is None or context.get_parameter_source(name) not in (ParameterSource.DEFAULT, None):
        return given
    return configured


class WriterSettings(TypedDict):
    """`recording_run`'s keywords besides the source: the database and the writer's options."""

    db_url: str
    journal: Path | None
    sample_identical: int | None
    flush_interval: float


def recording_settings(
    config: SensorConfig, *, db_url: str, journal: Path | None, sample_identical: int | None, flush_interval: float
) -> WriterSettings:
    """The writer's options as given, where not given, from the config file's `storage:`."""
    storage = config.storage
    return WriterSettings(
        db_url=from_config("db_url", db_url, storage.url),
        journal=from_config("journal", journal, storage.journal),
        sample_identical=from_config("sample_identical", sample_identical, storage.sample_identical),
        flush_interval=from_config("flush_interval", flush_interval, storage.flush_interval),
    )
