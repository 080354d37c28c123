"""The `detection:` section: allow-lists and disabled attack types, into a `DetectionPolicy`.

The policy's types and matching live in `oob_analyzer.detection.policy`; this module only
reads them from the file, through the file's one `NodeReader`.
"""

from __future__ import annotations

import yaml

from oob_analyzer.config.nodes import NodeReader
from oob_analyzer.detection.policy import AllowRule, DetectionPolicy, PolicyScope, ScopedPolicy

__all__ = ["read_detection"]

_SECTION_KEYS = ("disabled", "allow", "scopes")
_ALLOW_KEYS = ("point", "attack_type", "rule", "value")
_SCOPE_KEYS = ("application", "host", "path", "disabled", "allow")


def read_detection(reader: NodeReader, node: yaml.Node, known: frozenset[str]) -> DetectionPolicy:
    """The policy in the section `node`; `known` is every attack type and rule id a name may be."""
    return _PolicyReader(reader, known).policy(node)


class _PolicyReader:
    def __init__(self, reader: NodeReader, known: frozenset[str]) -> None:
        self.reader = reader
        self.known = known

    def policy(self, node: yaml.Node) -> DetectionPolicy:
        fields = self.reader.fields(node, "detection", _SECTION_KEYS)
        scopes = fields.get("scopes")
        scope_nodes = self.reader.sequence(scopes, "detection.scopes") if scopes is not None else []
        return DetectionPolicy(
            everywhere=self.scope(fields, "detection"), scoped=tuple(self.scoped(item) for item in scope_nodes)
        )

    def names(self, node: yaml.Node | None, what: str) -> frozenset[str]:
        if node is None:
            return frozenset()
        return frozenset(self.known_name(item, f"each entry of {what}") for item in self.reader.sequence(node, what))

    def known_name(self, node: yaml.Node, what: str) -> str:
        name = self.reader.text(node, what).lower()
        if name not in self.known:
            raise self.reader.fail(node, f"{what}: {name!r} is neither an attack type nor a rule id")
        return name

    def allow_rule(self, node: yaml.Node, what: str) -> AllowRule:
        fields = self.reader.fields(node, what, _ALLOW_KEYS)
        if not fields:
            raise self.reader.fail(node, f"{what} must name at least one of point, attack_type, rule, value")
        attack_type, rule = fields.get("attack_type"), fields.get("rule")
        return AllowRule(
            point=self.reader.text(fields["point"], f"{what}.point") if "point" in fields else "*",
            attack_type=self.known_name(attack_type, f"{what}.attack_type") if attack_type is not None else None,
            rule=self.known_name(rule, f"{what}.rule") if rule is not None else None,
            value=self.reader.pattern(fields["value"], f"{what}.value") if "value" in fields else None,
        )

    def scope(self, fields: dict[str, yaml.Node], what: str) -> PolicyScope:
        allow_node = fields.get("allow")
        allow_nodes = self.reader.sequence(allow_node, f"{what}.allow") if allow_node is not None else []
        return PolicyScope(
            disabled=self.names(fields.get("disabled"), f"{what}.disabled"),
            allow=tuple(self.allow_rule(item, f"{what}.allow entry") for item in allow_nodes),
        )

    def scoped(self, node: yaml.Node) -> ScopedPolicy:
        what = "detection.scopes entry"
        fields = self.reader.fields(node, what, _SCOPE_KEYS)
        application, host, path = (
            self.reader.text(fields[key], f"{what}.{key}") if key in fields else None
            for key in ("application", "host", "path")
        )
        if application is None and host is None and path is None:
            raise self.reader.fail(node, f"{what} must select requests by application, host or path")
        return ScopedPolicy(application=application, host=host, path=path, scope=self.scope(fields, what))
