"""`RequestPoint`: one named place in a request and the value found there, bounded in size."""

from __future__ import annotations

import re
from functools import partial
from typing import NamedTuple

from oob_analyzer.detection.decoders import percent_decode

__all__ = ["MAX_POINT_CHARS", "RequestPoint", "bounded", "new_point", "python_urlencoded_points", "urlencoded_points"]

# Values longer than this are inspected by their head and tail only: padding a payload
# with 100 KiB of filler must not hide it, and inspecting all of it would cost too much.
MAX_POINT_CHARS = 8192
_EDGE_CHARS = MAX_POINT_CHARS // 2
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}(?:\[[A-Za-z0-9_.-]{0,64}\])*")


class RequestPoint(NamedTuple):
    """`name` says where (`query.id`), `kind` what sort of place (`query`, `header`, `json`).

    A NamedTuple rather than a frozen dataclass: a request yields dozens of points and the
    frozen dataclass's `__init__` cost showed up first in the detection profile.
    """

    name: str
    value: str
    kind: str = "value"


# `new_point(RequestPoint, (name, value, kind))` is `RequestPoint(name, value, kind)`, the same
# tuple, without the Python frame of the NamedTuple's generated `__new__`: a third of what a
# point cost the builders that make one per cookie, JSON node and query pair.
new_point = tuple.__new__


def bounded(value: str) -> str:
    if len(value) <= MAX_POINT_CHARS:
        return value
    return value[:_EDGE_CHARS] + "\n" + value[-_EDGE_CHARS:]


def python_urlencoded_points(prefix: str, text: str) -> list[RequestPoint]:
    """`a=1&b[]=2&b[k]=3&bare`: one point per pair; odd names are points too (`a[$ne]`).

    `a[]` and `a[b]` keep their brackets in the point name; repeated names give one point each.
    A list filled in one loop: a generator's resume per point cost more than the point.
    The reference for `urlencoded_points`, which is the compiled
    `_request_points.urlencoded_points` when it is built
    (tests/detection/test_compiled_request_points.py holds the two to the same points).
    """
    if not text:
        return []
    points: list[RequestPoint] = []
    odd = False
    for pair in text.split("&"):
        if not pair:
            odd = True
            continue
        raw_name, has_value, raw_value = pair.partition("=")
        # Without '%' or '+' percent_decode returns its text: tested here, no call for most.
        name = percent_decode(raw_name) if "%" in raw_name or "+" in raw_name else raw_name
        if has_value:
            value = percent_decode(raw_value) if "%" in raw_value or "+" in raw_value else raw_value
            if len(value) > MAX_POINT_CHARS:
                value = bounded(value)
            points.append(new_point(RequestPoint, (f"{prefix}.{name}", value, prefix)))
            if not _PLAIN_NAME.fullmatch(name):
                odd = True
                points.append(new_point(RequestPoint, (f"{prefix}.{name}", bounded(name), "name")))
        else:  # a bare `?payload` is a value with no name
            points.append(new_point(RequestPoint, (prefix, bounded(name), prefix)))
    if odd:  # an '&' or '=' that may belong to the payload: the whole string is a point too
        points.append(new_point(RequestPoint, (prefix, bounded(percent_decode(text)), prefix)))
    return points


try:
    from oob_analyzer.detection._request_points import urlencoded_points as _compiled_urlencoded_points
except ImportError:  # not built (a source tree without `pip install`): the Python reference
    urlencoded_points = python_urlencoded_points
else:
    # The point type bound first, by a partial in C: no Python frame between caller and builder.
    urlencoded_points = partial(_compiled_urlencoded_points, RequestPoint)
