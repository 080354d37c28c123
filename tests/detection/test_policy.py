from __future__ import annotations

from pathlib import Path

import pytest

from oob_analyzer.detection import DetectionEngine, PolicyError, default_detectors, load_policy, parse_policy
from oob_analyzer.detection.detectors import known_names
from tests.builders import http_request

CONFIG = """\
mirror:            # another stage's section: left alone
  interface: eth1
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
    engine = DetectionEngine(default_detectors(), policy=parse_policy(policy_text))
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


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("detection:\n  disabled: [xss]\n  allowlist: []\n", "<config>:3: unknown key 'allowlist' in detection"),
        ("detection:\n  scopes:\n    - hots: x\n", "<config>:3: unknown key 'hots' in detection.scopes entry"),
        ("detection:\n  scopes:\n    - disabled: [xss]\n", "<config>:3: detection.scopes entry must select requests"),
        ("detection:\n  allow:\n    - value: '(['\n", "<config>:3: detection.allow entry.value is not a valid regular"),
        ("detection:\n  disabled: xss\n", "<config>:2: detection.disabled must be a list"),
        ("detection: [1, 2\n", "<config>: not valid YAML"),
    ],
)
def test_invalid_config_is_refused_with_line_and_reason(text: str, message: str) -> None:
    with pytest.raises(PolicyError) as raised:
        parse_policy(text)
    assert str(raised.value).startswith(message)


def test_unknown_attack_type_or_rule_is_refused_when_names_are_known() -> None:
    known = known_names(default_detectors())
    assert "sqli" in known and "lfi-dot-dot" in known and "libinjection-xss" in known
    with pytest.raises(PolicyError, match=r"<config>:2: .*'sqlii' is neither an attack type nor a rule id"):
        parse_policy("detection:\n  disabled: [sqlii]\n", known=known)
    with pytest.raises(PolicyError, match=r"<config>:4: .*'xs' is neither"):
        parse_policy("detection:\n  allow:\n    - point: q\n      attack_type: xs\n", known=known)


def test_policy_file_errors_name_the_file(tmp_path: Path) -> None:
    config = tmp_path / "oob.yaml"
    config.write_text("detection:\n  disabld: []\n")
    with pytest.raises(PolicyError, match=r"oob\.yaml:2: unknown key 'disabld'"):
        load_policy(config)
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.yaml")
