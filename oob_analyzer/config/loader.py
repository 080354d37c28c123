"""`load_config`: the YAML config file, read strictly into a `SensorConfig`.

Every section goes through the one `NodeReader`; an unknown key, a wrong type or a bad
value is refused with `FILE:LINE: ` and what was expected. docs/configuration.md is the
reference of the file (and tests load its example).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from oob_analyzer.config.applications import (
    Application,
    ApplicationMap,
    HostPattern,
    Location,
    RouteMode,
    parse_host_pattern,
    parse_location,
)
from oob_analyzer.config.detection import read_detection
from oob_analyzer.config.nodes import ConfigError, NodeReader, compose
from oob_analyzer.config.schema import AllowedHosts, SensorConfig, Sources, StorageSettings, Workers
from oob_analyzer.detection.detectors import default_detectors, known_names
from reassembly import ReassemblyLimits

__all__ = ["SECTIONS", "load_config", "parse_config"]

SECTIONS = (
    "sources",
    "applications",
    "allowed_hosts",
    "trusted_proxies",
    "detection",
    "reassembly",
    "storage",
    "workers",
    "metrics",
)
_MODES = tuple(mode.value for mode in RouteMode)
_MAX_VNI = (1 << 24) - 1


def load_config(path: Path) -> SensorConfig:
    """The config file at `path`; `ConfigError` (message `FILE:LINE: ...`) when it is not valid."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}:1: cannot read the config file: {exc}") from exc
    return parse_config(text, source=str(path), base=path.parent, path=path)


def parse_config(
    text: str, *, source: str = "<config>", base: Path | None = None, path: Path | None = None
) -> SensorConfig:
    """The config in `text`; relative paths in it are taken from `base` (the file's directory)."""
    root = compose(text, source)
    if root is None or (isinstance(root, yaml.ScalarNode) and root.value == ""):
        return SensorConfig(path=path)
    return _SectionReader(NodeReader(source), base or Path.cwd()).config(root, path)


