"""Body points: the request body split by its format (form, multipart, JSON, XML, GraphQL).

The declared Content-Type picks the parser; when it is missing or wrong the body is sniffed,
and when nothing parses the raw body is one point (`body`), so no byte goes uninspected.
Parsing is tolerant and bounded: a broken body yields what could be read, then the raw body.
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Callable
from functools import partial
from typing import Any

from oob_analyzer.detection.decoders import decode_gzip_text, percent_decode
from oob_analyzer.detection.request_point import MAX_POINT_CHARS, RequestPoint, bounded, new_point, urlencoded_points
from reassembly.events import HttpRequest

__all__ = ["add_json_points", "body_points", "json_points", "jwt_claims", "python_add_json_points"]

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
# What json.loads runs (its C scanner where CPython has one), set in JSONDecoder.__init__
# and so unknown to typeshed.
_SCAN_JSON: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_JSON_BLANKS = " \t\n\r"  # the whitespace JSON allows around a value (RFC 8259 section 2)


def body_points(request: HttpRequest) -> list[RequestPoint]:
    """The points of the body of `request`, parsed by its format (a new list, filled in one loop)."""
    body = request.body
    if not body:
        return []
    declared_type, encoding = _content_type_and_encoding(request.headers)
    text = decode_gzip_text(body) if encoding.strip().lower() in {"gzip", "deflate", "x-gzip"} else None
    if text is None:
        text = body.decode("latin-1")
    points = _parsed_body_points(declared_type, text)
    # Nothing parsed, or the format was only guessed (no Content-Type): the raw body too,
    # judged by every detector, since a guess ("starts with <, so XML") can be wrong.
    if not points or (not declared_type and not any(point.kind == "body" for point in points)):
        points.append(RequestPoint("body", bounded(_utf8_if_possible(text)), "body"))
    return points


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


def json_points(prefix: str, document: Any, *, kind: str = "json") -> list[RequestPoint]:
    """Every key and scalar value of a JSON document, named by its path (`body.json.a.0.b`)."""
    points: list[RequestPoint] = []
    add_json_points(points, prefix, document, kind)
    return points


def python_add_json_points(points: list[RequestPoint], prefix: str, document: Any, kind: str) -> None:
    """Append `json_points(prefix, document, kind=kind)` to `points`, for a caller that fills one list.

    The reference for `add_json_points`, which is the compiled `_json_points.add_json_points`
    when it is built (tests/detection/test_compiled_json_points.py holds the two to the same
    points). One walk with an explicit stack, depth first, at most `_MAX_JSON_NODES` nodes:
    a dict gives its key points (last key first, as the stack is filled), then its values in
    order. Strings are tested first: they are most of the leaves (a dict, a list and a str
    exclude each other). Taking a dict's scalar values at once, without a push and a pop
    each, measured slower.
    """
    append = points.append
    stack: list[tuple[str, Any]] = [(prefix, document)]
    push = stack.append
    pop = stack.pop
    nodes = 0
    while stack and nodes < _MAX_JSON_NODES:
        path, node = pop()
        nodes += 1
        if isinstance(node, str):
            append(new_point(RequestPoint, (path, node if len(node) <= MAX_POINT_CHARS else bounded(node), kind)))
        elif isinstance(node, dict):
            for key, child in reversed(node.items()):
                child_path = f"{path}.{key}"
                name = key if type(key) is str and len(key) <= MAX_POINT_CHARS else bounded(str(key))
                append(new_point(RequestPoint, (child_path, name, "json_key")))
                push((child_path, child))
        elif isinstance(node, list):
            for index in range(len(node) - 1, -1, -1):
                push((f"{path}.{index}", node[index]))
        elif node is not None and not isinstance(node, bool):
            append(new_point(RequestPoint, (path, str(node), kind)))


try:
    from oob_analyzer.detection._json_points import add_json_points as _compiled_add_json_points
except ImportError:  # not built (a source tree without `pip install`): the Python reference
    add_json_points = python_add_json_points
else:
    # The point type bound first, by a partial in C: no Python frame between caller and walk.
    add_json_points = partial(_compiled_add_json_points, RequestPoint)


def jwt_claims(token: str) -> Any | None:
    """The decoded payload of a JWT (header.payload.signature), unverified, or None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    claims = parts[1]
    try:
        # urlsafe_b64decode without its Python layers: the same translation of '-' and '_',
        # the same lenient decoding, the same ValueError for a non-ASCII str.
        raw = binascii.a2b_base64(claims.replace("-", "+").replace("_", "/") + "=" * (-len(claims) % 4))
        return _json_document(raw.decode(json.detect_encoding(raw), "surrogatepass"))
    except (binascii.Error, ValueError, RecursionError):
        return None


