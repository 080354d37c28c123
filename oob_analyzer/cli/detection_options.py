"""The detection option every analyzing command shares: `--config`, and the engine it sets up.

`detect`, `replay`, `listen`, `capture` and `mirror-server` all judge requests with the
same engine, configured by the `detection:` section of the config file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from oob_analyzer.detection import DetectionEngine, DetectionPolicy, PolicyError, default_detectors
from oob_analyzer.detection import load_policy as load_detection_policy
from oob_analyzer.detection.detectors import known_names

__all__ = ["config_option", "detection_engine"]

F = TypeVar("F", bound=Callable[..., Any])


def config_option(function: F) -> F:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False, exists=True),
        envvar="OOB_ANALYZER_CONFIG",
        show_envvar=True,
        help="YAML config file; its `detection:` section (allow-lists, disabled types) applies.",
    )(function)


def detection_engine(config_path: Path | None) -> DetectionEngine:
    """The default detectors under the config file's policy (none: every detector, no allow-list)."""
    detectors = default_detectors()
    if config_path is None:
        return DetectionEngine(detectors, policy=DetectionPolicy())
    try:
        policy = load_detection_policy(config_path, known=known_names(detectors))
    except PolicyError as exc:
        raise click.ClickException(str(exc)) from exc
    return DetectionEngine(detectors, policy=policy)
