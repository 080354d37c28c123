"""Request points: the places in a request where a payload can hide, decoded for inspection.

Each point has a stable name that says where it is (`path`, `query.id`, `body.form.comment`)
and the value a detector sees, after decoding.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote, unquote_plus

from reassembly.events import HttpRequest

__all__ = ["RequestPoint", "extract_points", "percent_decode"]

_MAX_DECODE_ROUNDS = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestPoint:
    name: str
    value: str


def extract_points(request: HttpRequest) -> Iterator[RequestPoint]:
    path, _, query = request.target.partition("?")
    yield RequestPoint(name="path", value=percent_decode(path, plus_is_space=False))
    yield from _urlencoded_points("query", query)
    content_type = (request.header("content-type") or "").split(";", 1)[0].strip().lower()
    if content_type == "application/x-www-form-urlencoded" and request.body:
        yield from _urlencoded_points("body.form", request.body.decode("latin-1"))


def _urlencoded_points(prefix: str, text: str) -> Iterator[RequestPoint]:
    for pair in text.split("&"):
        if not pair:
            continue
        raw_name, has_value, raw_value = pair.partition("=")
        name = percent_decode(raw_name)
        if has_value:
            yield RequestPoint(name=f"{prefix}.{name}", value=percent_decode(raw_value))
        else:  # a bare `?payload` is a value with no name
            yield RequestPoint(name=prefix, value=name)


def percent_decode(text: str, *, plus_is_space: bool = True) -> str:
    """Undo percent-encoding, repeatedly (attackers encode twice), in at most a few rounds.

    Bytes that are not UTF-8 decode as Latin-1, so nothing is lost.
    """
    for _ in range(_MAX_DECODE_ROUNDS):
        if "%" not in text and not (plus_is_space and "+" in text):
            break
        unquote_once = unquote_plus if plus_is_space else unquote
        decoded = _utf8_if_possible(unquote_once(text, encoding="latin-1"))
        if decoded == text:
            break
        text = decoded
        plus_is_space = False  # a literal '+' that was %2B must stay a '+'
    return text


def _utf8_if_possible(text: str) -> str:
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text
