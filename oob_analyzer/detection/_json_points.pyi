from typing import Any

from oob_analyzer.detection.request_point import RequestPoint

def add_json_points(
    point_type: type[RequestPoint], points: list[RequestPoint], prefix: str, document: Any, kind: str, /
) -> None: ...
