"""The sensor's YAML config file: schema, strict loader, and the engine built from it.

`load_config(path)` reads and validates the whole file into a frozen, picklable
`SensorConfig` (or raises `ConfigError`, whose message starts `FILE:LINE: `);
`build_engine(config)` makes the `SensorEngine` that judges requests by it;
`ConfigReloader` re-reads the file on request (SIGHUP) and hands the new config to its
listeners (an engine swaps its judgement, a worker pool reconfigures its workers).
The file's reference is docs/configuration.md.
"""

from oob_analyzer.config.applications import (
    Application,
    ApplicationMap,
    Location,
    LocationKind,
    Resolution,
    RouteMode,
    normalize_path,
    parse_host_pattern,
    parse_location,
)
from oob_analyzer.config.engine import HOST_NOT_ALLOWED, NOT_MONITORED, SensorEngine, build_engine
from oob_analyzer.config.loader import SECTIONS, load_config, parse_config
from oob_analyzer.config.nodes import ConfigError
from oob_analyzer.config.reload import ConfigReloader
from oob_analyzer.config.schema import AllowedHosts, SensorConfig, Sources, StorageSettings

__all__ = [
    "HOST_NOT_ALLOWED",
    "NOT_MONITORED",
    "SECTIONS",
    "AllowedHosts",
    "Application",
    "ApplicationMap",
    "ConfigError",
    "ConfigReloader",
    "Location",
    "LocationKind",
    "Resolution",
    "RouteMode",
    "SensorConfig",
    "SensorEngine",
    "Sources",
    "StorageSettings",
    "build_engine",
    "load_config",
    "normalize_path",
    "parse_config",
    "parse_host_pattern",
    "parse_location",
]
