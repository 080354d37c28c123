"""Detectors: small plug-ins, each judging one decoded request point.

`default_detectors()` is the one explicit list of what runs; nothing registers itself. A
detector returns the `Finding`s for the point it is shown; the engine decides which to keep.
Values reach a detector already decoded and normalized (lower case, NUL-free).

`inspect` returns a tuple, empty for the common case of nothing found: the engine asks every
detector about every variant of every point, and a generator per call cost more than most
detectors' own checks (see the detection profile in CHANGELOG).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol

try:
    import hyperscan
except ImportError:  # no wheel for this platform: signatures run on Python's re instead
    hyperscan = None  # type: ignore[assignment]

from oob_analyzer.detection.events import Finding
from oob_analyzer.detection.hyperscan_cache import default_cache_dir, load_or_compile
from oob_analyzer.detection.libinjection_calls import SqliFingerprinter, is_xss
from oob_analyzer.detection.request_point import RequestPoint
from oob_analyzer.detection.rules import RULES, PatternRule

__all__ = [
    "Detector",
    "Log4ShellDetector",
    "OpenRedirectDetector",
    "ProtocolAnomalyDetector",
    "SignatureDetector",
    "SqlInjectionDetector",
    "XssDetector",
    "default_detectors",
    "known_names",
]

MAX_PAYLOAD_CHARS = 256
_NONE: tuple[Finding, ...] = ()
_PAYLOAD_CONTEXT = 40
# Kinds that hold names or structure, not values: only the signature rules look at them.
# (A whole XML document is markup by design; its text and attributes are points of their own.)
_NOT_FOR_TOKENIZERS = frozenset({"name", "json_key", "anomaly", "xml"})
# Media ranges such as `text/*, */*` read as SQL comments to libinjection.
_MEDIA_TYPE_HEADERS = frozenset({"header.accept", "header.content-type", "header.accept-encoding"})
# libinjection fingerprints made only of words, AND/OR, operators and @variables
# (`n&v`: "john or@var.es"): prose and e-mail addresses look like that; an injection needs
# a string break, a number, a comment, a function or a statement as well.
# So does a lone number before a comment (`1c`: "50% off -- today only"), and a string
# followed straight by a statement keyword (`sE...`: "use 'select * from t' to list"), which
# no SQL grammar accepts without a UNION or `;` between them.
# Without a quote, operator, comment, bracket, variable or number, libinjection can only see
# words and keywords: the fingerprints above, or keyword runs the signature rules cover.
_SQL_SIGNAL = re.compile(r"[-'\"`;()=<>|&#*/@!~^%+\\]|\d")
_PROSE_FINGERPRINT = re.compile(r"[n&ov]+|[1n]c|sE.*")


class Detector(Protocol):
    attack_types: frozenset[str]
    rule_ids: frozenset[str]  # every rule id its findings can carry
    kinds: frozenset[str] | None  # the point kinds it judges; None: all

    def inspect(self, point: RequestPoint) -> tuple[Finding, ...]: ...


class SqlInjectionDetector:
    """SQL injection, by libinjection's tokenizer and fingerprint set."""

    attack_types = frozenset({"sqli"})
    rule_ids = frozenset({"libinjection-sqli"})
    kinds: frozenset[str] | None = None

    def __init__(self) -> None:
        self._fingerprint = SqliFingerprinter()

    def inspect(self, point: RequestPoint) -> tuple[Finding, ...]:
        if (
            point.kind in _NOT_FOR_TOKENIZERS
            or point.name in _MEDIA_TYPE_HEADERS
            or len(point.value) < 3
            or not _SQL_SIGNAL.search(point.value)
        ):
            return _NONE
        fingerprint = self._fingerprint(point.value)
        if fingerprint is None or _PROSE_FINGERPRINT.fullmatch(fingerprint):
            return _NONE
        return (finding("sqli", point, rule="libinjection-sqli", reason=f"SQL fingerprint {fingerprint}"),)


class XssDetector:
    """Cross-site scripting, by libinjection's HTML5 tokenizer."""

    attack_types = frozenset({"xss"})
    rule_ids = frozenset({"libinjection-xss"})
    kinds: frozenset[str] | None = None

    def inspect(self, point: RequestPoint) -> tuple[Finding, ...]:
        if point.kind in _NOT_FOR_TOKENIZERS or ("<" not in point.value and "=" not in point.value):
            return _NONE
        if is_xss(point.value):
            return (finding("xss", point, rule="libinjection-xss", reason="HTML/JS injection context"),)
        return _NONE


