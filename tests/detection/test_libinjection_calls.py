"""libinjection through its C entry point: the wrapper's verdicts, on every text, without raising."""

from __future__ import annotations

import libinjection
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.detection_corpus import CORPUS, load_corpus
from oob_analyzer.detection import DetectionEngine, default_detectors
from oob_analyzer.detection.decoders import decoded_variants, normalize_for_matching
from oob_analyzer.detection.libinjection_calls import SqliFingerprinter, is_xss
from tests.builders import http_request
from tests.detection.heldout import ATTACKS, BENIGN


def _wrapper_verdict(text: str) -> str | None:
    verdict = libinjection.is_sql_injection(text)
    return verdict["fingerprint"] if verdict["is_sqli"] else None


def _corpus_texts() -> list[str]:
    texts = [text for _, text in ATTACKS] + list(BENIGN)
    if CORPUS.exists():
        for labelled in load_corpus():
            texts.append(labelled.target)
            texts.append(labelled.body.decode("latin-1"))
            texts.extend(value for _, value in labelled.headers)
    return [normalize_for_matching(variant) for text in texts for variant in decoded_variants(text)]


def test_the_c_entry_point_is_found() -> None:
    # The installed wheel exports libinjection's C API; without it every call takes the slow path.
    assert SqliFingerprinter().uses_c_entry_point


def test_the_c_entry_point_gives_the_wrappers_verdicts() -> None:
    texts = _corpus_texts()
    fingerprinter = SqliFingerprinter()
    differing = [text for text in texts if fingerprinter(text) != _wrapper_verdict(text)]
    assert not differing, differing[:5]
    assert sum(fingerprinter(text) is not None for text in texts) > 50  # the set holds injections


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab1 '\"-#/*();=|&<>xU0,.@`\\\n"), max_size=60))
def test_c_and_wrapper_agree_on_generated_sql_like_text(text: str) -> None:
    assert SqliFingerprinter()(text) == SqliFingerprinter(use_c_entry_point=False)(text) == _wrapper_verdict(text)


@pytest.mark.parametrize("use_c_entry_point", [True, False])
def test_a_lone_surrogate_is_judged_not_raised(use_c_entry_point: bool) -> None:
    assert SqliFingerprinter(use_c_entry_point=use_c_entry_point)("\ud800' or 1=1--") is not None
    assert is_xss("<img src=x onerror=alert(1)>\ud800")


def test_a_request_whose_escape_decodes_to_a_surrogate_is_still_judged() -> None:
    # `\ud800` decodes (JS escapes) to a lone surrogate; the wrapper's strict UTF-8 raised.
    request = http_request("/search?q=%5Cud800%27%20or%201%3D1--")
    hits = DetectionEngine(default_detectors()).analyze(request)
    assert "sqli" in {hit.attack_type for hit in hits}
