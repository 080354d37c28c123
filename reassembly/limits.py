"""The bounds reassembly works within, passed in by whoever builds the tracker.

Every bound exists so that hostile or broken traffic (a SYN flood, a body that never ends,
a hole that never fills, a decompression bomb) costs a known amount of memory. What a bound
throws away is counted under a named reason in `ConnectionTracker.stats`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ReassemblyLimits"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReassemblyLimits:
    """How much reassembly may hold, and for how long.

    - `max_flows`: connections tracked at once; the least recently active one is evicted
      to make room for a new one.
    - `idle_timeout`: seconds (capture time) without a segment after which a connection is
      closed and its message in progress handed back.
    - `max_pending_bytes_per_direction`: out-of-order bytes one direction may hold while
      waiting for a hole to fill; past it the hole is declared lost (`tcp_gap`).
    - `max_pending_bytes_total`: the same, summed over every connection.
    - `overlap_check_bytes`: how many already delivered bytes each direction remembers to
      compare retransmissions against (`overlap_conflict`).
    - `max_head_bytes`: request/status line plus headers; longer is `header_too_long`.
    - `body_inspection_bytes`: body bytes kept per message; the full length is still counted.
    - `max_decoded_body_bytes` / `max_decompression_ratio`: bounds on gzip/deflate/br
      request-body decoding (`decompression_limit_exceeded` past either).
    """

    max_flows: int = 100_000
    idle_timeout: float = 300.0
    max_pending_bytes_per_direction: int = 1 << 20
    max_pending_bytes_total: int = 256 << 20
    overlap_check_bytes: int = 4096
    max_head_bytes: int = 64 * 1024
    body_inspection_bytes: int = 1 << 20
    max_decoded_body_bytes: int = 1 << 20
    max_decompression_ratio: int = 100
