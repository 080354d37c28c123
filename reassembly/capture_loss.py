"""Capture loss estimated from acknowledgements, as Zeek's `capture-loss.zeek` does.

Sans-I/O, fed by the connection tracker. A mirror port, a tap or a busy sensor drops
packets; the endpoints do not, so when one side acknowledges sequence space of the other
that the capture never held, those bytes reached the endpoint but not us. The tracker
counts every acknowledgement that advances (`ack_events`, `ack_bytes`), and every range of
acknowledged bytes it never saw (`gap_events`, `gap_bytes`): when reassembly gives up on a
hole (a limit, the idle timeout, the connection's close) and, at the close, the acknowledged
bytes past the last one seen.

Counting at the hole rather than at the acknowledgement keeps a mirror's reordering (an
ACK that overtakes the data it acknowledges) from passing for loss, at the cost of the
estimate trailing the traffic by up to a connection's life.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CaptureLoss", "acknowledged_unseen"]

_SEQ_MOD = 1 << 32
_HALF_SEQ = 1 << 31


@dataclass(frozen=True, slots=True, kw_only=True)
class CaptureLoss:
    """The estimate so far: acknowledgements seen, and the acknowledged bytes never captured."""

    ack_events: int = 0
    ack_bytes: int = 0
    gap_events: int = 0
    gap_bytes: int = 0

    @property
    def ratio(self) -> float:
        """Share of acknowledged bytes the capture never saw (0.0 before any acknowledgement)."""
        return self.gap_bytes / self.ack_bytes if self.ack_bytes else 0.0

    def __add__(self, other: CaptureLoss) -> CaptureLoss:
        return CaptureLoss(
            ack_events=self.ack_events + other.ack_events,
            ack_bytes=self.ack_bytes + other.ack_bytes,
            gap_events=self.gap_events + other.gap_events,
            gap_bytes=self.gap_bytes + other.gap_bytes,
        )


def acknowledged_unseen(acked: int | None, start: int | None, most: int | None = None) -> int:
    """How many bytes from sequence number `start` on were acknowledged (`acked`: one past the
    last acknowledged byte), at most `most` (a hole's size) if given; 0 if unknown or none."""
    if acked is None or start is None:
        return 0
    unseen = (acked - start + _HALF_SEQ) % _SEQ_MOD - _HALF_SEQ
    if most is not None:
        unseen = min(unseen, most)
    return max(unseen, 0)