class SignatureDetector:
    """Every signature rule at once, in one pass per value.

    With hyperscan (a multi-pattern DFA engine) all rules are scanned together in one pass
    over the bytes; Python's `re` then finds the span of the few rules that matched. Without
    hyperscan (no wheel for the platform) every rule's regex runs in turn: same verdicts,
    slower. Rules limited to other point kinds are skipped.
    """

    def __init__(self, rules: Sequence[PatternRule] = RULES, *, disabled_rules: frozenset[str] = frozenset()) -> None:
        self.rules = tuple(rule for rule in rules if rule.rule_id not in disabled_rules)
        self.attack_types = frozenset(rule.attack_type for rule in self.rules)
        self.rule_ids = frozenset(rule.rule_id for rule in self.rules)
        self.kinds: frozenset[str] | None = None
        self._regexes = tuple(re.compile(rule.pattern, re.DOTALL) for rule in self.rules)
        self._database = _compile_hyperscan(self.rules)

    def inspect(self, point: RequestPoint) -> tuple[Finding, ...]:
        matched = self._matching_rules(point.value)
        if not matched:
            return _NONE
        kind = point.kind
        long_value = len(point.value) > MAX_PAYLOAD_CHARS  # a short value is its own payload: no span needed
        findings = []
        for index in matched:
            rule = self.rules[index]
            if (rule.kinds is not None and kind not in rule.kinds) or kind in rule.skip_kinds:
                continue
            span = None
            if long_value:
                match = self._regexes[index].search(point.value)
                span = match.span() if match else None
            findings.append(finding(rule.attack_type, point, rule=rule.rule_id, reason=rule.reason, span=span))
        return tuple(findings)

    def _matching_rules(self, value: str) -> list[int]:
        if self._database is None:
            return [index for index, regex in enumerate(self._regexes) if regex.search(value)]
        matched: list[int] = []
        self._database.scan(value.encode("utf-8", "replace"), match_event_handler=_collect_rule, context=matched)
        if len(matched) > 1:
            matched.sort()  # rule order, as without hyperscan
        return matched


def _collect_rule(rule_id: int, start: int, end: int, flags: int, matched: list[int]) -> None:
    matched.append(rule_id)


def _compile_hyperscan(rules: Sequence[PatternRule]) -> Any | None:
    if hyperscan is None or not rules:
        return None
    database, _ = load_or_compile(
        hyperscan,
        expressions=[_hyperscan_pattern(rule.pattern) for rule in rules],
        ids=range(len(rules)),
        flags=[hyperscan.HS_FLAG_DOTALL | hyperscan.HS_FLAG_SINGLEMATCH] * len(rules),
        cache_dir=default_cache_dir(),
    )
    return database


def _hyperscan_pattern(pattern: str) -> bytes:
    """The rule for hyperscan, which scans UTF-8 bytes: `\\uXXXX` becomes its byte escapes."""

    def utf8_escapes(match: re.Match[str]) -> str:
        return "".join(f"\\x{byte:02x}" for byte in chr(int(match.group(1), 16)).encode("utf-8"))

    return re.sub(r"\\u([0-9a-fA-F]{4})", utf8_escapes, pattern).encode("ascii")


class Log4ShellDetector:
    """Log4j JNDI lookups (CVE-2021-44228), after collapsing the nested lookups that hide them.

    `${${lower:j}ndi:...}`, `${${::-j}${::-n}di:...}` and `${env:X:-j}` all become `${jndi:`.
    """

    attack_types = frozenset({"log4shell"})
    rule_ids = frozenset({"log4shell-jndi"})
    kinds: frozenset[str] | None = None
    _LOOKUP = re.compile(r"\$\{([^${}]*)\}")
    _JNDI = re.compile(r"\$\{\s*jndi\s*:")

    def inspect(self, point: RequestPoint) -> tuple[Finding, ...]:
        if "${" not in point.value:
            return _NONE
        text = point.value
        for _ in range(8):  # innermost lookups first; each round removes one level
            collapsed = self._LOOKUP.sub(self._resolve, text)
            if collapsed == text:
                break
            text = collapsed
        if self._JNDI.search(text.replace("\x00{", "${")):
            return (finding("log4shell", point, rule="log4shell-jndi", reason="JNDI lookup"),)
        return _NONE

    @staticmethod
    def _resolve(match: re.Match[str]) -> str:
        """What Log4j would substitute: the `:-` default, or the argument of lower/upper."""
        inner = match.group(1)
        if inner.lstrip().startswith("jndi"):
            return "\x00{" + inner + "}"  # keep it, marked so it is not resolved again
        if ":-" in inner:
            return inner.split(":-", 1)[1]
        prefix, colon, argument = inner.partition(":")
        if colon and prefix.strip() in {"lower", "upper", "main", "sys", "env", "date", "ctx", "bundle", "map", "sd"}:
            return argument
        return inner


