"""Decoders: undo the encodings attackers wrap payloads in, so detectors see what the app sees.

`decoded_variants(value)` applies every decoder repeatedly, under a depth limit, and
returns each distinct text found on the way (the input first). Every decoder is total: on
any input it returns a string (unchanged when the encoding is not there) and never raises.
"""

from __future__ import annotations

import binascii
import gzip
import html
import re
import zlib
from collections.abc import Callable

__all__ = [
    "DECODING_TRIGGERS",
    "MAX_DECODE_DEPTH",
    "decode_base64",
    "decode_gzip_text",
    "decode_html_entities",
    "decode_js_escapes",
    "decode_overlong_utf8",
    "decode_percent_unicode",
    "decoded_variants",
    "needs_no_decoding",
    "normalize_for_matching",
    "percent_decode",
    "python_decode_base64",
    "strip_comments",
    "strip_interleaved_tags",
]

MAX_DECODE_DEPTH = 3
MAX_VARIANTS = 8
_MAX_PERCENT_ROUNDS = 3
_MAX_GZIP_OUTPUT = 64 * 1024

_PERCENT_UNICODE = re.compile(r"%u([0-9a-fA-F]{4})")
_JS_ESCAPE = re.compile(r"\\(?:u\{([0-9a-fA-F]{1,6})\}|u([0-9a-fA-F]{4})|x([0-9a-fA-F]{2}))")
# Overlong UTF-8 (RFC 3629 §3 forbids them; old IIS and Tomcat decoded them anyway):
# two-byte forms C0/C1 xx that smuggle ASCII such as '.' (C0 AE) and '/' (C0 AF).
_OVERLONG_TWO_BYTE = re.compile(r"[\xc0\xc1]([\x80-\xbf])")
# A token never starts with '/': in a path, "/SGVsbG8..." is a separator and then the token.
_BASE64_TOKEN = re.compile(r"[A-Za-z0-9+_-][A-Za-z0-9+/_-]{7,}={0,2}")
# `autof<x>ocus`, `al<b>ert`: a fake tag inside a word, dropped by lax HTML parsers.
# Here and in `_SHELL_NOISE`, every alternative starts with a literal and a lookbehind comes
# after it, not before: `re` then jumps from one candidate character to the next instead of
# trying every alternative at every position (4x faster, same matches).
_INTERLEAVED_TAG = re.compile(r"<(?<=[A-Za-z]<)[A-Za-z]{1,3}>(?=[A-Za-z(])")
# A plain comment goes; MySQL's `/*!50000 ... */` runs its contents, so only its markers go.
_SQL_COMMENT = re.compile(r"/\*(?!!).*?\*/|/\*!\d*|\*/|--[^\n]*$|#[^\n]*$", re.MULTILINE | re.DOTALL)
_SHELL_NOISE = re.compile(r"""\$\{?IFS\}?(?:\$\d)?|\\(?=[a-z])|'(?<=[a-z]')(?=[a-z])|"(?<=[a-z]")(?=[a-z])|\$@""")


def percent_decode(text: str, *, plus_is_space: bool = True) -> str:
    """Undo percent-encoding, repeatedly (attackers encode twice), in at most a few rounds.

    Bytes that are not UTF-8 decode as Latin-1, so nothing is lost.
    """
    if "%" not in text and not (plus_is_space and "+" in text):
        return text  # most values: no loop to set up
    for _ in range(_MAX_PERCENT_ROUNDS):
        if "%" not in text and not (plus_is_space and "+" in text):
            break
        if plus_is_space:
            text = text.replace("+", " ")
        decoded = _utf8_if_possible(_unquote_latin1(text)) if "%" in text else text
        plus_is_space = False  # a literal '+' that was %2B must stay a '+'
        if decoded == text:
            break
        text = decoded
    return text


def _unquote_latin1(text: str) -> str:
    """`%XX` escapes to the Latin-1 character of that byte; a stray `%` stays as it is.

    (urllib's unquote does the same in pure Python, several times slower: this runs on
    every value of every request.)
    """
    pieces = text.split("%")
    decoded = [pieces[0]]
    for piece in pieces[1:]:
        char = _HEX_PAIRS.get(piece[:2])
        decoded.append("%" + piece if char is None else char + piece[2:])
    return "".join(decoded)


