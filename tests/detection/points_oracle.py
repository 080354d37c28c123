"""The points as the implementation before issue 8's rewrite made them: the oracle of test_points_oracle.

A frozen copy of request_point.py, body_points.py and points.py at the commit before the
rewrite (b52d3ed), kept verbatim (only imports merged) so that a test can hold today's point
extraction to the same points, name, value, kind and order, on any input hypothesis makes.
Not production code: nothing outside tests imports it. `RequestPoint` is the real one, so
the two outputs compare as equal tuples.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator
from typing import Any

from oob_analyzer.detection.decoders import decode_gzip_text, percent_decode
from oob_analyzer.detection.request_point import RequestPoint
from reassembly.events import HttpRequest

# --- request_point.py ---
# Values longer than this are inspected by their head and tail only: padding a payload
# with 100 KiB of filler must not hide it, and inspecting all of it would cost too much.
MAX_POINT_CHARS = 8192
_EDGE_CHARS = MAX_POINT_CHARS // 2
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}(?:\[[A-Za-z0-9_.-]{0,64}\])*")


def bounded(value: str) -> str:
    if len(value) <= MAX_POINT_CHARS:
        return value
    return value[:_EDGE_CHARS] + "\n" + value[-_EDGE_CHARS:]


def urlencoded_points(prefix: str, text: str) -> Iterator[RequestPoint]:
    """`a=1&b[]=2&b[k]=3&bare`: one point per pair; odd names are points too (`a[$ne]`).

    `a[]` and `a[b]` keep their brackets in the point name; repeated names give one point each.
    """
    if not text:
        return
    odd = False
    for pair in text.split("&"):
        if not pair:
            odd = True
            continue
        raw_name, has_value, raw_value = pair.partition("=")
        name = percent_decode(raw_name)
        if has_value:
            yield RequestPoint(f"{prefix}.{name}", bounded(percent_decode(raw_value)), prefix)
            if not _PLAIN_NAME.fullmatch(name):
                odd = True
                yield RequestPoint(f"{prefix}.{name}", bounded(name), "name")
        else:  # a bare `?payload` is a value with no name
            yield RequestPoint(prefix, bounded(name), prefix)
    if odd:  # an '&' or '=' that may belong to the payload: the whole string is a point too
        yield RequestPoint(prefix, bounded(percent_decode(text)), prefix)


# --- body_points.py ---
_MAX_JSON_NODES = 2000
_MAX_PARTS = 200
_BOUNDARY = re.compile(r'boundary="?([^";,]+)"?', re.IGNORECASE)
_SNIFFED_BOUNDARY = re.compile(rb"--([!-~]{1,200}?)\r?\n")
_PART_NAME = re.compile(r'\bname="?([^";\r\n]*)"?', re.IGNORECASE)
_PART_FILENAME = re.compile(r'\bfilename\*?="?([^";\r\n]*)"?', re.IGNORECASE)
_XML_TEXT = re.compile(r">([^<]+)<")
_XML_ATTRIBUTE = re.compile(r"""([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_XML_TAG = re.compile(r"<([\w:.-]+)([^>]*)>")
_XML_CDATA = re.compile(r"<!\[CDATA\[(.*?)\]\]>", re.DOTALL)
_FORM_SHAPE = re.compile(r"[^=&\s]{1,256}=")


def body_points(request: HttpRequest) -> Iterator[RequestPoint]:
    body = request.body
    if not body:
        return
    declared_type, encoding = _content_type_and_encoding(request.headers)
    text = decode_gzip_text(body) if encoding.strip().lower() in {"gzip", "deflate", "x-gzip"} else None
    if text is None:
        text = body.decode("latin-1")
    parsed = list(_parsed_body_points(declared_type, text))
    yield from parsed
    # Nothing parsed, or the format was only guessed (no Content-Type): the raw body too,
    # judged by every detector, since a guess ("starts with <, so XML") can be wrong.
    if not parsed or (not declared_type and not any(point.kind == "body" for point in parsed)):
        yield _point("body", bounded(_utf8_if_possible(text)), "body")


def _content_type_and_encoding(headers: tuple[tuple[str, str], ...]) -> tuple[str, str]:
    """The first Content-Type and Content-Encoding values ("" when absent), in one pass.

    Names are compared by length first: lower-casing every name twice showed in the profile.
    """
    content_type: str | None = None
    encoding: str | None = None
    for name, value in headers:
        size = len(name)
        if size == 12 and content_type is None and name.lower() == "content-type":
            content_type = value
        elif size == 16 and encoding is None and name.lower() == "content-encoding":
            encoding = value
    return content_type or "", encoding or ""


def json_points(prefix: str, document: Any, *, kind: str = "json") -> Iterator[RequestPoint]:
    """Every key and scalar value of a JSON document, named by its path (`body.json.a.0.b`)."""
    stack: list[tuple[str, Any]] = [(prefix, document)]
    nodes = 0
    while stack and nodes < _MAX_JSON_NODES:
        path, node = stack.pop()
        nodes += 1
        if isinstance(node, dict):
            for key, child in reversed(list(node.items())):
                child_path = f"{path}.{key}"
                yield RequestPoint(child_path, bounded(str(key)), "json_key")
                stack.append((child_path, child))
        elif isinstance(node, list):
            stack.extend((f"{path}.{index}", child) for index, child in reversed(list(enumerate(node))))
        elif isinstance(node, str):
            yield RequestPoint(path, bounded(node), kind)
        elif node is not None and not isinstance(node, bool):
            yield RequestPoint(path, str(node), kind)


def jwt_claims(token: str) -> Any | None:
    """The decoded payload of a JWT (header.payload.signature), unverified, or None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        raw = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        return json.loads(raw)
    except (binascii.Error, ValueError, RecursionError):
        return None


def _parsed_body_points(declared_type: str, text: str) -> Iterator[RequestPoint]:
    stripped = text.lstrip()
    content_type = declared_type.lower()
    if "multipart/" in content_type or (not content_type and stripped.startswith("--")):
        yield from _multipart_points(declared_type, text)  # the boundary is case-sensitive
    elif "json" in content_type or (not content_type and stripped[:1] in ("{", "[")):
        yield from _json_body_points(text)
    elif "xml" in content_type or (not content_type and stripped.startswith("<")):
        yield from _xml_points(text)
    elif "x-www-form-urlencoded" in content_type:
        yield from urlencoded_points("body.form", bounded(text))
        if "&&" in text or "=" not in text:  # not what a browser sends: inspect it whole too
            yield _point("body", bounded(text), "body")
    elif not content_type and _FORM_SHAPE.match(stripped):
        yield from urlencoded_points("body.form", bounded(text))
    elif "graphql" in content_type:
        yield _point("body.graphql.query", bounded(text), "graphql")


def _json_body_points(text: str) -> Iterator[RequestPoint]:
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        return
    if isinstance(document, dict) and isinstance(document.get("query"), str):
        yield _point("body.graphql.query", bounded(document["query"]), "graphql")
    yield from json_points("body.json", document)


def _multipart_points(content_type: str, text: str) -> Iterator[RequestPoint]:
    boundary = _boundary(content_type, text)
    if boundary is None:
        return
    delimiter = "--" + boundary
    for index, part in enumerate(text.split(delimiter)[1 : _MAX_PARTS + 1]):
        if part.startswith("--"):
            break
        head, separator, content = _split_part(part)
        if not separator:
            continue
        name_match = _PART_NAME.search(head)
        name = name_match.group(1) if name_match else str(index)
        yield _point(f"body.multipart.{name}", bounded(name), "name")
        filename = _PART_FILENAME.search(head)
        if filename:
            yield _point(f"body.multipart.{name}.filename", bounded(percent_decode(filename.group(1))), "filename")
        yield _point(f"body.multipart.{name}", bounded(_utf8_if_possible(content)), "multipart")


def _boundary(content_type: str, text: str) -> str | None:
    declared = _BOUNDARY.search(content_type)
    if declared:
        return declared.group(1).strip()
    sniffed = _SNIFFED_BOUNDARY.match(text.lstrip().encode("latin-1"))
    return sniffed.group(1).decode("latin-1") if sniffed else None


def _split_part(part: str) -> tuple[str, str, str]:
    part = part.removeprefix("\r\n").removeprefix("\n")
    for blank in ("\r\n\r\n", "\n\n"):
        head, separator, content = part.partition(blank)
        if separator:
            return head, separator, content.removesuffix("\r\n").removesuffix("\n")
    return part, "", ""


def _xml_points(text: str) -> Iterator[RequestPoint]:
    # The whole document is one point for the structural attacks (DTD, entities, PIs);
    # text, CDATA and attribute values are points of their own for the injections.
    yield _point("body.xml", bounded(text), "xml")
    for match in _XML_TAG.finditer(text):
        for attribute in _XML_ATTRIBUTE.finditer(match.group(2)):
            value = attribute.group(2) if attribute.group(2) is not None else attribute.group(3)
            if value and not value.startswith(("http://", "https://", "urn:")):
                yield _point(f"body.xml.{match.group(1)}@{attribute.group(1)}", bounded(value), "xml_value")
    for match in _XML_TEXT.finditer(text):
        if match.group(1).strip():
            yield _point("body.xml.text", bounded(match.group(1)), "xml_value")
    for match in _XML_CDATA.finditer(text):
        yield _point("body.xml.cdata", bounded(match.group(1)), "xml_value")


def _point(name: str, value: str, kind: str) -> RequestPoint:
    return RequestPoint(name, value, kind)


def _utf8_if_possible(text: str) -> str:
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


# --- points.py ---
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