def _json_document(text: str) -> Any:
    """`json.loads(text)`: the document, or ValueError (RecursionError when nested too deep).

    The scanner `json.loads` ends in, called without the layers above it: they cost twice
    what scanning a token's claims does.
    """
    if text.startswith("\ufeff"):
        raise ValueError("JSON text starts with a byte order mark")
    try:
        document, end = _SCAN_JSON(text, len(text) - len(text.lstrip(_JSON_BLANKS)))
    except StopIteration:
        raise ValueError("no JSON value") from None
    if text[end:].strip(_JSON_BLANKS):
        raise ValueError("data after the JSON value")
    return document


def _parsed_body_points(declared_type: str, text: str) -> list[RequestPoint]:
    stripped = text.lstrip()
    content_type = declared_type.lower()
    if "multipart/" in content_type or (not content_type and stripped.startswith("--")):
        return _multipart_points(declared_type, text)  # the boundary is case-sensitive
    if "json" in content_type or (not content_type and stripped[:1] in ("{", "[")):
        return _json_body_points(text)
    if "xml" in content_type or (not content_type and stripped.startswith("<")):
        return _xml_points(text)
    if "x-www-form-urlencoded" in content_type:
        points = urlencoded_points("body.form", bounded(text))
        if "&&" in text or "=" not in text:  # not what a browser sends: inspect it whole too
            points.append(RequestPoint("body", bounded(text), "body"))
        return points
    if not content_type and _FORM_SHAPE.match(stripped):
        return urlencoded_points("body.form", bounded(text))
    if "graphql" in content_type:
        return [RequestPoint("body.graphql.query", bounded(text), "graphql")]
    return []


def _json_body_points(text: str) -> list[RequestPoint]:
    try:
        document = _json_document(text)
    except (ValueError, RecursionError):
        return []
    points: list[RequestPoint] = []
    if isinstance(document, dict) and isinstance(document.get("query"), str):
        points.append(RequestPoint("body.graphql.query", bounded(document["query"]), "graphql"))
    add_json_points(points, "body.json", document, "json")
    return points


def _multipart_points(content_type: str, text: str) -> list[RequestPoint]:
    boundary = _boundary(content_type, text)
    if boundary is None:
        return []
    points: list[RequestPoint] = []
    delimiter = "--" + boundary
    for index, part in enumerate(text.split(delimiter)[1 : _MAX_PARTS + 1]):
        if part.startswith("--"):
            break
        head, separator, content = _split_part(part)
        if not separator:
            continue
        name_match = _PART_NAME.search(head)
        name = name_match.group(1) if name_match else str(index)
        points.append(RequestPoint(f"body.multipart.{name}", bounded(name), "name"))
        filename = _PART_FILENAME.search(head)
        if filename:
            decoded = bounded(percent_decode(filename.group(1)))
            points.append(RequestPoint(f"body.multipart.{name}.filename", decoded, "filename"))
        points.append(RequestPoint(f"body.multipart.{name}", bounded(_utf8_if_possible(content)), "multipart"))
    return points


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


def _xml_points(text: str) -> list[RequestPoint]:
    # The whole document is one point for the structural attacks (DTD, entities, PIs);
    # text, CDATA and attribute values are points of their own for the injections.
    points = [RequestPoint("body.xml", bounded(text), "xml")]
    for match in _XML_TAG.finditer(text):
        for attribute in _XML_ATTRIBUTE.finditer(match.group(2)):
            value = attribute.group(2) if attribute.group(2) is not None else attribute.group(3)
            if value and not value.startswith(("http://", "https://", "urn:")):
                name = f"body.xml.{match.group(1)}@{attribute.group(1)}"
                points.append(RequestPoint(name, bounded(value), "xml_value"))
    for match in _XML_TEXT.finditer(text):
        if match.group(1).strip():
            points.append(RequestPoint("body.xml.text", bounded(match.group(1)), "xml_value"))
    for match in _XML_CDATA.finditer(text):
        points.append(RequestPoint("body.xml.cdata", bounded(match.group(1)), "xml_value"))
    return points


def _utf8_if_possible(text: str) -> str:
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text