class _SectionReader:
    def __init__(self, reader: NodeReader, base: Path) -> None:
        self.reader = reader
        self.base = base

    def config(self, root: yaml.Node, path: Path | None) -> SensorConfig:
        top = self.reader.fields(root, "the config file", SECTIONS)
        read = self.reader
        return SensorConfig(
            path=path,
            sources=self.sources(top["sources"]) if "sources" in top else Sources(),
            applications=self.applications(top["applications"]) if "applications" in top else ApplicationMap(),
            allowed_hosts=AllowedHosts(patterns=self.hosts(top["allowed_hosts"], "allowed_hosts"))
            if "allowed_hosts" in top
            else AllowedHosts(),
            trusted_proxies=tuple(
                read.network(item, "each entry of trusted_proxies")
                for item in read.sequence(top["trusted_proxies"], "trusted_proxies")
            )
            if "trusted_proxies" in top
            else (),
            detection=read_detection(read, top["detection"], known_names(default_detectors()))
            if "detection" in top
            else SensorConfig().detection,
            reassembly=self.reassembly(top["reassembly"]) if "reassembly" in top else ReassemblyLimits(),
            storage=self.storage(top["storage"]) if "storage" in top else StorageSettings(),
            workers=self.workers(top["workers"]) if "workers" in top else None,
            metrics=read.listen_address(top["metrics"], "metrics") if "metrics" in top else None,
        )

    def path(self, node: yaml.Node, what: str) -> Path:
        return self.base / Path(self.reader.text(node, what)).expanduser()

    def sources(self, node: yaml.Node) -> Sources:
        read = self.reader
        fields = read.fields(node, "sources", ("files", "interface", "bpf", "vxlan", "geneve", "vni"))
        if "vxlan" in fields and "geneve" in fields:
            raise read.fail(fields["geneve"], "sources: give one of vxlan and geneve, not both (one listener a sensor)")
        files = fields.get("files")
        vnis = fields.get("vni")
        return Sources(
            files=tuple(
                self.path(item, "each entry of sources.files") for item in read.sequence(files, "sources.files")
            )
            if files is not None
            else (),
            interface=read.text(fields["interface"], "sources.interface") if "interface" in fields else None,
            bpf=read.text(fields["bpf"], "sources.bpf") if "bpf" in fields else None,
            vxlan=read.listen_address(fields["vxlan"], "sources.vxlan") if "vxlan" in fields else None,
            geneve=read.listen_address(fields["geneve"], "sources.geneve") if "geneve" in fields else None,
            vnis=tuple(
                read.integer(item, "each entry of sources.vni", maximum=_MAX_VNI)
                for item in read.sequence(vnis, "sources.vni")
            )
            if vnis is not None
            else (),
        )

    def hosts(self, node: yaml.Node, what: str) -> tuple[HostPattern, ...]:
        patterns: list[HostPattern] = []
        for item in self.reader.sequence(node, what):
            try:
                patterns.append(parse_host_pattern(self.reader.text(item, f"each entry of {what}")))
            except ValueError as exc:
                raise self.reader.fail(item, f"{what}: {exc}") from None
        return tuple(patterns)

    def applications(self, node: yaml.Node) -> ApplicationMap:
        applications: list[Application] = []
        ids: set[str] = set()
        claimed: dict[str, str] = {}  # host pattern -> application id
        for item in self.reader.sequence(node, "applications"):
            fields = self.reader.fields(item, "an applications entry", ("id", "hosts", "mode", "routes"))
            if "id" not in fields:
                raise self.reader.fail(item, "an applications entry needs an id")
            app_id = self.reader.text(fields["id"], "applications.id").strip()
            if app_id in ids:
                raise self.reader.fail(fields["id"], f"duplicate application id {app_id!r}")
            ids.add(app_id)
            what = f"application {app_id!r}"
            application = Application(
                id=app_id,
                mode=self.mode(fields["mode"], f"{what}: mode") if "mode" in fields else RouteMode.MONITORING,
                locations=self.routes(fields["routes"], what) if "routes" in fields else (),
                **({"hosts": self.hosts(fields["hosts"], f"{what}: hosts")} if "hosts" in fields else {}),
            )
            for pattern in application.hosts:
                other = claimed.setdefault(pattern.text, app_id)
                if other == app_id:
                    continue
                if "hosts" not in fields or pattern.any_host:
                    raise self.reader.fail(
                        fields.get("hosts", item),
                        f"{what} takes every host, like application {other!r}: only one application may",
                    )
                raise self.reader.fail(fields["hosts"], f"{what}: host {pattern.text!r} is also application {other!r}")
            applications.append(application)
        return ApplicationMap(applications=tuple(applications))

    def mode(self, node: yaml.Node, what: str) -> RouteMode:
        return RouteMode(self.reader.choice(node, what, _MODES))

    def routes(self, node: yaml.Node, what: str) -> tuple[Location, ...]:
        locations: list[Location] = []
        seen: set[tuple[str, str]] = set()
        for item in self.reader.sequence(node, f"{what}: routes"):
            fields = self.reader.fields(item, f"a route of {what}", ("location", "mode"))
            if "location" not in fields:
                raise self.reader.fail(item, f"a route of {what} needs a location")
            mode = self.mode(fields["mode"], f"{what}: route mode") if "mode" in fields else RouteMode.MONITORING
            try:
                location = parse_location(self.reader.text(fields["location"], f"{what}: location"), mode)
            except ValueError as exc:
                raise self.reader.fail(fields["location"], f"{what}: {exc}") from None
            if (location.kind, location.text) in seen:
                raise self.reader.fail(fields["location"], f"{what}: duplicate location {location.text!r}")
            seen.add((location.kind, location.text))
            locations.append(location)
        return tuple(locations)

    def reassembly(self, node: yaml.Node) -> ReassemblyLimits:
        limits = dataclasses.fields(ReassemblyLimits)
        fields = self.reader.fields(node, "reassembly", (limit.name for limit in limits))
        values: dict[str, int | float] = {}
        for limit in limits:
            if limit.name in fields:
                what = f"reassembly.{limit.name}"
                if limit.type in (float, "float"):
                    values[limit.name] = self.reader.number(fields[limit.name], what)
                else:
                    values[limit.name] = self.reader.integer(fields[limit.name], what, minimum=1)
        return ReassemblyLimits(**values)  # type: ignore[arg-type]

    def storage(self, node: yaml.Node) -> StorageSettings:
        read = self.reader
        fields = read.fields(node, "storage", ("url", "journal", "flush_interval", "sample_identical"))
        url = read.text(fields["url"], "storage.url").strip() if "url" in fields else None
        if url is not None and "://" not in url:
            raise read.fail(
                fields["url"], f"storage.url: {url!r} is not a database URL (sqlite:///PATH, postgresql+psycopg://...)"
            )
        return StorageSettings(
            url=url,
            journal=self.path(fields["journal"], "storage.journal") if "journal" in fields else None,
            flush_interval=read.number(fields["flush_interval"], "storage.flush_interval", above=0.0)
            if "flush_interval" in fields
            else None,
            sample_identical=read.integer(fields["sample_identical"], "storage.sample_identical", minimum=1)
            if "sample_identical" in fields
            else None,
        )

    def workers(self, node: yaml.Node) -> Workers:
        value = self.reader.scalar(node, "workers", "auto or a whole number").strip()
        if value == "auto":
            return "auto"
        if not (value.isascii() and value.isdigit()) or int(value) < 1:
            raise self.reader.fail(node, f"workers must be auto or a whole number of at least 1, not {value!r}")
        return int(value)
