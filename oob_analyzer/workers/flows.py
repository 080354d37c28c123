"""How a segment crosses to a worker process: a plain tuple, and which worker owns its flow.

The dispatcher decodes every frame (IP fragments must be put together before the flow is
known) and sends each worker a list of these tuples: a tuple pickles several times faster
than a slotted dataclass, and the decoder's shared address strings and tunnel tuples are
pickled once per batch (pickle's memo), not once per segment.
"""

from __future__ import annotations

from capture.packets import TcpSegment, TunnelContext

__all__ = ["SegmentTuple", "segment_from_tuple", "segment_to_tuple", "worker_for"]

# ts, src, dst, sport, dport, seq, ack, flags, payload, truncated, tunnel
SegmentTuple = tuple[float, str, str, int, int, int, int, int, bytes, bool, TunnelContext]


def worker_for(segment: TcpSegment, workers: int) -> int:
    """The worker that owns the segment's flow: the same for both directions and one tunnel context.

    Symmetric because the two endpoints' hashes are added, and addition does not care about
    order; the tunnel context is part of it, as it is of the tracker's connection key, so the
    same inner 5-tuple from two mirror sessions may go to different workers but each session's
    segments stay together. `hash` of str is salted per process: only the dispatcher hashes.
    """
    return (hash(segment.src) + hash(segment.dst) + segment.sport + segment.dport + hash(segment.tunnel)) % workers


def segment_to_tuple(segment: TcpSegment) -> SegmentTuple:
    return (
        segment.ts,
        segment.src,
        segment.dst,
        segment.sport,
        segment.dport,
        segment.seq,
        segment.ack,
        segment.flags,
        segment.payload,
        segment.truncated,
        segment.tunnel,
    )


def segment_from_tuple(fields: SegmentTuple) -> TcpSegment:
    ts, src, dst, sport, dport, seq, ack, flags, payload, truncated, tunnel = fields
    return TcpSegment(
        ts=ts,
        src=src,
        dst=dst,
        sport=sport,
        dport=dport,
        seq=seq,
        ack=ack,
        flags=flags,
        payload=payload,
        truncated=truncated,
        tunnel=tunnel,
    )
