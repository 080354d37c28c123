"""Request points: the places in a request where a payload can hide, decoded for inspection.

Each point has a stable name that says where it is (`path`, `query.id`, `body.form.comment`,
`body.json.user.name`, `header.user-agent`, `cookie.session`), a `kind` detectors use to pick
what they look at, and the value a detector sees after percent-decoding. Deeper decoding
(base64, entities, escapes) is the engine's job, in `decoders`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from oob_analyzer.detection.body_points import body_points, json_points, jwt_claims
from oob_analyzer.detection.decoders import percent_decode
from oob_analyzer.detection.request_point import MAX_POINT_CHARS, RequestPoint, bounded, urlencoded_points
from reassembly.events import HttpRequest

__all__ = [
    "MAX_POINT_CHARS",
    "RequestPoint",
    "body_and_anomaly_points",
    "extract_points",
    "header_points",
    "path_points",
    "percent_decode",
    "query_points",
]

# Headers whose values carry no attacker-chosen text worth inspecting as a payload.
_STRUCTURAL_HEADERS = frozenset({"content-length", "cookie"})
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{2,}\.eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")


def extract_points(request: HttpRequest, *, headers: bool = True) -> list[RequestPoint]:
    """Every point of `request`: path, query, headers, cookies, body, reassembly anomalies.

    `headers=False` leaves the header fields out, for a caller that takes them one by one
    with `header_points` (the engine does, to judge a repeated header once). A list, filled
    by `extend` from the part generators: cheaper than a chain of `yield from` per point.
    """
    path, _, query = request.target.partition("?")
    points = list(path_points(path))
    if query:
        points.extend(query_points(query))
    if headers:
        for raw_name, value in request.headers:
            points.extend(header_points(raw_name, value))
    points.extend(body_and_anomaly_points(request))
    return points


def body_and_anomaly_points(request: HttpRequest) -> list[RequestPoint]:
    """The points of the body, then the reassembly anomalies of `request` as one point."""
    points = list(body_points(request)) if request.body else []
    if request.anomalies:
        points.append(RequestPoint("request", " ".join(request.anomalies), "anomaly"))
    return points


def query_points(query: str) -> Iterator[RequestPoint]:
    """The points of a query string (the target after its first `?`)."""
    return urlencoded_points("query", query)


def path_points(path: str) -> Iterator[RequestPoint]:
    """The points of a path (the target before its first `?`): all of it, and each segment."""
    decoded = bounded(percent_decode(path, plus_is_space=False))
    yield RequestPoint("path", decoded, "path")
    segments = [segment for segment in path.split("/") if segment]
    if len(segments) > 1 or (segments and len(segments[0]) + 1 < len(path)):
        for index, segment in enumerate(segments):
            yield RequestPoint(f"path.{index}", bounded(percent_decode(segment, plus_is_space=False)), "path_segment")


def header_points(raw_name: str, value: str) -> Iterator[RequestPoint]:
    """The points of one header field: its value, each cookie, the claims of a JWT in it."""
    name = raw_name.lower()
    if name == "cookie":
        yield from _cookie_points(value)
    elif name not in _STRUCTURAL_HEADERS:
        yield RequestPoint(f"header.{name}", bounded(value), "header")
        if "eyJ" in value:  # what every JWT starts with: no generator to set up for the others
            yield from _jwt_points(f"header.{name}", value)


def _cookie_points(header_value: str) -> Iterator[RequestPoint]:
    for pair in header_value.split(";"):
        name, _, value = pair.strip().partition("=")
        if not name and not value:
            continue
        yield RequestPoint(f"cookie.{name}", bounded(percent_decode(value)), "cookie")
        if "eyJ" in value:
            yield from _jwt_points(f"cookie.{name}", value)


def _jwt_points(prefix: str, text: str) -> Iterator[RequestPoint]:
    for match in _JWT.finditer(text):
        claims = jwt_claims(match.group(0))
        if claims is not None:
            yield from json_points(f"{prefix}.jwt", claims, kind="jwt")
