"""The detection engine: runs the detectors over every point of a request.

Sans-I/O: an `HttpRequest` in, `AttackHit`s out, one per attack type found in the request
(the first point where that type matched is the one reported). Each point is decoded into
its variants (`decoders`), each variant normalized once and shown to every detector.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

from capture.packets import TunnelContext
from oob_analyzer.detection.decoders import decoded_variants, needs_no_decoding, normalize_for_matching
from oob_analyzer.detection.detectors import Detector
from oob_analyzer.detection.events import AttackHit, Finding
from oob_analyzer.detection.point_inspector import build_point_inspector
from oob_analyzer.detection.points import body_and_anomaly_points, header_points, path_points, query_points
from oob_analyzer.detection.policy import DetectionPolicy, PolicyScope
from oob_analyzer.detection.request_point import RequestPoint
from oob_analyzer.detection.verdict_cache import VerdictCache
from reassembly.events import HttpRequest

__all__ = ["DetectionEngine", "describe_tunnel", "request_excerpt"]

REQUEST_EXCERPT_CHARS = 2048
_CACHED_VALUE_CHARS = 512
# Letters, digits and `_.-` only: no quote, bracket, operator or blank for a payload to use.
_INERT = re.compile(r"[A-Za-z0-9_.-]{0,12}")
_ALWAYS_INSPECTED = frozenset({"header", "anomaly"})  # a lone word can be a scanner or an anomaly


class DetectionEngine:
    """Runs `detectors` over every decoded variant of every point of a request.

    `policy` (allow-lists, disabled attack types per application, host or path) is passed
    in; without one, every finding counts. Verdicts on short values are remembered in two
    bounded caches (`cache_size` entries each; 0 turns them off), one for whole header fields
    and one for points: mirrored traffic repeats the same header values (User-Agent, Accept),
    cookies and token claims request after request, inside header fields seen once.
    """

    def __init__(
        self, detectors: Sequence[Detector], *, policy: DetectionPolicy | None = None, cache_size: int = 4096
    ) -> None:
        self.detectors = tuple(detectors)
        self.policy = policy if policy is not None else DetectionPolicy()
        self.cache_size = cache_size
        self._verdicts: VerdictCache[tuple[Finding, ...]] = VerdictCache(cache_size)
        self._header_verdicts: VerdictCache[tuple[Finding, ...]] = VerdictCache(cache_size)
        self._part_verdicts: VerdictCache[tuple[Finding, ...]] = VerdictCache(cache_size)
        self._by_kind: dict[str, tuple[Detector, ...]] = {}
        # Compiled: leaves out of `_inspect_point` the points and variants where no detector
        # can find anything (None: not built, or detectors it cannot vouch for).
        self._inspector = build_point_inspector(self.detectors)
        # The same inspector runs the per-point and per-field loops below, cache look-ups and
        # all, in C (None: the Python loops, as without the inspector, or with an extension
        # built before it had them: a source tree updated without `pip install -e .`).
        inspector = self._inspector
        self._loops = inspector if inspector is not None and hasattr(inspector, "judge_part") else None

    def analyze(self, request: HttpRequest, *, application: str = "") -> list[AttackHit]:
        # The path and the query are judged whole, once per text seen, as header fields are:
        # the same ones come back request after request, and their points need not be made.
        path, _, query = request.target.partition("?")
        loops = self._loops
        if loops is None:
            verdicts: Sequence[tuple[Finding, ...]] = self._judge_in_python(request, path, query)
            if not any(verdicts):
                return []
            return self._hits(request, application, verdicts)
        # The Python loops of _judge_in_python in C, over the same caches: one tuple of
        # findings per part, in the order those loops find them (the same first per type).
        inspect, points, parts = self._inspect_suspects, self._verdicts, self._part_verdicts
        path_verdict = loops.judge_part("path", path, path_points, parts, points, inspect)
        query_verdict = loops.judge_part("query", query, query_points, parts, points, inspect) if query else ()
        # Most requests have no body and no anomaly: no points, nothing to judge.
        body_verdict = (
            loops.judge_points(body_and_anomaly_points(request), points, inspect)
            if request.body or request.anomalies
            else ()
        )
        header_verdict = loops.judge_headers(request.headers, self._header_verdicts, points, header_points, inspect)
        if not (path_verdict or query_verdict or body_verdict or header_verdict):
            return []  # most requests: no Host to look up, no policy scope to work out
        return self._hits(request, application, (path_verdict, query_verdict, body_verdict, header_verdict))

    def _hits(self, request: HttpRequest, application: str, verdicts: Iterable[tuple[Finding, ...]]) -> list[AttackHit]:
        """One hit per attack type in `verdicts` (the findings of each part, in order) that the
        policy permits here: the first finding of that type."""
        host = request.host  # a scan of the headers: once per request, not once per hit
        scope = self.policy.scope_for(application=application, host=host, path=request.target)
        found: dict[str, Finding] = {}
        for verdict in verdicts:
            _keep_first_per_type(found, verdict, scope)
        if not found:
            return []
        excerpt = request_excerpt(request)
        return [_hit(request, finding, application, excerpt, host) for finding in found.values()]

    def _judge_in_python(self, request: HttpRequest, path: str, query: str) -> list[tuple[Finding, ...]]:
        """The findings of each part of `request` in order: path, query, body and anomalies, each
        header field (the tuples may be empty)."""
        verdicts = [self._judge_part("path", path, path_points)]
        if query:
            verdicts.append(self._judge_part("query", query, query_points))
        verdicts.extend(self._cached(point) for point in body_and_anomaly_points(request))
        header_verdicts = self._header_verdicts
        for field in request.headers:
            # A header field is judged whole (value, cookies, JWT claims), once per value seen;
            # the field's own (name, value) tuple is the cache key, no key to build.
            field_verdict = header_verdicts.get(field)
            if field_verdict is None:
                field_verdict = header_verdicts.recall(field)
            if field_verdict is None:
                field_verdict = self._judge_header(field)
            verdicts.append(field_verdict)
        return verdicts

    def _judge_part(
        self, part: str, text: str, points_of: Callable[[str], Iterable[RequestPoint]]
    ) -> tuple[Finding, ...]:
        key = (part, text)
        verdict = self._part_verdicts.get(key)
        if verdict is None:
            verdict = self._part_verdicts.recall(key)
        if verdict is None:
            verdict = tuple(finding for point in points_of(text) for finding in self._cached(point))
            if len(text) <= _CACHED_VALUE_CHARS:
                self._part_verdicts.put(key, verdict)
        return verdict

    def _judge_header(self, field: tuple[str, str]) -> tuple[Finding, ...]:
        raw_name, value = field
        verdict: list[Finding] = []
        for each in header_points(raw_name, value):
            # The field's own value was just missed in the header cache; its cookies and token
            # claims (kinds other than "header") often repeat inside fields seen once.
            verdict.extend(self._inspect_point(each) if each.kind == "header" else self._cached(each))
        if len(value) <= _CACHED_VALUE_CHARS:
            self._header_verdicts.put(field, tuple(verdict))
        return tuple(verdict)

    def _cached(self, point: RequestPoint) -> tuple[Finding, ...]:
        if len(point.value) > _CACHED_VALUE_CHARS or self.cache_size == 0:
            return tuple(self._inspect_point(point))
        cached = self._verdicts.get(point)  # a RequestPoint is a tuple: (name, value, kind)
        if cached is None:
            cached = self._verdicts.recall(point)
        if cached is None:
            cached = tuple(self._inspect_point(point))
            self._verdicts.put(point, cached)
        return cached

    def _detectors_for(self, kind: str) -> tuple[Detector, ...]:
        """The detectors that judge points of `kind`, worked out once per kind (a handful exist)."""
        detectors = self._by_kind.get(kind)
        if detectors is None:
            detectors = tuple(each for each in self.detectors if each.kinds is None or kind in each.kinds)
            self._by_kind[kind] = detectors
        return detectors

    def _inspect_point(self, point: RequestPoint) -> list[Finding]:
        value, kind = point.value, point.kind
        inspector = self._inspector
        if inspector is not None:
            # Compiled (_inspect.c): the decoded variants in which some detector may find
            # something, None for none; the variants it leaves out are ones where none can.
            suspects = inspector.suspect_variants(point)
            if suspects is None:
                return []
            variants = suspects
        else:
            inert = kind not in _ALWAYS_INSPECTED and _INERT.fullmatch(value) is not None
            if inert and needs_no_decoding(value):
                return []  # a bare word or number that no decoder changes: no detector can match it
            variants = decoded_variants(value)
            if inert and len(variants) == 1:
                return []
        return self._inspect_suspects(point, variants)

    def _inspect_suspects(self, point: RequestPoint, variants: Sequence[str]) -> list[Finding]:
        """Every detector's findings in each of `variants`, the point's decoded variants (or those
        of them the inspector did not prove clean), in order."""
        value, kind = point.value, point.kind
        detectors = self._detectors_for(kind)
        name = point.name
        findings: list[Finding] = []
        for variant in variants:
            normalized = normalize_for_matching(variant)
            # Positional: cheaper than keywords; the point itself when it is already normalized.
            shown = point if normalized == value else RequestPoint(name, normalized, kind)
            recase: bool | None = None
            for detector in detectors:
                # Every finding, not the first per type: a policy that allows one rule
                # must not hide another rule of the same type on the same point.
                found = detector.inspect(shown)
                if not found:
                    continue
                if recase is None:
                    # Decided once per variant, and only when something was found: payloads are
                    # re-cased only when lower-casing changed the text and kept every offset.
                    original = variant.replace("\x00", "")
                    recase = original != normalized and len(original) == len(normalized)
                if recase:
                    findings.extend(_in_original_case(each, normalized, original) for each in found)
                else:
                    findings.extend(found)
        return findings


def _keep_first_per_type(found: dict[str, Finding], findings: tuple[Finding, ...], scope: PolicyScope) -> None:
    """Add to `found` the first finding of each attack type not yet found that `scope` permits."""
    for finding in findings:
        if finding.attack_type not in found and finding.attack_type not in scope.disabled and scope.permits(finding):
            found[finding.attack_type] = finding


def _in_original_case(finding: Finding, normalized: str, original: str) -> Finding:
    """Report the payload as it was written (`original`, offset for offset with `normalized`)."""
    start = normalized.find(finding.payload)
    if start < 0:
        return finding
    attack_type, point, payload, rule, reason = finding
    return Finding(attack_type, point, original[start : start + len(payload)], rule, reason)


def _hit(request: HttpRequest, finding: Finding, application: str, excerpt: str, host: str) -> AttackHit:
    flow = request.flow
    return AttackHit(
        ts=request.ts,
        src_ip=flow.client,
        src_port=flow.client_port,
        dst_ip=flow.server,
        dst_port=flow.server_port,
        host=host,
        method=request.method,
        target=request.target,
        attack_type=finding.attack_type,
        point=finding.point,
        payload=finding.payload,
        rule=finding.rule,
        reason=finding.reason,
        tunnel=describe_tunnel(flow.tunnel),
        application=application,
        request_excerpt=excerpt,
    )


def describe_tunnel(tunnel: TunnelContext) -> str:
    """The tunnel context as text: `kind:outer-endpoints:id`, outermost first, `/`-separated."""
    if not tunnel:
        return ""
    return "/".join(f"{kind}:{endpoints}:{ident}" for kind, endpoints, ident in tunnel)


def request_excerpt(request: HttpRequest, limit: int = REQUEST_EXCERPT_CHARS) -> str:
    """The request as on the wire (Latin-1), head then body, cut at `limit` characters."""
    # map(": ".join, ...) joins each (name, value) pair in C, without a Python frame per field.
    fields = "\r\n".join(map(": ".join, request.headers))
    head = (
        f"{request.method} {request.target} {request.version}\r\n{fields}"
        if fields
        else (f"{request.method} {request.target} {request.version}")
    )
    text = head + "\r\n\r\n" + request.body[:limit].decode("latin-1")
    return text[:limit]
