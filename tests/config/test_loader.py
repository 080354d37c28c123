"""The config file's strict loader: each kind of mistake refused with its line, and what is read."""

from __future__ import annotations

import ipaddress
import pickle
from pathlib import Path

import pytest

from oob_analyzer.config import (
    ConfigError,
    RouteMode,
    SensorConfig,
    build_engine,
    load_config,
    parse_config,
)
from reassembly import ReassemblyLimits
from tests.builders import http_request

# (text, the message the error starts with): one row per kind of mistake, each on a known line.
MISTAKES = [
    ("sources: {}\nsauces: {}\n", "<config>:2: unknown key 'sauces' in the config file (expected one of: "),
    ("detection:\n  disabled: [xss]\n  allowlist: []\n", "<config>:3: unknown key 'allowlist' in detection"),
    ("detection:\n  scopes:\n    - hots: x\n", "<config>:3: unknown key 'hots' in detection.scopes entry"),
    ("detection:\n  scopes:\n    - disabled: [xss]\n", "<config>:3: detection.scopes entry must select requests"),
    ("detection:\n  allow:\n    - value: '(['\n", "<config>:3: detection.allow entry.value is not a valid regular"),
    ("detection:\n  disabled: xss\n", "<config>:2: detection.disabled must be a list"),
    ("detection:\n  disabled: [sqlii]\n", "<config>:2: each entry of detection.disabled: 'sqlii' is neither"),
    (
        "detection:\n  allow:\n    - point: q\n      attack_type: xs\n",
        "<config>:4: detection.allow entry.attack_type: 'xs'",
    ),
    ("detection: [1, 2\n", "<config>:2: not valid YAML"),
    ("workers: 2\nworkers: 3\n", "<config>:2: duplicate key 'workers' in the config file"),
    ("- just\n- a list\n", "<config>:1: the config file must be a mapping"),
    (
        "trusted_proxies:\n  - 10.0.0.0/8\n  - 10.0.0.300/8\n",
        "<config>:3: each entry of trusted_proxies: '10.0.0.300/8' is not",
    ),
    ("trusted_proxies: 10.0.0.0/8\n", "<config>:1: trusted_proxies must be a list"),
    (
        "allowed_hosts:\n  - shop.example.com\n  - 'shop.*.com'\n",
        "<config>:3: allowed_hosts: 'shop.*.com' is not a host",
    ),
    ("applications:\n  - hosts: [a.example]\n", "<config>:2: an applications entry needs an id"),
    (
        "applications:\n  - id: shop\n    hosts: [a.example]\n  - id: shop\n    hosts: [b.example]\n",
        "<config>:4: duplicate application id 'shop'",
    ),
    (
        "applications:\n  - id: shop\n    hosts: [a.example]\n  - id: blog\n    hosts: [b.example, a.example]\n",
        "<config>:5: application 'blog': host 'a.example' is also application 'shop'",
    ),
    (
        "applications:\n  - id: shop\n  - id: blog\n",
        "<config>:3: application 'blog' takes every host, like application 'shop': only one application may",
    ),
    (
        "applications:\n  - id: shop\n    routes:\n      - location: '~ ([a-z'\n",
        "<config>:4: application 'shop': '([a-z' is not a valid regular expression",
    ),
    (
        "applications:\n  - id: shop\n    routes:\n      - location: api/\n",
        "<config>:4: application 'shop': 'api/' is not a location",
    ),
    (
        "applications:\n  - id: shop\n    routes:\n      - location: /api/\n        mode: monitor\n",
        "<config>:5: application 'shop': route mode must be one of monitoring, off, not 'monitor'",
    ),
    (
        "applications:\n  - id: shop\n    routes:\n      - location: /a\n      - location: /a\n",
        "<config>:5: application 'shop': duplicate location '/a'",
    ),
    (
        "applications:\n  - id: shop\n    routes:\n      - mode: off\n",
        "<config>:4: a route of application 'shop' needs a location",
    ),
    ("reassembly:\n  max_flows: lots\n", "<config>:2: reassembly.max_flows must be a whole number, not 'lots'"),
    ("reassembly:\n  max_flows: 0\n", "<config>:2: reassembly.max_flows must be at least 1, not 0"),
    ("reassembly:\n  idle_timeout: -5\n", "<config>:2: reassembly.idle_timeout must be a number above 0, not -5"),
    ("reassembly:\n  max_flow: 10\n", "<config>:2: unknown key 'max_flow' in reassembly"),
    ("storage:\n  url: hits.db\n", "<config>:2: storage.url: 'hits.db' is not a database URL"),
    ("storage:\n  flush_interval: [1]\n", "<config>:2: storage.flush_interval must be a number, not a list"),
    ("storage:\n  sample_identical: 0\n", "<config>:2: storage.sample_identical must be at least 1, not 0"),
    ("workers: many\n", "<config>:1: workers must be auto or a whole number of at least 1, not 'many'"),
    ("workers: 0\n", "<config>:1: workers must be auto or a whole number of at least 1, not '0'"),
    ("metrics: 'localhost:http'\n", "<config>:1: metrics: 'localhost:http' is not [ADDR:]PORT"),
    ("sources:\n  vni: [16777216]\n", "<config>:2: each entry of sources.vni must be at least 0 and at most 16777215"),
    ("sources:\n  vxlan: 4789\n  geneve: 6081\n", "<config>:3: sources: give one of vxlan and geneve, not both"),
    (
        "sources:\n  interface: {name: eth0}\n",
        "<config>:2: sources.interface must be a non-empty string, not a mapping",
    ),
]


