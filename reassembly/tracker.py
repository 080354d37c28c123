"""The connection tracker reassembly exposes: the compiled one when it is built, else the reference.

Sans-I/O, like everything in `reassembly`: TCP segments in, HTTP events out. The work is
done by `reassembly._fasttrack` (C, built by `pip install`), an exact port of the pure-Python
`reassembly.connections.PythonConnectionTracker`, which stays the reference and the fallback
when the extension is missing. tests/reassembly/test_compiled_tracker.py holds the two to the
same events (same order, same field values), stats and capture-loss counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from capture.packets import RawPacket, TcpSegment
from reassembly.body_decoding import decode_body
from reassembly.capture_loss import CaptureLoss
from reassembly.connections import PythonConnectionTracker
from reassembly.events import Anomaly, FlowKey, HttpRequest, HttpResponse, ProtocolSwitch, ReassemblyEvent
from reassembly.limits import ReassemblyLimits

if TYPE_CHECKING:
    from capture._fastdecode import FrameDecoder, PcapRecordReader

try:
    from reassembly import _fasttrack
except ImportError:  # a checkout run without `pip install`: the pure-Python tracker alone
    _fasttrack = None  # type: ignore[assignment]

__all__ = ["ConnectionTracker"]


class ConnectionTracker:
    """Tracks every TCP connection and parses the HTTP messages both sides send.

    `receive_segment(segment)` returns the events the segment completes, `close_all()` those
    still in progress at the end of input. `compiled=False` keeps to the pure-Python
    reference; `compiled` tells afterwards which one runs.
    """

    # Bound straight to the implementation's methods: no Python call in between per segment.
    receive_segment: Callable[[TcpSegment], list[ReassemblyEvent]]
    close_all: Callable[[], list[ReassemblyEvent]]

    def __init__(self, limits: ReassemblyLimits | None = None, *, compiled: bool = True) -> None:
        self.limits = limits or ReassemblyLimits()
        self._compiled = (
            _fasttrack.ConnectionTracker(
                limits=self.limits,
                flow_type=FlowKey,
                request_type=HttpRequest,
                response_type=HttpResponse,
                anomaly_type=Anomaly,
                switch_type=ProtocolSwitch,
                segment_type=TcpSegment,
                decode_body=decode_body,
                counter_type=Counter,
            )
            if compiled and _fasttrack is not None
            else None
        )
        self._reference = PythonConnectionTracker(self.limits) if self._compiled is None else None
        implementation = self._compiled or self._reference
        assert implementation is not None
        self.receive_segment = implementation.receive_segment
        self.close_all = implementation.close_all

    def packet_feed(
        self,
        decode: Callable[[RawPacket], TcpSegment | None],
        fast_decode: Callable[[RawPacket], TcpSegment | None] | None = None,
    ) -> Callable[[RawPacket], list[ReassemblyEvent]]:
        """A function from a packet to the events its segment completes: `fast_decode` first
        (when given; None hands the packet on), then `decode`, then `receive_segment`.

        Compiled, it is one C call per packet: no Python frame between decoder and tracker.
        """
        if self._compiled is not None:
            return self._compiled.packet_feed(fast_decode, decode)
        receive = self.receive_segment

        def feed(packet: RawPacket) -> list[ReassemblyEvent]:
            segment = fast_decode(packet) if fast_decode is not None else None
            if segment is None:
                segment = decode(packet)
            return [] if segment is None else receive(segment)

        return feed

    def feed_records(
        self,
        buffer: bytes,
        start: int,
        reader: PcapRecordReader,
        frame_decoder: FrameDecoder,
        decode: Callable[[RawPacket], TcpSegment | None],
    ) -> tuple[list[ReassemblyEvent], int, int, int, int, list[tuple[int, float]], float | None]:
        """Compiled only: the whole pcap records of `buffer` from `start` decoded and tracked in
        C, building no packet (frames the compiled `frame_decoder` hands back go to `decode`).

        Returns (their events, the next record's offset, the bytes it needs from there or -1,
        records, bytes captured, marks, trailing): the events `receive_segment` gives for the
        same packets' segments, in the same order. Capture time as packet by packet: `marks`
        holds, for each packet that gave events, (the index of its first event, the latest
        timestamp of the records since the previous such packet, its own included); `trailing`
        the latest timestamp of the records after the last one (None when there are none).
        """
        if self._compiled is None:
            raise RuntimeError("feed_records needs the compiled tracker")
        return self._compiled.feed_records(buffer, start, reader, frame_decoder, decode)

    def feed_frames(
        self,
        frames: bytes | bytearray,
        frame_decoder: FrameDecoder,
        decode: Callable[[RawPacket], TcpSegment | None],
        packet_at: Callable[[int, int], RawPacket],
    ) -> tuple[list[ReassemblyEvent], int, float | None, list[tuple[int, float]], float | None]:
        """Compiled only: every frame the worker dispatcher packed into `frames` decoded and
        tracked in C, as `feed_records` does with pcap records (a frame the compiled
        `frame_decoder` hands back is built by `packet_at(start, end)`, the bounds of its packed
        frame, and goes to `decode`).

        Returns (their events, frames, the last frame's timestamp or None, marks, trailing),
        marks and trailing as `feed_records` gives them.
        """
        if self._compiled is None:
            raise RuntimeError("feed_frames needs the compiled tracker")
        return self._compiled.feed_frames(frames, frame_decoder, decode, packet_at)

    @property
    def compiled(self) -> bool:
        return self._compiled is not None

    @property
    def stats(self) -> Counter[str]:
        """What the tracker counted, by reason (a snapshot when compiled)."""
        if self._compiled is not None:
            return self._compiled.stats()
        assert self._reference is not None
        return self._reference.stats

    @property
    def tracked_connections(self) -> int:
        if self._compiled is not None:
            return self._compiled.tracked_connections
        assert self._reference is not None
        return self._reference.tracked_connections

    @property
    def pending_bytes(self) -> int:
        if self._compiled is not None:
            return self._compiled.pending_bytes
        assert self._reference is not None
        return self._reference.pending_bytes

    @property
    def capture_loss(self) -> CaptureLoss:
        """Acknowledgements seen so far, and the acknowledged bytes the capture never held."""
        if self._compiled is not None:
            ack_events, ack_bytes, gap_events, gap_bytes = self._compiled.capture_loss()
            return CaptureLoss(ack_events=ack_events, ack_bytes=ack_bytes, gap_events=gap_events, gap_bytes=gap_bytes)
        assert self._reference is not None
        return self._reference.capture_loss
