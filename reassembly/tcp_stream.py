"""One direction of a TCP connection: segments in, contiguous bytes out, in sequence order.

Sans-I/O. Handles retransmissions and overlaps (the first copy of a byte wins), segments
that arrive early (kept until the hole before them fills, up to a bound), sequence
wrap-around, and pickup in the middle of a stream.
"""

from __future__ import annotations

__all__ = ["TcpStream"]

_SEQ_MOD = 1 << 32
_HALF_SEQ_SPACE = 1 << 31


def _seq_distance(seq: int, base: int) -> int:
    """Signed distance from `base` to `seq` in 32-bit sequence space (RFC 9293 section 3.4)."""
    return (seq - base + _HALF_SEQ_SPACE) % _SEQ_MOD - _HALF_SEQ_SPACE


class TcpStream:
    """Orders one direction's payload bytes.

    `add` returns the bytes that became contiguous. Early segments wait in a buffer bounded
    by `max_pending_bytes`; a segment that would exceed it is refused and counted in
    `dropped_segments`.
    """

    def __init__(self, *, max_pending_bytes: int = 1 << 20) -> None:
        self.next_seq: int | None = None
        self.max_pending_bytes = max_pending_bytes
        self.pending_bytes = 0
        self.dropped_segments = 0
        self._pending: dict[int, bytes] = {}

    def start(self, isn: int) -> None:
        """A SYN was seen: data starts one past the initial sequence number."""
        if self.next_seq is None:
            self.next_seq = (isn + 1) % _SEQ_MOD

    def add(self, seq: int, payload: bytes) -> bytes:
        if not payload:
            return b""
        if self.next_seq is None:  # picked up mid-stream
            self.next_seq = seq
        offset = _seq_distance(seq, self.next_seq)
        if offset > 0:
            self._keep_early(seq, payload)
            return b""
        fresh = payload[-offset:] if offset < 0 else payload
        if not fresh:  # a retransmission of bytes already delivered
            return b""
        self.next_seq = (self.next_seq + len(fresh)) % _SEQ_MOD
        if not self._pending:
            return fresh
        return fresh + self._drain()

    def _keep_early(self, seq: int, payload: bytes) -> None:
        known = self._pending.get(seq)
        if known is not None and len(known) >= len(payload):
            return
        grow = len(payload) - (len(known) if known else 0)
        if self.pending_bytes + grow > self.max_pending_bytes:
            self.dropped_segments += 1
            return
        self._pending[seq] = payload
        self.pending_bytes += grow

    def _drain(self) -> bytes:
        assert self.next_seq is not None
        parts: list[bytes] = []
        progressed = True
        while progressed and self._pending:
            progressed = False
            for seq in list(self._pending):
                offset = _seq_distance(seq, self.next_seq)
                if offset > 0:
                    continue
                payload = self._pending.pop(seq)
                self.pending_bytes -= len(payload)
                fresh = payload[-offset:] if offset < 0 else payload
                if fresh:
                    parts.append(fresh)
                    self.next_seq = (self.next_seq + len(fresh)) % _SEQ_MOD
                progressed = True
        return b"".join(parts)
