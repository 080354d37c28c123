"""Undo a request body's Content-Encoding (gzip, deflate, br) within bounds.

Sans-I/O helper of the message parsers. Attackers compress payloads to slip past
inspection, and compress bombs to exhaust memory: the output is capped both absolutely
(`max_decoded_body_bytes`) and relative to the input (`max_decompression_ratio`), and a
body past either cap is decoded up to it and named `decompression_limit_exceeded`.
"""

from __future__ import annotations

import zlib

import brotli

from reassembly.limits import ReassemblyLimits

__all__ = ["decode_body"]

_IDENTITY = {"", "identity"}


class _DecodeError(Exception):
    pass


def decode_body(
    content_encoding: str | None, body: bytes, limits: ReassemblyLimits, anomalies: list[str]
) -> bytes | None:
    """The decoded body, or None when there is no coding to undo or it is not one we know.

    Problems are appended to `anomalies` (`unknown_content_encoding`,
    `invalid_content_encoding`, `decompression_limit_exceeded`); this never raises.
    """
    if content_encoding is None:
        return None
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip().lower() not in _IDENTITY]
    if not codings:
        return None
    cap = min(limits.max_decoded_body_bytes, max(len(body), 1) * limits.max_decompression_ratio)
    data = body
    # RFC 9110 section 8.4: codings are listed in the order they were applied.
    for coding in reversed(codings):
        try:
            decoded, capped = _decode_one(coding, data, cap)
        except _DecodeError:
            anomalies.append("invalid_content_encoding")
            return None
        if decoded is None:
            anomalies.append("unknown_content_encoding")
            return None
        if capped:
            anomalies.append("decompression_limit_exceeded")
            return decoded
        data = decoded
    return data


def _decode_one(coding: str, data: bytes, cap: int) -> tuple[bytes | None, bool]:
    if coding in ("gzip", "x-gzip"):
        return _inflate(data, cap, zlib.MAX_WBITS | 16)
    if coding == "deflate":
        # RFC 9110 says zlib-wrapped; some clients send raw deflate. Accept both.
        wbits = zlib.MAX_WBITS if data[:1] and (data[0] & 0x0F) == 8 else -zlib.MAX_WBITS
        return _inflate(data, cap, wbits)
    if coding == "br":
        return _unbrotli(data, cap)
    return None, False


def _inflate(data: bytes, cap: int, wbits: int) -> tuple[bytes, bool]:
    decompressor = zlib.decompressobj(wbits)
    try:
        out = decompressor.decompress(data, cap)
    except zlib.error as exc:
        raise _DecodeError(str(exc)) from exc
    capped = bool(decompressor.unconsumed_tail) or (len(out) >= cap and not decompressor.eof)
    return out, capped


def _unbrotli(data: bytes, cap: int) -> tuple[bytes, bool]:
    decompressor = brotli.Decompressor()
    try:
        out = decompressor.process(data, output_buffer_limit=cap)
    except brotli.error as exc:
        raise _DecodeError(str(exc)) from exc
    if len(out) > cap:
        return out[:cap], True
    return out, not decompressor.is_finished() and not decompressor.can_accept_more_data()
