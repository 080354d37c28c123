"""One direction of a TCP connection: segments in, contiguous bytes out, in sequence order.

Sans-I/O. Handles retransmissions and overlaps (the first copy of a byte wins; a later
copy that disagrees is counted as a conflict, the shape of an IDS-evasion attempt),
segments that arrive early (kept until the hole before them fills), sequence wrap-around,
and pickup in the middle of a stream. It never decides on its own that a hole is lost: the
connection tracker does, by its limits, and calls `skip_hole()`, which reports the gap's
size so that the parser above can record it rather than zero-fill it.
"""

from __future__ import annotations

__all__ = ["TcpStream"]

# Bytes handed out, when their segment arrived, and the acknowledgement it carried.
Part = tuple[bytes, float, int | None]

_SEQ_MOD = 1 << 32
_HALF_SEQ_SPACE = 1 << 31


def _seq_distance(seq: int, base: int) -> int:
    """Signed distance from `base` to `seq` in 32-bit sequence space (RFC 9293 section 3.4)."""
    return (seq - base + _HALF_SEQ_SPACE) % _SEQ_MOD - _HALF_SEQ_SPACE


class TcpStream:
    """Orders one direction's payload bytes.

    `add` returns the bytes that became contiguous. Early segments wait in `pending_bytes`
    (the owner bounds it with `skip_hole`). The last `overlap_check_bytes` delivered bytes
    are remembered to compare retransmissions against; disagreements count in
    `overlap_conflicts`.
    """

    def __init__(self, *, overlap_check_bytes: int = 4096) -> None:
        self.next_seq: int | None = None
        self.initial_seq: int | None = None  # where the bytes handed out start
        self.pending_bytes = 0
        self.overlap_conflicts = 0
        self.overlap_check_bytes = overlap_check_bytes
        self._pending: dict[int, bytes] = {}
        # When each waiting segment arrived, and the acknowledgement it carried (None if none).
        self._pending_meta: dict[int, tuple[float, int | None]] = {}
        self._recent = b""  # the last delivered bytes, ending at next_seq

    @property
    def has_pending(self) -> bool:
        return bool(self._pending)

    def start(self, isn: int) -> None:
        """A SYN was seen: data starts one past the initial sequence number."""
        if self.next_seq is None:
            self.next_seq = self.initial_seq = (isn + 1) % _SEQ_MOD

    def add(self, seq: int, payload: bytes, ts: float = 0.0, ack: int | None = None) -> bytes:
        """The bytes that became contiguous with this segment."""
        return b"".join(part[0] for part in self.add_parts(seq, payload, ts, ack))

    def add_parts(self, seq: int, payload: bytes, ts: float = 0.0, ack: int | None = None) -> list[Part]:
        """As `add`, segment by segment: (bytes, when they arrived, the acknowledgement they carried)."""
        if not payload:
            return []
        if seq == self.next_seq and not self._pending:  # in order, nothing waiting: the common case
            self._deliver(payload)
            return [(payload, ts, ack)]
        if self.next_seq is None:  # picked up mid-stream
            self.next_seq = self.initial_seq = seq
        offset = _seq_distance(seq, self.next_seq)
        if offset > 0:
            self._keep_early(seq, payload, (ts, ack))
            return []
        if offset < 0:
            self._check_overlap(offset, payload)
            payload = payload[-offset:]
            if not payload:  # a retransmission of bytes already delivered
                return []
        self._deliver(payload)
        if not self._pending:
            return [(payload, ts, ack)]
        return [(payload, ts, ack), *self._drain_parts()]

    def skip_hole(self) -> tuple[int, list[Part]]:
        """Declare the hole before the earliest waiting segment lost.

        Returns the number of bytes lost and the bytes that became contiguous after it, as
        (bytes, when they arrived, the acknowledgement they carried) in stream order; (0, [])
        when nothing waits.
        """
        if not self._pending or self.next_seq is None:
            return 0, []
        base = self.next_seq
        earliest = min(self._pending, key=lambda seq: _seq_distance(seq, base))
        lost = _seq_distance(earliest, base)
        self.next_seq = earliest
        self._recent = b""  # nothing before the gap can be compared any more
        return lost, self._drain_parts()

    def _deliver(self, fresh: bytes) -> None:
        assert self.next_seq is not None
        self.next_seq = (self.next_seq + len(fresh)) % _SEQ_MOD
        keep = self.overlap_check_bytes
        if len(fresh) >= keep:
            self._recent = fresh[-keep:]
        else:
            self._recent = (self._recent + fresh)[-keep:]

    def _check_overlap(self, offset: int, payload: bytes) -> None:
        """`payload` starts `-offset` bytes before next_seq: compare what we still remember."""
        recent = self._recent
        start = len(recent) + offset  # where payload starts inside recent
        skip = max(0, -start)
        overlap = payload[skip:-offset]
        if overlap and overlap != recent[start + skip : start + skip + len(overlap)]:
            self.overlap_conflicts += 1

    def _keep_early(self, seq: int, payload: bytes, meta: tuple[float, int | None]) -> None:
        known = self._pending.get(seq)
        if known is None:
            self._pending[seq] = payload
            self._pending_meta[seq] = meta
            self.pending_bytes += len(payload)
            return
        common = min(len(known), len(payload))
        if known[:common] != payload[:common]:
            self.overlap_conflicts += 1
        if len(payload) > len(known):
            self._pending[seq] = known + payload[len(known) :]  # the first copy wins where both exist
            self.pending_bytes += len(payload) - len(known)

    def _drain_parts(self) -> list[Part]:
        assert self.next_seq is not None
        parts: list[Part] = []
        progressed = True
        while progressed and self._pending:
            progressed = False
            for seq in sorted(self._pending, key=lambda s: _seq_distance(s, self.next_seq or 0)):
                offset = _seq_distance(seq, self.next_seq)
                if offset > 0:
                    break
                payload = self._pending.pop(seq)
                arrived, ack = self._pending_meta.pop(seq)
                self.pending_bytes -= len(payload)
                if offset < 0:
                    self._check_overlap(offset, payload)
                    payload = payload[-offset:]
                if payload:
                    parts.append((payload, arrived, ack))
                    self._deliver(payload)
                progressed = True
        return parts
