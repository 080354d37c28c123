"""The detection policy's matching: disabled types and allow-lists, everywhere and per scope.

The policy is written as in the config file and read by its loader (`oob_analyzer.config`);
the loader's errors are tested in tests/config/test_loader.py.
"""

from __future__ import annotations

from oob_analyzer.config import parse_config
from oob_analyzer.detection import DetectionEngine, default_detectors
from oob_analyzer.detection.detectors import known_names
from tests.builders import http_request

CONFIG = """\
detection:
  disabled: [scanner]
  allow:
    - point: "query.html"
      attack_type: xss
      value: "^<b>[^<]*</b>$"
  scopes:
    - host: "*.internal.example"
      path: "/admin/sql*"
      disabled: [sqli]
    - application: docs
      allow:
        - rule: lfi-dot-dot
"""


def hit_types(policy_text: str, target: str, *, host: str = "shop.example.com", application: str = "") -> set[str]:
    engine = DetectionEngine(default_detectors(), policy=parse_config(policy_text).detection)
    request = http_request(target, headers=(("Host", host), ("User-Agent", "sqlmap/1.7")))
    return {hit.attack_type for hit in engine.analyze(request, application=application)}


def test_disabled_types_and_allow_lists_apply_where_scoped() -> None:
    sqli = "/admin/sql?q=1%27%20OR%201%3D1--"
    assert hit_types("", sqli) == {"sqli", "scanner"}
    assert hit_types(CONFIG, sqli) == {"sqli"}
    assert hit_types(CONFIG, sqli, host="db.internal.example") == set()
    assert hit_types(CONFIG, "/p?html=%3Cb%3Ehi%3C/b%3E") == set()
    assert hit_types(CONFIG, "/p?html=%3Cscript%3Ex%3C/script%3E") == {"xss"}
    assert hit_types(CONFIG, "/p?f=../../etc/passwd", application="docs") == {"path_traversal"}


def test_allowed_rule_still_leaves_other_rules_of_the_type() -> None:
    assert hit_types(CONFIG, "/p?f=..%2F..%2Fnotes.txt", application="docs") == set()


def test_the_names_a_policy_may_use_are_the_detectors_types_and_rules() -> None:
    known = known_names(default_detectors())
    assert "sqli" in known and "lfi-dot-dot" in known and "libinjection-xss" in known
