"""Request points: the places in a request where a payload can hide, decoded for inspection.

Each point has a stable name that says where it is (`path`, `query.id`, `body.form.comment`,
`body.json.user.name`, `header.user-agent`, `cookie.session`), a `kind` detectors use to pick
what they look at, and the value a detector sees after percent-decoding. Deeper decoding
(base64, entities, escapes) is the engine's job, in `decoders`.
"""

from __future__ import annotations

import re
from functools import partial

from oob_analyzer.detection.body_points import _SCAN_JSON, add_json_points, body_points, jwt_claims
from oob_analyzer.detection.decoders import percent_decode
from oob_analyzer.detection.request_point import MAX_POINT_CHARS, RequestPoint, bounded, new_point, urlencoded_points
from reassembly.events import HttpRequest

__all__ = [
    "MAX_POINT_CHARS",
    "RequestPoint",
    "body_and_anomaly_points",
    "extract_points",
    "header_points",
    "path_points",
    "percent_decode",
    "python_header_points",
    "python_path_points",
    "query_points",
]

# Headers whose values carry no attacker-chosen text worth inspecting as a payload.
_STRUCTURAL_HEADERS = frozenset({"content-length", "cookie"})
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{2,}\.eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")


def extract_points(request: HttpRequest, *, headers: bool = True) -> list[RequestPoint]:
    """Every point of `request`: path, query, headers, cookies, body, reassembly anomalies.

    `headers=False` leaves the header fields out, for a caller that takes them one by one
    with `header_points` (the engine does, to judge a repeated header once).
    """
    path, _, query = request.target.partition("?")
    points = path_points(path)
    if query:
        points += query_points(query)
    if headers:
        for raw_name, value in request.headers:
            points += header_points(raw_name, value)
    points += body_and_anomaly_points(request)
    return points


def body_and_anomaly_points(request: HttpRequest) -> list[RequestPoint]:
    """The points of the body, then the reassembly anomalies of `request` as one point."""
    points = body_points(request) if request.body else []
    if request.anomalies:
        points.append(RequestPoint("request", " ".join(request.anomalies), "anomaly"))
    return points


# Every builder below returns a new list, filled in one loop: the generators they were
# cost a resume per point, more than the point itself in the profile of benign traffic.


def query_points(query: str) -> list[RequestPoint]:
    """The points of a query string (the target after its first `?`)."""
    return urlencoded_points("query", query)


def python_path_points(path: str) -> list[RequestPoint]:
    """The points of a path (the target before its first `?`): all of it, and each segment.

    The reference for `path_points`, which is the compiled `_request_points.path_points` when
    it is built (tests/detection/test_compiled_request_points.py holds the two to the same points).
    """
    points = [new_point(RequestPoint, ("path", bounded(percent_decode(path, plus_is_space=False)), "path"))]
    segments = [segment for segment in path.split("/") if segment]
    if len(segments) > 1 or (segments and len(segments[0]) + 1 < len(path)):
        for index, segment in enumerate(segments):
            # Without '%' percent_decode returns its text: tested here, no call for most.
            decoded = percent_decode(segment, plus_is_space=False) if "%" in segment else segment
            if len(decoded) > MAX_POINT_CHARS:
                decoded = bounded(decoded)
            points.append(new_point(RequestPoint, (f"path.{index}", decoded, "path_segment")))
    return points


def python_header_points(raw_name: str, value: str) -> list[RequestPoint]:
    """The points of one header field: its value, each cookie, the claims of a JWT in it.

    The reference for `header_points`, which is the compiled `_request_points.header_points`
    when it is built (tests/detection/test_compiled_request_points.py holds the two to the
    same points). The compiled one finds and decodes a JWT's claims itself (`_add_jwt_points`
    and `jwt_claims` are their reference), with the same JSON scanner and the same walk.
    """
    name = raw_name.lower()
    if name == "cookie":
        return _cookie_points(value)
    if name in _STRUCTURAL_HEADERS:
        return []
    prefix = f"header.{name}"
    points = [new_point(RequestPoint, (prefix, value if len(value) <= MAX_POINT_CHARS else bounded(value), "header"))]
    if "eyJ" in value:  # what every JWT starts with: no regex scan for the others
        _add_jwt_points(points, prefix, value)
    return points


def _cookie_points(header_value: str) -> list[RequestPoint]:
    points: list[RequestPoint] = []
    for pair in header_value.split(";"):
        name, _, value = pair.strip().partition("=")
        if not name and not value:
            continue
        prefix = f"cookie.{name}"
        decoded = percent_decode(value) if "%" in value or "+" in value else value
        if len(decoded) > MAX_POINT_CHARS:
            decoded = bounded(decoded)
        points.append(new_point(RequestPoint, (prefix, decoded, "cookie")))
        if "eyJ" in value:
            _add_jwt_points(points, prefix, value)
    return points


def _add_jwt_points(points: list[RequestPoint], prefix: str, text: str) -> None:
    """Append to `points` the claims of every JWT in `text`, named `<prefix>.jwt.<claim>`."""
    for token in _JWT.findall(text):  # no group in the pattern: each item is the whole match
        claims = jwt_claims(token)
        if claims is not None:
            add_json_points(points, f"{prefix}.jwt", claims, "jwt")


try:
    from oob_analyzer.detection._request_points import header_points as _compiled_header_points
    from oob_analyzer.detection._request_points import path_points as _compiled_path_points
except ImportError:  # not built (a source tree without `pip install`): the Python references
    header_points = python_header_points
    path_points = python_path_points
else:
    path_points = partial(_compiled_path_points, RequestPoint)
    # The point type, and the JSON scanner and walk for a JWT's claims, bound first by a
    # partial in C: no Python frame between the engine's header loop and the builder.
    header_points = partial(_compiled_header_points, RequestPoint, _SCAN_JSON, add_json_points)
