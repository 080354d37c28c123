"""The engine built from the config: allowed hosts, applications and modes, trusted proxies, reload."""

from __future__ import annotations

from pathlib import Path

from oob_analyzer.config import (
    HOST_NOT_ALLOWED,
    NOT_MONITORED,
    ConfigReloader,
    build_engine,
    load_config,
    parse_config,
)
from tests.builders import CLIENT, http_request

SQLI = "/products?id=1%27%20OR%201%3D1--"

CONFIG = """\
applications:
  - id: shop
    hosts: [shop.example.com]
    routes:
      - {location: /health, mode: off}
allowed_hosts: ["*.example.com", shop.example.com]
trusted_proxies: ["192.0.2.0/24"]
"""


def judged(config_text: str, target: str, *headers: tuple[str, str]) -> list[tuple[str, str, str, int]]:
    engine = build_engine(parse_config(config_text))
    hits = engine.analyze(http_request(target, headers=headers or (("Host", "shop.example.com"),)))
    return [(hit.attack_type, hit.application, hit.src_ip, hit.src_port) for hit in hits]


def test_hits_carry_the_application_and_off_routes_are_counted_not_judged() -> None:
    engine = build_engine(parse_config(CONFIG))
    shop = (("Host", "shop.example.com"),)
    assert [hit.application for hit in engine.analyze(http_request(SQLI, headers=shop))] == ["shop"]
    assert engine.analyze(http_request("/health?id=1%27%20OR%201%3D1--", headers=shop)) == []
    assert engine.analyze(http_request("/healthz?id=1%27%20OR%201%3D1--", headers=shop)) == []  # a prefix
    blog = engine.analyze(http_request(SQLI, headers=(("Host", "blog.example.com"),)))
    assert [hit.application for hit in blog] == [""]  # allowed, but no application claims it
    assert engine.counters == {NOT_MONITORED: 2}


def test_requests_for_hosts_not_allowed_are_counted_not_judged() -> None:
    engine = build_engine(parse_config(CONFIG))
    for host in ("evil.example.net", "example.com", ""):
        assert engine.analyze(http_request(SQLI, headers=(("Host", host),))) == []
    assert engine.counters == {HOST_NOT_ALLOWED: 3}


def test_a_trusted_proxy_names_the_client_of_a_hit() -> None:
    xff = ("X-Forwarded-For", "198.18.0.7, 192.0.2.200")  # the right hop is another trusted proxy
    host = ("Host", "shop.example.com")
    assert judged(CONFIG, SQLI, host, xff) == [("sqli", "shop", "198.18.0.7", 0)]
    assert judged(CONFIG, SQLI, host, ("X-Real-IP", "198.18.0.9")) == [("sqli", "shop", "198.18.0.9", 0)]
    untrusted = CONFIG.replace("192.0.2.0/24", "10.0.0.0/8")  # the peer (CLIENT) is not trusted
    assert judged(untrusted, SQLI, host, xff) == [("sqli", "shop", CLIENT, 40000)]
    assert judged("", SQLI, host, xff) == [("sqli", "", CLIENT, 40000)]


def test_a_reload_swaps_the_judgement_and_keeps_the_counters(tmp_path: Path) -> None:
    path = tmp_path / "oob.yaml"
    path.write_text(CONFIG)
    engine = build_engine(load_config(path))
    said: list[str] = []
    reloader = ConfigReloader(engine.config, say=said.append, listeners=[engine.apply])
    shop = (("Host", "shop.example.com"),)
    engine.analyze(http_request("/health", headers=shop))

    path.write_text(CONFIG.replace("id: shop", "id: store") + "storage:\n  url: sqlite:///other.db\n")
    reloader.poll()
    assert said == []  # nothing asked yet: poll does nothing
    reloader.request()
    reloader.poll()
    assert [hit.application for hit in engine.analyze(http_request(SQLI, headers=shop))] == ["store"]
    assert said == [f"config reloaded from {path}", f"{path}: storage changed: applied only after a restart"]

    path.write_text(CONFIG + "detection:\n  disabled: [sqlii]\n")
    reloader.request()
    reloader.poll()
    assert said[-1] == (
        f"config not reloaded, the running config stays: {path}:9: each entry of detection.disabled: "
        "'sqlii' is neither an attack type nor a rule id"
    )
    assert [hit.application for hit in engine.analyze(http_request(SQLI, headers=shop))] == ["store"]
    assert engine.counters == {NOT_MONITORED: 1}
    assert (reloader.reloads, reloader.failures) == (1, 1)
    assert reloader.config.applications.application_for("shop.example.com").id == "store"  # type: ignore[union-attr]
