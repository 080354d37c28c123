from collections.abc import Callable

from oob_analyzer.detection.request_point import RequestPoint

class PointInspector:
    def __init__(
        self,
        *,
        decoders: tuple[Callable[[str], str], ...],
        normalize: Callable[[str], str],
        libinjection_path: str,
        scan: object,
        matching_rules: object,
        rule_kinds: tuple[tuple[frozenset[str] | None, frozenset[str]], ...],
        max_depth: int,
        max_variants: int,
    ) -> None: ...
    def suspect_variants(self, point: RequestPoint, /) -> list[str] | None: ...
    def decoded_variants(self, value: str, /) -> list[str]: ...
