"""How a packet crosses to a worker process, and which worker owns its flow.

Most frames cross as they were captured: the compiled decoder in the dispatcher finds their
flow's worker (`capture._fastdecode.route_packet`, by the same hash as `worker_for`) and packs
the frame into that worker's buffer, building no segment; the worker decodes and tracks the
frames itself, in C. A frame the compiled decoder does not take (an IP fragment, which must be
put together before its flow is known; GRE; anything odd) is decoded in the dispatcher by the
Python decoder, as the in-process path does, and its segment crosses as a plain tuple, in
order between the runs of packed frames: a tuple pickles several times faster than a slotted
dataclass.
"""

from __future__ import annotations

from capture.packets import TcpSegment, TunnelContext

__all__ = ["FramePart", "SegmentTuple", "segment_from_tuple", "segment_to_tuple", "worker_for"]

# ts, src, dst, sport, dport, seq, ack, flags, payload, truncated, tunnel
SegmentTuple = tuple[float, str, str, int, int, int, int, int, bytes, bool, TunnelContext]
# What a worker's batch holds, in order: runs of frames packed by `route_packet`, and segments.
FramePart = bytearray | SegmentTuple


def worker_for(segment: TcpSegment, workers: int) -> int:
    """The worker that owns the segment's flow: the same for both directions and one tunnel context.

    Symmetric because the two endpoints' hashes are added, and addition does not care about
    order; the tunnel context is part of it, as it is of the tracker's connection key, so the
    same inner 5-tuple from two mirror sessions may go to different workers but each session's
    segments stay together. `hash` of str is salted per process: only the dispatcher hashes.
    `capture._fastdecode.route_packet` computes the same in C: a fragmented flow's segments
    and its packed frames reach the same worker.
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
