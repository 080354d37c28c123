"""Host and location resolution, NGINX semantics: which application, and is it monitored."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oob_analyzer.config import RouteMode, normalize_path, parse_config

# NGINX's own example (ngx_http_core_module, "location"), as routes named A..E, plus F and G
# for the case-insensitive regex and a prefix that a regex overrides.
LOCATIONS = """\
applications:
  - id: site
    hosts: [example.com]
    routes:
      - {location: "= /", mode: off}                   # A
      - {location: "/"}                                # B
      - {location: "/documents/", mode: off}           # C
      - {location: "^~ /images/"}                      # D
      - {location: "~* \\\\.(gif|jpg|jpeg)$", mode: off} # E
      - {location: "/api/"}                            # F: a plain prefix...
      - {location: "~ ^/api/v1/internal", mode: off}   # G: ...that the regex after it overrides
"""


@pytest.mark.parametrize(
    ("target", "mode"),
    [
        ("/", RouteMode.OFF),  # A: exact
        ("/index.html", RouteMode.MONITORING),  # B: the only prefix
        ("/documents/document.html", RouteMode.OFF),  # C
        ("/documents/", RouteMode.OFF),  # C
        ("/images/1.gif", RouteMode.MONITORING),  # D: ^~ stops the regexes (E would say off)
        ("/documents/1.jpg", RouteMode.OFF),  # E: a regex beats the longest plain prefix C
        ("/docs/1.JPG", RouteMode.OFF),  # E is caseless
        ("/api/v1/internal/users", RouteMode.OFF),  # G beats F
        ("/api/v1/public", RouteMode.MONITORING),  # F
        ("/?q=x", RouteMode.OFF),  # the query is not part of the path: A
        ("/documents/../search?q=1", RouteMode.MONITORING),  # normalized to /search: B, not C
        ("/%64ocuments/x", RouteMode.OFF),  # %64 is d: C
        ("//documents//x", RouteMode.OFF),  # merged slashes: C
        ("/images/../documents/x.html", RouteMode.OFF),  # not D's: the path is /documents/x.html
        ("http://example.com/documents/x", RouteMode.OFF),  # absolute-form target
    ],
)
def test_locations_are_chosen_as_nginx_chooses_them(target: str, mode: RouteMode) -> None:
    resolution = parse_config(LOCATIONS).applications.resolve("example.com", target)
    assert (resolution.application, resolution.mode) == ("site", mode)


HOSTS = """\
applications:
  - id: exact
    hosts: [www.example.com]
  - id: leading
    hosts: ["*.example.com"]
  - id: longer-leading
    hosts: ["*.shop.example.com"]
  - id: bare-too
    hosts: [".example.org"]
  - id: trailing
    hosts: ["www.example.*"]
  - id: fallback
    mode: off
"""


@pytest.mark.parametrize(
    ("host", "application"),
    [
        ("www.example.com", "exact"),  # an exact name beats every wildcard
        ("WWW.Example.COM:8080", "exact"),  # case and port do not matter
        ("www.example.com.", "exact"),  # nor a trailing dot
        ("api.example.com", "leading"),
        ("a.b.example.com", "leading"),  # a leading wildcard spans several labels, as in NGINX
        ("cart.shop.example.com", "longer-leading"),  # the longest leading wildcard wins
        ("example.org", "bare-too"),
        ("x.example.org", "bare-too"),
        ("www.example.net", "trailing"),
        ("example.com", "fallback"),  # "*.example.com" needs a label before it
        ("", "fallback"),
    ],
)
def test_hosts_are_matched_like_server_names(host: str, application: str) -> None:
    resolution = parse_config(HOSTS).applications.resolve(host, "/")
    assert resolution.application == application
    assert resolution.mode is (RouteMode.OFF if application == "fallback" else RouteMode.MONITORING)


def test_a_host_no_application_claims_is_monitored_without_an_application() -> None:
    config = parse_config("applications:\n  - id: shop\n    hosts: [shop.example.com]\n")
    resolution = config.applications.resolve("blog.example.com", "/")
    assert (resolution.application, resolution.mode) == ("", RouteMode.MONITORING)


@pytest.mark.parametrize(
    ("target", "path"),
    [
        ("/", "/"),
        ("/a/b/", "/a/b/"),
        ("/a/./b", "/a/b"),
        ("/a/../../etc/passwd", "/etc/passwd"),  # no climbing above the root
        ("/a/..", "/"),
        ("/a%2F..%2Fb", "/b"),  # encoded slashes are decoded first, as NGINX does
        ("/caf%C3%A9", "/café"),
        ("*", "/*"),  # OPTIONS *: not a path; only the catch-all prefix "/" matches it
    ],
)
def test_paths_are_normalized_before_matching(target: str, path: str) -> None:
    assert normalize_path(target) == path


@given(st.text(alphabet="/.%2aFfE?#x", max_size=40))
def test_a_normalized_path_is_absolute_normal_and_stays_as_it_is(target: str) -> None:
    path = normalize_path("/" + target)
    assert path.startswith("/")
    assert "//" not in path and "/./" not in path and "/../" not in path
    assert not path.endswith(("/.", "/.."))
    if "%" not in path:  # a decoded "%" could start a new escape: NGINX decodes once, so do we
        assert normalize_path(path) == path
