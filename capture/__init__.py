"""Capture: every way mirrored packets reach the analyzer, decoded down to TCP segments.

The only package that touches files, sockets or interfaces. Everything after it works on
the `TcpSegment`s it yields.
"""

from capture.decode import PacketDecoder
from capture.errors import CaptureError, CaptureFormatError, CaptureTruncatedError
from capture.files import read_capture, read_captures
from capture.packets import LinkType, RawPacket, TcpSegment, TunnelContext

__all__ = [
    "CaptureError",
    "CaptureFormatError",
    "CaptureTruncatedError",
    "LinkType",
    "PacketDecoder",
    "RawPacket",
    "TcpSegment",
    "TunnelContext",
    "read_capture",
    "read_captures",
]
