"""IPv4 and IPv6 fragment reassembly, bounded in time, count and bytes.

Part of the capture stage's sans-I/O decoder: it is fed each fragment's payload and hands
back the whole datagram's payload once every byte is in. Overlapping fragments whose bytes
differ are an evasion technique (Ptacek & Newsham, 1998; RFC 5722 forbids them for IPv6):
they are counted as `ip_fragment_overlap` and the bytes that arrived first are kept.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass, field

__all__ = ["FragmentReassembler"]

MAX_DATAGRAM = 65535  # an IPv4 total length (and an IPv6 payload length without jumbograms)


@dataclass(slots=True)
class _Datagram:
    first_ts: float
    data: bytearray = field(default_factory=bytearray)
    covered: list[tuple[int, int]] = field(default_factory=list)  # sorted, disjoint
    total: int | None = None  # known once the last fragment (more-fragments unset) arrives


class FragmentReassembler:
    """Collects fragments by datagram key; `anomalies` counts what was odd along the way."""

    def __init__(self, *, timeout: float = 30.0, max_datagrams: int = 1024, max_bytes: int = 16 << 20) -> None:
        self.timeout = timeout
        self.max_datagrams = max_datagrams
        self.max_bytes = max_bytes
        self.anomalies: Counter[str] = Counter()
        self._pending: dict[Hashable, _Datagram] = {}
        self._bytes = 0

    def add(self, key: Hashable, ts: float, offset: int, payload: bytes, more: bool) -> bytes | None:
        """The whole datagram's payload if this fragment completes it, else None."""
        end = offset + len(payload)
        if end > MAX_DATAGRAM:
            self.anomalies["ip_fragment_too_large"] += 1
            return None
        self._expire(ts)
        datagram = self._pending.get(key)
        if datagram is None:
            self._make_room(len(payload))
            datagram = self._pending[key] = _Datagram(first_ts=ts)
        if not more:
            if datagram.total is not None and datagram.total != end:
                self.anomalies["ip_fragment_conflicting_end"] += 1
            elif datagram.total is None:
                datagram.total = end
        self._insert(datagram, offset, payload)
        if datagram.total is not None and datagram.covered == [(0, datagram.total)]:
            del self._pending[key]
            self._bytes -= len(datagram.data)
            return bytes(datagram.data[: datagram.total])
        return None

    def _insert(self, datagram: _Datagram, offset: int, payload: bytes) -> None:
        end = offset + len(payload)
        if len(datagram.data) < end:
            self._bytes += end - len(datagram.data)
            datagram.data.extend(bytes(end - len(datagram.data)))
        cursor = offset
        for start, stop in datagram.covered:
            if stop <= cursor or start >= end:
                continue
            if cursor < start:
                datagram.data[cursor:start] = payload[cursor - offset : start - offset]
            lo, hi = max(start, offset), min(stop, end)
            if datagram.data[lo:hi] != payload[lo - offset : hi - offset]:
                self.anomalies["ip_fragment_overlap"] += 1
            cursor = max(cursor, stop)
        if cursor < end:
            datagram.data[cursor:end] = payload[cursor - offset :]
        datagram.covered = _merge([*datagram.covered, (offset, end)])

    def _expire(self, now: float) -> None:
        # Datagrams are kept in arrival order, so the oldest come first.
        while self._pending:
            key, datagram = next(iter(self._pending.items()))
            if datagram.first_ts >= now - self.timeout:
                return
            self._drop(key, "ip_fragments_timed_out")

    def _make_room(self, incoming: int) -> None:
        while self._pending and (len(self._pending) >= self.max_datagrams or self._bytes + incoming > self.max_bytes):
            self._drop(next(iter(self._pending)), "ip_fragments_evicted")

    def _drop(self, key: Hashable, reason: str) -> None:
        datagram = self._pending.pop(key)
        self._bytes -= len(datagram.data)
        self.anomalies[reason] += 1

    def pending(self) -> int:
        return len(self._pending)


def _merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, stop in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((start, stop))
    return merged
