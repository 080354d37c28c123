"""Types of reassembly's compiled hot path (reassembly/_fasttrack.c)."""

from collections import Counter
from collections.abc import Callable

from capture._fastdecode import FrameDecoder, PcapRecordReader
from capture.packets import RawPacket, TcpSegment
from reassembly.events import Anomaly, FlowKey, HttpRequest, HttpResponse, ProtocolSwitch, ReassemblyEvent
from reassembly.limits import ReassemblyLimits

class ConnectionTracker:
    def __init__(
        self,
        *,
        limits: ReassemblyLimits,
        flow_type: type[FlowKey],
        request_type: type[HttpRequest],
        response_type: type[HttpResponse],
        anomaly_type: type[Anomaly],
        switch_type: type[ProtocolSwitch],
        segment_type: type[TcpSegment],
        decode_body: Callable[[str | None, bytes, ReassemblyLimits, list[str]], bytes | None],
        counter_type: type[Counter[str]],
    ) -> None: ...
    def receive_segment(self, segment: TcpSegment, /) -> list[ReassemblyEvent]: ...
    def close_all(self) -> list[ReassemblyEvent]: ...
    def feed_records(
        self,
        buffer: bytes,
        start: int,
        reader: PcapRecordReader,
        decoder: FrameDecoder,
        decode: Callable[[RawPacket], TcpSegment | None],
        /,
    ) -> tuple[list[ReassemblyEvent], int, int, int, int, list[tuple[int, float]], float | None]: ...
    def feed_frames(
        self,
        frames: bytes | bytearray,
        decoder: FrameDecoder,
        decode: Callable[[RawPacket], TcpSegment | None],
        packet_at: Callable[[int, int], RawPacket],
        /,
    ) -> tuple[list[ReassemblyEvent], int, float | None, list[tuple[int, float]], float | None]: ...
    def packet_feed(
        self,
        fast_decode: Callable[[RawPacket], TcpSegment | None] | None,
        decode: Callable[[RawPacket], TcpSegment | None],
        /,
    ) -> Callable[[RawPacket], list[ReassemblyEvent]]: ...
    def stats(self) -> Counter[str]: ...
    def capture_loss(self) -> tuple[int, int, int, int]: ...
    @property
    def tracked_connections(self) -> int: ...
    @property
    def pending_bytes(self) -> int: ...
