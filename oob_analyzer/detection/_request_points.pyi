from collections.abc import Callable
from typing import Any

from oob_analyzer.detection.request_point import RequestPoint

def header_points(
    point_type: type[RequestPoint],
    scan_json: Callable[[str, int], tuple[Any, int]],
    add_json_points: Callable[[list[RequestPoint], str, Any, str], None],
    raw_name: str,
    value: str,
    /,
) -> list[RequestPoint]: ...
def percent_decode(text: str, plus_is_space: bool, /) -> str: ...
def path_points(point_type: type[RequestPoint], path: str, /) -> list[RequestPoint]: ...
def urlencoded_points(point_type: type[RequestPoint], prefix: str, text: str, /) -> list[RequestPoint]: ...
