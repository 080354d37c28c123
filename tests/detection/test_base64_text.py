"""The compiled `decode_base64` against its Python reference: the same text out for every text in."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.detection_corpus import CORPUS, load_corpus
from oob_analyzer.detection import decoders
from oob_analyzer.detection.decoders import decoded_variants, python_decode_base64
from tests.detection.heldout import ATTACKS, BENIGN

compiled = pytest.importorskip("oob_analyzer.detection._base64_text").decode_base64

_TOKEN_CHARS = "ABCXYZabcxyz0189+/-_="
_OTHER_CHARS = " .:;,\"'<>&%\\\n\té€\U0001f600\ud800"


def test_the_engine_uses_the_compiled_decoder() -> None:
    assert decoders.decode_base64 is compiled


def test_same_output_on_the_corpus_and_every_variant() -> None:
    texts = [text for _, text in ATTACKS] + list(BENIGN)
    if CORPUS.exists():
        for labelled in load_corpus():
            texts += [labelled.target, labelled.body.decode("latin-1"), *(value for _, value in labelled.headers)]
    texts = [variant for text in texts for variant in decoded_variants(text)]
    differing = [text for text in texts if compiled(text) != python_decode_base64(text)]
    assert not differing, differing[:3]
    assert sum(compiled(text) != text for text in texts) > 20  # the set holds base64 that decodes


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(_TOKEN_CHARS + _OTHER_CHARS), max_size=80))
def test_same_output_on_generated_text(text: str) -> None:
    assert compiled(text) == python_decode_base64(text)


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=40),
    st.text(alphabet=st.sampled_from(_OTHER_CHARS), max_size=3),
    st.booleans(),
    st.integers(min_value=0, max_value=2),
)
def test_same_output_around_real_base64(plain: str, around: str, urlsafe: bool, padding: int) -> None:
    data = plain.encode("utf-8", "surrogatepass")
    encoded = (base64.urlsafe_b64encode(data) if urlsafe else base64.b64encode(data)).decode().rstrip("=")
    text = f"{around}{encoded}{'=' * padding}{around}x{encoded}"
    assert compiled(text) == python_decode_base64(text)


def test_a_decoded_token_and_the_text_around_it() -> None:
    token = base64.b64encode(b"<script>alert(1)</script>").decode()
    assert compiled(f"id={token}&x=1") == "id=<script>alert(1)</script>&x=1"
    assert compiled("Mozilla/5.0 AppleWebKit/537.36") == python_decode_base64("Mozilla/5.0 AppleWebKit/537.36")


def test_refuses_what_is_not_text() -> None:
    with pytest.raises(TypeError):
        compiled(b"SGVsbG8gd29ybGQ=")  # type: ignore[arg-type]


def test_the_printable_share_of_every_ascii_character() -> None:
    """Each ASCII character (controls and DEL among them) at the edges of the 90 % share."""
    for code in range(128):
        for plain_count in (8, 9, 18, 19):
            for extra in (1, 2):
                data = ("Ab" * plain_count)[:plain_count] + chr(code) * extra
                token = base64.b64encode(data.encode()).decode()
                assert compiled(f"x {token} y") == python_decode_base64(f"x {token} y"), (code, plain_count, extra)


def _utf8_edges() -> list[bytes]:
    """Every byte alone, every two-byte pair, and three- and four-byte forms at each range's edges."""
    edges = [0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF]
    sequences = [bytes([first]) for first in range(256)]
    sequences += [bytes([first, second]) for first in range(0x80, 0x100) for second in range(256)]
    sequences += [bytes([first, second, third]) for first in range(0xE0, 0x100) for second in edges for third in edges]
    sequences += [
        bytes([first, second, third, fourth])
        for first in range(0xF0, 0x100)
        for second in edges
        for third in (0x7F, 0x80, 0xBF, 0xC0)
        for fourth in (0x7F, 0x80, 0xBF, 0xC0)
    ]
    return sequences


def test_what_is_utf8_at_every_edge() -> None:
    """A token holding each sequence amid ASCII text decodes exactly when Python's strict UTF-8 takes it."""
    for sequence in _utf8_edges():
        for data in (b"Abcdefghijklmnopqrst" + sequence + b"Uvwxyz", b"Abcdefghijklmnopqrst" + sequence):
            token = base64.b64encode(data).decode()
            assert compiled(token) == python_decode_base64(token), sequence
