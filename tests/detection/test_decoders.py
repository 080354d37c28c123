from __future__ import annotations

import base64
import gzip

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from oob_analyzer.detection.decoders import (
    _DECODERS,
    DECODING_TRIGGERS,
    MAX_VARIANTS,
    decode_base64,
    decode_gzip_text,
    decode_html_entities,
    decode_js_escapes,
    decode_overlong_utf8,
    decode_percent_unicode,
    decoded_variants,
    normalize_for_matching,
    percent_decode,
    strip_comments,
    strip_interleaved_tags,
)


@pytest.mark.parametrize(
    ("decoder", "encoded", "plain"),
    [
        (decode_percent_unicode, "%u003cscript%u003E", "<script>"),
        (decode_html_entities, "&lt;svg&#x20;onload&#61;x&gt;", "<svg onload=x>"),
        (decode_html_entities, "&#0000060;b", "<b"),
        (decode_js_escapes, "\\u003cimg\\x20src\\u{3d}x", "<img src=x"),
        (decode_overlong_utf8, "\xc0\xae\xc0\xae\xc0\xafetc", "../etc"),
        (decode_base64, "id=PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg", "id=<script>alert(1)</script>"),
        (decode_base64, "L2V0Yy9wYXNzd2Q_", "/etc/passwd?"),  # base64url, no padding
        (decode_base64, "q=PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==", "q=<script>alert(1)</script>"),  # padded
        (decode_base64, "JyBPUiAxPTEgLS0=", "' OR 1=1 --"),  # one '=' of padding
        (strip_comments, "UNION/**/SELECT/*!50000password*/", "UNION SELECT password "),
        (strip_comments, "c'a't /et\\c/pas\"s\"wd", "cat /etc/passwd"),
        (strip_interleaved_tags, "o<x>nfocus=al<b>ert(1)", "onfocus=alert(1)"),
    ],
)
def test_each_decoder_undoes_its_encoding(decoder: object, encoded: str, plain: str) -> None:
    assert decoder(encoded) == plain  # type: ignore[operator]


@pytest.mark.parametrize(
    "word",
    ["application/xhtml+xml", "Mozilla50", "ordinaryidentifier", "ABCDEFGHIJKL", "dXNlcg"],
)
def test_base64_leaves_words_and_binary_alone(word: str) -> None:
    assert decode_base64(word) == word


def test_percent_decoding_is_repeated_and_keeps_literal_plus() -> None:
    assert percent_decode("%252e%252e%252f") == "../"
    assert percent_decode("1%2B1") == "1+1"
    assert percent_decode("caf%C3%A9") == "café"
    assert percent_decode("%FF") == "\xff"


def test_gzip_bodies_are_inflated_and_other_bytes_are_not() -> None:
    assert decode_gzip_text(gzip.compress(b"q=<script>")) == "q=<script>"
    assert decode_gzip_text(b"plain text") is None
    assert decode_gzip_text(b"\x1f\x8bbroken") is None


def test_variants_follow_layers_of_encoding() -> None:
    layered = base64.b64encode(b"%3Cscript%3E").decode()
    assert "<script>" in decoded_variants(layered)
    assert decoded_variants("plain") == ["plain"]


def test_normalization_lowercases_and_drops_nul() -> None:
    assert normalize_for_matching("Un\x00IoN SeLeCt") == "union select"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_decoders_never_raise_and_stay_bounded_on_any_text(text: str) -> None:
    variants = decoded_variants(text)
    assert variants[0] == text
    assert len(variants) <= MAX_VARIANTS
    assert len(set(variants)) == len(variants)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_gzip_decoder_never_raises_on_any_bytes(data: bytes) -> None:
    assert decode_gzip_text(b"\x1f\x8b" + data) is None or isinstance(decode_gzip_text(b"\x1f\x8b" + data), str)


# Mostly ASCII punctuation, letters and digits (what the decoders' patterns are made of),
# some Latin-1 and anything else now and then; never a trigger character.
_ASCII = "".join(chr(code) for code in range(32, 127) if chr(code) not in DECODING_TRIGGERS)
_WITHOUT_TRIGGERS = st.text(
    alphabet=st.one_of(
        st.sampled_from(_ASCII),
        st.sampled_from("\x00\x80\xae\xaf\xbf\xe0"),
        st.characters(blacklist_characters=DECODING_TRIGGERS),
    ),
    max_size=200,
)


@settings(max_examples=300, deadline=None)
@given(_WITHOUT_TRIGGERS, st.booleans())
def test_decoders_leave_text_without_their_trigger_characters_alone(text: str, upper: bool) -> None:
    # What lets `decoded_variants` skip them all: without a trigger character, and without
    # both cases (which base64 of text needs), no decoder changes the text.
    single_case = text.upper() if upper else text.lower()
    assume(not set(single_case) & set(DECODING_TRIGGERS))  # 'à'.upper() is '\xc0', a trigger
    for decode in _DECODERS:
        if decode is not decode_base64:
            assert decode(text) == text, decode.__name__
        assert decode(single_case) == single_case, decode.__name__
