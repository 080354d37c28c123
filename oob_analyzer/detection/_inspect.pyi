from collections.abc import Callable, Iterable

from oob_analyzer.detection.events import Finding
from oob_analyzer.detection.request_point import RequestPoint
from oob_analyzer.detection.verdict_cache import VerdictCache

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
    def judge_points(
        self,
        points: Iterable[RequestPoint],
        cache: VerdictCache[tuple[Finding, ...]],
        inspect_suspects: Callable[[RequestPoint, list[str]], list[Finding]],
        /,
    ) -> tuple[Finding, ...]: ...
    def judge_part(
        self,
        part: str,
        text: str,
        points_of: Callable[[str], Iterable[RequestPoint]],
        part_cache: VerdictCache[tuple[Finding, ...]],
        point_cache: VerdictCache[tuple[Finding, ...]],
        inspect_suspects: Callable[[RequestPoint, list[str]], list[Finding]],
        /,
    ) -> tuple[Finding, ...]: ...
    def judge_headers(
        self,
        headers: Iterable[tuple[str, str]],
        header_cache: VerdictCache[tuple[Finding, ...]],
        point_cache: VerdictCache[tuple[Finding, ...]],
        header_points: Callable[[str, str], Iterable[RequestPoint]],
        inspect_suspects: Callable[[RequestPoint, list[str]], list[Finding]],
        /,
    ) -> tuple[Finding, ...]: ...
