"""Detection policy: what to ignore where. Allow-lists and disabled attack types, per scope.

The policy's data types and their matching only. The `detection:` section of the config
file that fills them is read by `oob_analyzer.config` (docs/configuration.md), with the
file's one strict reader:

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
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from oob_analyzer.detection.events import Finding

__all__ = ["AllowRule", "DetectionPolicy", "PolicyScope", "ScopedPolicy"]


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
class ScopedPolicy:
    """A scope and the requests it is for: globs on application, host and path (None: any)."""

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
    scoped: tuple[ScopedPolicy, ...] = field(default=())

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
