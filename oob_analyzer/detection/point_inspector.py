"""The compiled check that leaves clean points and variants out of the engine's detector loop.

`build_point_inspector(detectors)` gives the engine a `PointInspector` (`_inspect.c`) when
every detector is one of the default kinds and the decoders are the ones it was written
for; otherwise, or when the extension is not built, None, and the engine runs the Python
path alone. The inspector leaves out only variants in which no detector can find anything,
so it changes no finding (tests/detection/test_point_inspector.py holds it to that).
"""

from __future__ import annotations

from collections.abc import Sequence

import libinjection

from oob_analyzer.detection import decoders
from oob_analyzer.detection import detectors as detector_module
from oob_analyzer.detection.detectors import (
    Detector,
    Log4ShellDetector,
    OpenRedirectDetector,
    ProtocolAnomalyDetector,
    SignatureDetector,
    SqlInjectionDetector,
    XssDetector,
)

try:
    from oob_analyzer.detection._inspect import PointInspector
except ImportError:  # not built (a source tree without `pip install`): the Python path alone
    PointInspector = None  # type: ignore[assignment,misc]

__all__ = ["build_point_inspector"]

# The detectors whose verdicts _inspect.c repeats (exact types: a subclass may judge otherwise).
_KNOWN_DETECTORS = (
    SqlInjectionDetector,
    XssDetector,
    SignatureDetector,
    Log4ShellDetector,
    OpenRedirectDetector,
    ProtocolAnomalyDetector,
)
# The decoders _inspect.c gates by their triggers, in this order.
_KNOWN_DECODERS = (
    decoders.percent_decode,
    decoders.decode_percent_unicode,
    decoders.decode_js_escapes,
    decoders.decode_html_entities,
    decoders.decode_overlong_utf8,
    decoders.decode_base64,
    decoders.strip_comments,
    decoders.strip_interleaved_tags,
)


# The detectors' pre-checks as _inspect_judge.c repeats them: were one of them to change, the
# C checks could pass over what the Python detector now finds, so there is no inspector then.
_TOKENIZER_SKIPS = frozenset({"name", "json_key", "anomaly", "xml"})
_MEDIA_TYPES = frozenset({"header.accept", "header.content-type", "header.accept-encoding"})
_SQL_SIGNAL = r"""[-'\"`;()=<>|&#*/@!~^%+\\]|\d"""
_PROSE = r"[n&ov]+|[1n]c|sE.*"
_REDIRECT_KINDS = frozenset({"query", "body.form", "json", "multipart"})
_OFF_SITE = r"\s*(?:[/\\]\s*[/\\]|https?:\s*(?:[/\\]\s*\\|\\)|https?://[^/?#]*@|(?:java|vb)script:)"


def _judged_as_written() -> bool:
    return (
        detector_module._NOT_FOR_TOKENIZERS == _TOKENIZER_SKIPS
        and detector_module._MEDIA_TYPE_HEADERS == _MEDIA_TYPES
        and detector_module._SQL_SIGNAL.pattern == _SQL_SIGNAL
        and detector_module._PROSE_FINGERPRINT.pattern == _PROSE
        and OpenRedirectDetector.kinds == _REDIRECT_KINDS
        and OpenRedirectDetector._OFF_SITE.pattern == _OFF_SITE
        and ProtocolAnomalyDetector.kinds == frozenset({"anomaly"})
    )


def build_point_inspector(detectors: Sequence[Detector]) -> PointInspector | None:
    """A `PointInspector` for `detectors`, or None when it cannot vouch for them."""
    if PointInspector is None or decoders._DECODERS != _KNOWN_DECODERS:
        return None
    if not _judged_as_written():
        return None
    if any(type(each) not in _KNOWN_DETECTORS for each in detectors):
        return None
    signatures = [each for each in detectors if type(each) is SignatureDetector]
    if len(signatures) > 1:
        return None
    scan: object = None
    matching_rules: object = None
    rule_kinds: tuple[tuple[frozenset[str] | None, frozenset[str]], ...] = ()
    if signatures:
        signature = signatures[0]
        assert isinstance(signature, SignatureDetector)
        database = signature._database
        if database is None:
            matching_rules = signature._matching_rules
        else:
            scan = database.scan
        rule_kinds = tuple((rule.kinds, rule.skip_kinds) for rule in signature.rules)
    return PointInspector(
        decoders=_KNOWN_DECODERS,
        normalize=decoders.normalize_for_matching,
        libinjection_path=libinjection.__file__,
        scan=scan,
        matching_rules=matching_rules,
        rule_kinds=rule_kinds,
        max_depth=decoders.MAX_DECODE_DEPTH,
        max_variants=decoders.MAX_VARIANTS,
    )
