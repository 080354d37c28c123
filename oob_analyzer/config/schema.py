"""What the config file says, as frozen (and picklable) dataclasses: `SensorConfig` and its sections.

A value left out of the file is None where a command-line option can give it, so that the
precedence (command line > config file > built-in default) is decided where the options
are: see `oob_analyzer.cli.config_options`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from oob_analyzer.config.applications import ApplicationMap, HostPattern, normalize_host
from oob_analyzer.config.nodes import IpNetwork
from oob_analyzer.detection.policy import DetectionPolicy
from reassembly import ReassemblyLimits

__all__ = ["AllowedHosts", "SensorConfig", "Sources", "StorageSettings"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Sources:
    """What to analyze when the command line names nothing."""

    files: tuple[Path, ...] = ()  # replay, extract: captures or directories (relative to the file)
    interface: str | None = None  # capture
    bpf: str | None = None  # capture
    vxlan: tuple[str, int] | None = None  # listen
    geneve: tuple[str, int] | None = None  # listen
    vnis: tuple[int, ...] = ()  # listen


@dataclass(frozen=True, slots=True, kw_only=True)
class StorageSettings:
    url: str | None = None
    journal: Path | None = None
    flush_interval: float | None = None
    sample_identical: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AllowedHosts:
    """The hosts whose requests are judged; empty: every host."""

    patterns: tuple[HostPattern, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def allows(self, host: str) -> bool:
        name = normalize_host(host)
        return any(pattern.matches(name) for pattern in self.patterns)


Workers = int | Literal["auto"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SensorConfig:
    """The whole config file. Built by `load_config`; the default is an empty file."""

    path: Path | None = None  # where it was read from (None: no file)
    sources: Sources = field(default_factory=Sources)
    applications: ApplicationMap = field(default_factory=ApplicationMap)
    allowed_hosts: AllowedHosts = field(default_factory=AllowedHosts)
    trusted_proxies: tuple[IpNetwork, ...] = ()
    detection: DetectionPolicy = field(default_factory=DetectionPolicy)
    reassembly: ReassemblyLimits = field(default_factory=ReassemblyLimits)
    storage: StorageSettings = field(default_factory=StorageSettings)
    workers: Workers | None = None
    metrics: tuple[str, int] | None = None

    def needs_restart(self, new: SensorConfig) -> list[str]:
        """The sections of `new` that differ from this config and only a restart applies."""
        names = ("sources", "storage", "workers", "metrics", "reassembly")
        return [name for name in names if getattr(self, name) != getattr(new, name)]
