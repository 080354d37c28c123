"""Detection policy: what to ignore where. Allow-lists and disabled attack types, per scope.

The `detection:` section of the YAML config file:

    detection:
      disabled: [scanner]                 # attack types or rule ids, everywhere
      allow:                              # findings to drop, everywhere
        - point: "query.q"                # glob on the point name
          attack_type: xss                # optional: only this type
          rule: xss-js-sink               # optional: only this rule
          value: "^<b>[^<]*</b>$"         # optional: regex on the payload
      scopes:                             # the same, for some requests only
        - application: shop               # each selector optional; all given must match
          host: "*.example.com"           # glob on the Host header
          path: "/api/docs/*"             # glob on the request target
          disabled: [sqli]
          allow: [...]

Loading is strict: an unknown key, a wrong type or a bad pattern is refused with the file,
the line and what was expected. Other top-level sections belong to other stages and are
left alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

import yaml

from oob_analyzer.detection.events import Finding

__all__ = ["AllowRule", "DetectionPolicy", "PolicyError", "PolicyScope", "load_policy", "parse_policy"]


class PolicyError(ValueError):
    """The config file's detection section is not valid; the message names file and line."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AllowRule:
    point: str = "*"
    attack_type: str | None = None
    rule: str | None = None
    value: re.Pattern[str] | None = None

    def covers(self, finding: Finding) -> bool:
        return (
            fnmatchcase(finding.point, self.point)
            and self.attack_type in (None, finding.attack_type)
            and self.rule in (None, finding.rule)
            and (self.value is None or self.value.search(finding.payload) is not None)
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyScope:
    """What applies to one request: types/rules switched off and findings allowed."""

    disabled: frozenset[str] = frozenset()
    allow: tuple[AllowRule, ...] = ()

    def permits(self, finding: Finding) -> bool:
        if finding.rule in self.disabled or finding.attack_type in self.disabled:
            return False
        return not self.allow or not any(rule.covers(finding) for rule in self.allow)


@dataclass(frozen=True, slots=True, kw_only=True)
class _ScopedPolicy:
    application: str | None
    host: str | None
    path: str | None
    scope: PolicyScope

    def applies(self, *, application: str, host: str, path: str) -> bool:
        return (
            (self.application is None or fnmatchcase(application, self.application))
            and (self.host is None or fnmatchcase(host.lower(), self.host.lower()))
            and (self.path is None or fnmatchcase(path, self.path))
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class DetectionPolicy:
    everywhere: PolicyScope = PolicyScope()
    scoped: tuple[_ScopedPolicy, ...] = field(default=())

    def scope_for(self, *, application: str, host: str, path: str) -> PolicyScope:
        if not self.scoped:
            return self.everywhere
        disabled = set(self.everywhere.disabled)
        allow = list(self.everywhere.allow)
        for scoped in self.scoped:
            if scoped.applies(application=application, host=host, path=path):
                disabled |= scoped.scope.disabled
                allow.extend(scoped.scope.allow)
        return PolicyScope(disabled=frozenset(disabled), allow=tuple(allow))


def load_policy(path: Path, *, known: frozenset[str] | None = None) -> DetectionPolicy:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: cannot read the config file: {exc}") from exc
    return parse_policy(text, source=str(path), known=known)


def parse_policy(text: str, *, source: str = "<config>", known: frozenset[str] | None = None) -> DetectionPolicy:
    """The policy in `text`. With `known` (attack types and rule ids), a name not in it is refused."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source}: not valid YAML: {exc}") from exc
    if root is None:
        return DetectionPolicy()
    reader = _NodeReader(source, known)
    top = reader.mapping(root, "the config file")
    section = top.get("detection")
    if section is None:
        return DetectionPolicy()
    fields = reader.fields(section, "detection", {"disabled", "allow", "scopes"})
    scopes = fields.get("scopes")
    return DetectionPolicy(
        everywhere=reader.scope(fields, "detection"),
        scoped=tuple(reader.scoped(node) for node in reader.sequence(scopes, "detection.scopes")) if scopes else (),
    )


class _NodeReader:
    """Walks the YAML node tree, so every error can quote the line it is about."""

    def __init__(self, source: str, known: frozenset[str] | None) -> None:
        self.source = source
        self.known = known

    def fail(self, node: yaml.Node, message: str) -> PolicyError:
        return PolicyError(f"{self.source}:{node.start_mark.line + 1}: {message}")

    def mapping(self, node: yaml.Node, what: str) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{what} must be a mapping of keys to values")
        result: dict[str, yaml.Node] = {}
        for key, value in node.value:
            result[str(key.value)] = value
        return result

    def fields(self, node: yaml.Node, what: str, allowed: set[str]) -> dict[str, yaml.Node]:
        result = self.mapping(node, what)
        for key_node, _ in node.value:
            if key_node.value not in allowed:
                known = ", ".join(sorted(allowed))
                raise self.fail(key_node, f"unknown key {key_node.value!r} in {what} (expected one of: {known})")
        return result

    def sequence(self, node: yaml.Node, what: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, f"{what} must be a list")
        return list(node.value)

    def text(self, node: yaml.Node, what: str) -> str:
        if not isinstance(node, yaml.ScalarNode) or not str(node.value).strip():
            raise self.fail(node, f"{what} must be a non-empty string")
        return str(node.value)

    def pattern(self, node: yaml.Node, what: str) -> re.Pattern[str]:
        text = self.text(node, what)
        try:
            return re.compile(text)
        except re.error as exc:
            raise self.fail(node, f"{what} is not a valid regular expression: {exc}") from exc

    def names(self, node: yaml.Node | None, what: str) -> frozenset[str]:
        if node is None:
            return frozenset()
        return frozenset(self.known_name(item, f"each entry of {what}") for item in self.sequence(node, what))

    def known_name(self, node: yaml.Node, what: str) -> str:
        name = self.text(node, what).lower()
        if self.known is not None and name not in self.known:
            raise self.fail(node, f"{what}: {name!r} is neither an attack type nor a rule id")
        return name

    def allow_rule(self, node: yaml.Node, what: str) -> AllowRule:
        fields = self.fields(node, what, {"point", "attack_type", "rule", "value"})
        if not fields:
            raise self.fail(node, f"{what} must name at least one of point, attack_type, rule, value")
        return AllowRule(
            point=self.text(fields["point"], f"{what}.point") if "point" in fields else "*",
            attack_type=self.known_name(fields["attack_type"], f"{what}.attack_type")
            if "attack_type" in fields
            else None,
            rule=self.known_name(fields["rule"], f"{what}.rule") if "rule" in fields else None,
            value=self.pattern(fields["value"], f"{what}.value") if "value" in fields else None,
        )

    def scope(self, fields: dict[str, yaml.Node], what: str) -> PolicyScope:
        allow_node = fields.get("allow")
        allow_nodes = self.sequence(allow_node, f"{what}.allow") if allow_node is not None else []
        return PolicyScope(
            disabled=self.names(fields.get("disabled"), f"{what}.disabled"),
            allow=tuple(self.allow_rule(item, f"{what}.allow entry") for item in allow_nodes),
        )

    def scoped(self, node: yaml.Node) -> _ScopedPolicy:
        what = "detection.scopes entry"
        fields = self.fields(node, what, {"application", "host", "path", "disabled", "allow"})
        selectors = _optional_texts(self, fields, what, ("application", "host", "path"))
        if not any(selectors):
            raise self.fail(node, f"{what} must select requests by application, host or path")
        application, host, path = selectors
        return _ScopedPolicy(application=application, host=host, path=path, scope=self.scope(fields, what))


def _optional_texts(
    reader: _NodeReader, fields: dict[str, yaml.Node], what: str, keys: Iterable[str]
) -> list[str | None]:
    return [reader.text(fields[key], f"{what}.{key}") if key in fields else None for key in keys]
