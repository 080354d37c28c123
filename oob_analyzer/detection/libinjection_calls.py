"""libinjection's two verdicts, SQLi through its C entry point, both safe on any text.

The `libinjection` Python wrapper builds a list of eight token dicts on every SQLi call,
which costs more than libinjection's own tokenizing (callgrind, over typical request
values: 30 100 instructions per call through the wrapper, 13 500 through the C entry
point). The wrapper's shared object exports libinjection's C API, so `SqliFingerprinter`
calls `libinjection_sqli` through ctypes, and falls back to the wrapper when a build does
not export it. Its XSS call builds nothing and is cheaper than ctypes: it stays.

The wrapper encodes text as strict UTF-8, so a lone surrogate (what a `\\ud800` escape
decodes to) raised UnicodeEncodeError out of the whole request; here such a character
goes in as `?`, as hyperscan's input does. Same verdicts otherwise
(tests/detection/test_libinjection_calls.py compares them).
"""

from __future__ import annotations

import ctypes
from typing import Any

import libinjection

__all__ = ["SqliFingerprinter", "is_xss"]

_FINGERPRINT_BYTES = 8  # libinjection_sqli.h: `char fingerprint[8]`, NUL-terminated


def _c_sqli() -> Any | None:
    """`int libinjection_sqli(const char* s, size_t slen, char fingerprint[])`, or None."""
    try:
        function = ctypes.CDLL(libinjection.__file__).libinjection_sqli
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p)
    function.restype = ctypes.c_int
    return function


class SqliFingerprinter:
    """libinjection's SQLi verdict: the fingerprint of a text that is SQLi, else None.

    Holds the buffer libinjection writes the fingerprint into: one per detector, not
    shared between threads.
    """

    def __init__(self, *, use_c_entry_point: bool = True) -> None:
        self._c_sqli = _c_sqli() if use_c_entry_point else None
        self._fingerprint = ctypes.create_string_buffer(_FINGERPRINT_BYTES)

    @property
    def uses_c_entry_point(self) -> bool:
        return self._c_sqli is not None

    def __call__(self, text: str) -> str | None:
        if self._c_sqli is None:
            return _wrapper_fingerprint(text)
        data = text.encode("utf-8", "replace")
        if not self._c_sqli(data, len(data), self._fingerprint):
            return None
        return self._fingerprint.value.decode("ascii", "replace")


def _wrapper_fingerprint(text: str) -> str | None:
    try:
        verdict = libinjection.is_sql_injection(text)
    except UnicodeEncodeError:
        verdict = libinjection.is_sql_injection(_encodable(text))
    if not verdict["is_sqli"]:
        return None
    fingerprint = verdict["fingerprint"]
    return fingerprint.decode("ascii", "replace") if isinstance(fingerprint, bytes) else str(fingerprint)


def is_xss(text: str) -> bool:
    try:
        return bool(libinjection.is_xss(text)["is_xss"])
    except UnicodeEncodeError:
        return bool(libinjection.is_xss(_encodable(text))["is_xss"])


def _encodable(text: str) -> str:
    return text.encode("utf-8", "replace").decode("utf-8")