_HEX_PAIRS = {
    f"{high}{low}": chr(int(high + low, 16)) for high in "0123456789abcdefABCDEF" for low in "0123456789abcdefABCDEF"
}


def decode_percent_unicode(text: str) -> str:
    """`%u003c` (IIS's non-standard escape) to `<`."""
    if "%u" not in text and "%U" not in text:
        return text
    return _PERCENT_UNICODE.sub(lambda m: chr(int(m.group(1), 16)), text)


def decode_html_entities(text: str) -> str:
    """`&lt;`, `&#60;`, `&#x3c;` (with or without the `;`) to `<`."""
    if "&" not in text:
        return text
    return html.unescape(text)


def decode_js_escapes(text: str) -> str:
    """JavaScript/JSON escapes `\\u003c`, `\\u{3c}` and `\\x3c` to `<`."""
    if "\\" not in text:
        return text
    return _JS_ESCAPE.sub(_js_escape_char, text)


def decode_overlong_utf8(text: str) -> str:
    """Overlong two-byte UTF-8 sequences (as Latin-1 text) to the ASCII they stand for."""
    if "\xc0" not in text and "\xc1" not in text:
        return text
    return _OVERLONG_TWO_BYTE.sub(lambda m: chr(((ord(m.group(0)[0]) & 0x1F) << 6) | (ord(m.group(1)) & 0x3F)), text)


def python_decode_base64(text: str) -> str:
    """Base64 or base64url tokens that decode to readable text, replaced by that text.

    The reference for `decode_base64`, which is the compiled `_base64_text.decode_base64`
    when it is built (tests/detection/test_base64_text.py holds the two to the same output).

    Plausibility guards against decoding every identifier: a token of 8+ characters from
    the alphabet, with both upper- and lower-case letters, whose decoding is valid UTF-8
    made mostly of printable characters. (Base64 of ASCII text always mixes cases: each
    character's top bits select A-Z or a-f.) So a text without both cases is passed over
    whole, without scanning it for tokens.
    """
    if len(text) < 8 or text.islower() or text.isupper():
        return text
    return _BASE64_TOKEN.sub(_base64_match_text, text)


try:
    from oob_analyzer.detection._base64_text import decode_base64
except ImportError:  # not built (a source tree without `pip install`): the Python reference
    decode_base64 = python_decode_base64


def _decode_base64_remembering(text: str, tokens: dict[str, str]) -> str:
    """`python_decode_base64`, looking each token up in `tokens` (token -> its text) before decoding it.

    The variants of one value share most of their tokens: a JWT's signature, which decodes to
    nothing readable, was tried once per variant (four times in a bearer header) before.
    """
    if len(text) < 8 or text.islower() or text.isupper():
        return text

    def token_text(match: re.Match[str]) -> str:
        token = match.group(0)
        decoded = tokens.get(token)
        if decoded is None:
            decoded = tokens[token] = _base64_token_text(token)
        return decoded

    return _BASE64_TOKEN.sub(token_text, text)


def decode_gzip_text(data: bytes) -> str | None:
    """The text inside gzip or zlib data (bounded output), or None when it is not compressed."""
    if data[:2] == b"\x1f\x8b":
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif data[:1] == b"\x78" and len(data) > 2 and (data[0] * 256 + data[1]) % 31 == 0:
        decompressor = zlib.decompressobj()
    else:
        return None
    try:
        plain = decompressor.decompress(data, _MAX_GZIP_OUTPUT)
    except (zlib.error, gzip.BadGzipFile, EOFError):
        return None
    return _utf8_if_possible(plain.decode("latin-1"))