class OpenRedirectDetector:
    """Open redirects: a redirect-target parameter pointing off-site by a trick.

    Only parameters named as redirect targets (`next`, `redirect_uri`, `returnTo`, ...) are
    judged, and only tricks count: protocol-relative `//host`, backslash forms browsers read
    as `//` (`/\\host`, `\\\\host`), `user@host` disguises and script URIs. A plain absolute URL
    to another site is how OAuth and SSO work, so it is not flagged.
    """

    attack_types = frozenset({"open_redirect"})
    rule_ids = frozenset({"open-redirect"})
    kinds: frozenset[str] | None = frozenset({"query", "body.form", "json", "multipart"})
    _TARGET_NAME = re.compile(
        r"(?:^|[._\[])(?:redirect(?:_?ur[il])?|redir|return(?:_?to|_?url)?|next|continue|goto|dest(?:ination)?|"
        r"forward|rurl|target_?url|success_?url|callback_?url)\]?$",
        re.IGNORECASE,
    )
    # Anchored at the start (used with `match`): most values fail on their first character.
    _OFF_SITE = re.compile(r"\s*(?:[/\\]\s*[/\\]|https?:\s*(?:[/\\]\s*\\|\\)|https?://[^/?#]*@|(?:java|vb)script:)")

    def inspect(self, point: RequestPoint) -> tuple[Finding, ...]:
        # The value first: one anchored match, where the name test searches a whole alternation.
        if self._OFF_SITE.match(point.value) and self._TARGET_NAME.search(point.name):
            return (finding("open_redirect", point, rule="open-redirect", reason="redirect target sent off-site"),)
        return _NONE


class ProtocolAnomalyDetector:
    """HTTP framing anomalies from reassembly that enable request smuggling or desync."""

    attack_types = frozenset({"protocol"})
    kinds: frozenset[str] | None = frozenset({"anomaly"})

    def __init__(self, anomalies: frozenset[str] | None = None) -> None:
        self.anomalies = anomalies if anomalies is not None else SMUGGLING_ANOMALIES
        self.rule_ids = frozenset(f"protocol-{name}" for name in self.anomalies)

    def inspect(self, point: RequestPoint) -> tuple[Finding, ...]:
        if point.kind != "anomaly":
            return _NONE
        for name in point.value.split():
            if name in self.anomalies:
                return (finding("protocol", point, rule=f"protocol-{name}", reason=f"request framing anomaly {name}"),)
        return _NONE


SMUGGLING_ANOMALIES = frozenset(
    {
        "content_length_and_chunked",
        "multiple_content_length",
        "invalid_content_length",
        "unknown_transfer_encoding",
        "invalid_chunk_size",
        "chunk_missing_crlf",
        "obs_fold",
        "whitespace_before_colon",
        "header_without_colon",
    }
)


def known_names(detectors: Sequence[Detector]) -> frozenset[str]:
    """Every attack type and rule id the detectors can report: what a policy may name."""
    return frozenset().union(*(detector.attack_types | detector.rule_ids for detector in detectors))


def default_detectors() -> list[Detector]:
    return [
        SqlInjectionDetector(),
        XssDetector(),
        SignatureDetector(),
        Log4ShellDetector(),
        OpenRedirectDetector(),
        ProtocolAnomalyDetector(),
    ]


def finding(
    attack_type: str, point: RequestPoint, *, rule: str, reason: str, span: tuple[int, int] | None = None
) -> Finding:
    """A finding whose payload is the matched text with some context, bounded."""
    value = point.value
    if span is not None and len(value) > MAX_PAYLOAD_CHARS:
        start = max(0, span[0] - _PAYLOAD_CONTEXT)
        value = value[start : start + MAX_PAYLOAD_CHARS]
    return Finding(attack_type, point.name, value[:MAX_PAYLOAD_CHARS], rule, reason)  # positional: cheaper