@pytest.mark.parametrize(("text", "message"), MISTAKES)
def test_each_mistake_is_refused_with_its_line_and_what_was_expected(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(text)
    assert str(raised.value).startswith(message), str(raised.value)


def test_errors_name_the_file(tmp_path: Path) -> None:
    config = tmp_path / "oob.yaml"
    config.write_text("detection:\n  disabld: []\n")
    with pytest.raises(ConfigError, match=r"^.*oob\.yaml:2: unknown key 'disabld'"):
        load_config(config)
    with pytest.raises(ConfigError, match=r"missing\.yaml:1: cannot read the config file"):
        load_config(tmp_path / "missing.yaml")


FULL = """\
sources:
  files: [captures/, one.pcap]
  interface: eth1
  bpf: tcp port 80
  vxlan: "0.0.0.0:4789"
  vni: [7, 8]
applications:
  - id: shop
    hosts: [shop.example.com, "*.shop.example.com"]
    routes:
      - {location: /static/, mode: off}
allowed_hosts: [".example.com"]
trusted_proxies: [10.0.0.0/8, "2001:db8::/32"]
reassembly:
  max_flows: 5_000
  idle_timeout: 30
storage:
  url: postgresql+psycopg://postgres@127.0.0.1:5432/test
  journal: journal.jsonl
  flush_interval: 0.25
  sample_identical: 10
workers: auto
metrics: "127.0.0.1:9108"
"""


def test_every_section_is_read(tmp_path: Path) -> None:
    path = tmp_path / "oob.yaml"
    path.write_text(FULL)
    config = load_config(path)
    assert config.sources.files == (tmp_path / "captures", tmp_path / "one.pcap")  # relative to the file
    assert (config.sources.interface, config.sources.bpf) == ("eth1", "tcp port 80")
    assert (config.sources.vxlan, config.sources.geneve, config.sources.vnis) == (("0.0.0.0", 4789), None, (7, 8))
    assert config.applications.resolve("www.shop.example.com", "/static/a.css").mode is RouteMode.OFF
    assert config.allowed_hosts.allows("example.com") and not config.allowed_hosts.allows("example.org")
    assert config.trusted_proxies == (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8::/32"))
    assert config.reassembly == ReassemblyLimits(max_flows=5000, idle_timeout=30.0)
    assert config.storage.url == "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    assert config.storage.journal == tmp_path / "journal.jsonl"
    assert (config.storage.flush_interval, config.storage.sample_identical) == (0.25, 10)
    assert (config.workers, config.metrics) == ("auto", ("127.0.0.1", 9108))
    assert parse_config("workers: 4\nmetrics: 9108\n").metrics == ("0.0.0.0", 9108)
    assert parse_config("workers: 4\n").workers == 4


def test_an_empty_file_is_the_defaults() -> None:
    assert parse_config("") == SensorConfig()
    assert parse_config("# nothing yet\n") == SensorConfig()


def test_the_config_pickles_and_a_worker_rebuilds_the_same_engine(tmp_path: Path) -> None:
    path = tmp_path / "oob.yaml"
    path.write_text(FULL + "detection:\n  allow:\n    - {point: query.q, value: '^<b>'}\n")
    config = load_config(path)
    copy = pickle.loads(pickle.dumps(config))
    assert copy == config
    request = http_request("/p?q=%3Cb%3E&id=1%27%20OR%201%3D1--", headers=(("Host", "shop.example.com"),))
    original = [(hit.attack_type, hit.application) for hit in build_engine(config).analyze(request)]
    assert original == [("sqli", "shop")]
    assert [(hit.attack_type, hit.application) for hit in build_engine(copy).analyze(request)] == original