def strip_comments(text: str) -> str:
    """Remove SQL comments (`/**/`, `/*!50000`, `--`, `#`) and shell obfuscation (`$IFS`, `c'a't`)."""
    text = _SQL_COMMENT.sub(" ", text) if ("/*" in text or "--" in text or "#" in text) else text
    return (
        _SHELL_NOISE.sub(" " if "IFS" in text else "", text)
        if ("$" in text or "'" in text or "\\" in text or '"' in text)
        else text
    )


def strip_interleaved_tags(text: str) -> str:
    """`o<x>nfocus` to `onfocus`: tags wedged inside a word to break signatures."""
    if "<" not in text:
        return text
    return _INTERLEAVED_TAG.sub("", text)


def normalize_for_matching(text: str) -> str:
    """Lower case with NUL bytes dropped (rules allow any blank run with `\\s+`)."""
    return text.replace("\x00", "").lower()


_DECODERS: tuple[Callable[[str], str], ...] = (
    percent_decode,
    decode_percent_unicode,
    decode_js_escapes,
    decode_html_entities,
    decode_overlong_utf8,
    decode_base64,
    strip_comments,
    strip_interleaved_tags,
)


# Every character without which the decoders other than base64 leave a text as it is:
# percent `%+`, `%u` `%`, JS `\\`, entities `&`, overlong `\xc0\xc1`, comments and shell
# noise `/* -- # $ ' " \\`, interleaved tags `<`. Base64 needs both cases (`decode_base64`).
# Nearly half the texts the decoders are shown have none: one scan in C instead of eight
# calls. (tests/detection/test_decoders.py checks each decoder against this set.)
DECODING_TRIGGERS = "%+\\&\xc0\xc1*-#$'\"<"
_ANY_TRIGGER = re.compile("[" + re.escape(DECODING_TRIGGERS) + "]")


def needs_no_decoding(text: str) -> bool:
    """True when every decoder would return `text` unchanged (so it is its only variant)."""
    return _ANY_TRIGGER.search(text) is None and (len(text) < 8 or text.islower() or text.isupper())


def decoded_variants(value: str, *, depth: int = MAX_DECODE_DEPTH) -> list[str]:
    """`value` and every distinct text the decoders make of it, breadth first, bounded."""
    variants = [value]
    frontier = [value]
    base64_tokens: dict[str, str] = {}
    for _ in range(depth):
        next_frontier: list[str] = []
        for text in frontier:
            if needs_no_decoding(text):
                continue
            for decode in _DECODERS:
                if decode is python_decode_base64:
                    decoded = _decode_base64_remembering(text, base64_tokens)
                else:
                    decoded = decode(text)
                if decoded != text and decoded not in variants:
                    variants.append(decoded)
                    next_frontier.append(decoded)
                    if len(variants) >= MAX_VARIANTS:
                        return variants
        if not next_frontier:
            break
        frontier = next_frontier
    return variants


def _js_escape_char(match: re.Match[str]) -> str:
    digits = match.group(1) or match.group(2) or match.group(3)
    code = int(digits, 16)
    return chr(code) if code <= 0x10FFFF else match.group(0)


def _base64_match_text(match: re.Match[str]) -> str:
    return _base64_token_text(match.group(0))


def _base64_token_text(token: str) -> str:
    # Base64 of text mixes cases; words, numbers, paths and MIME types ("application/xml") do not.
    bare = token.rstrip("=")
    if token.islower() or token.isupper() or len(bare) % 4 == 1 or token.lower() == token:
        return token
    # The padding the token needs, whatever it came with (strict decoding refuses extra '=').
    padded = bare + "=" * (-len(bare) % 4)
    try:
        # What base64.b64decode(..., validate=True) does, without its argument checks: the
        # token is ASCII from the base64 alphabet by construction.
        raw = binascii.a2b_base64(padded.translate(_URLSAFE_TO_STD).encode("ascii"), strict_mode=True)
    except binascii.Error:
        return token
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return token
    printable = len(text) if text.isprintable() else sum(1 for ch in text if ch.isprintable() or ch in "\r\n\t")
    if not text or printable < 0.9 * len(text):
        return token
    return text


_URLSAFE_TO_STD = str.maketrans("-_", "+/")


def _utf8_if_possible(text: str) -> str:
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text
