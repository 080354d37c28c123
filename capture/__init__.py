"""Capture: every way mirrored packets reach the analyzer, decoded down to TCP segments.

The only package that touches files, sockets or interfaces. Everything after it works on
the `TcpSegment`s it yields.
"""

from capture.decode import DEFAULT_GENEVE_PORT, DEFAULT_VXLAN_PORT, PacketDecoder
from capture.errors import CaptureError, CaptureFormatError, CaptureTruncatedError
from capture.files import STDIN, capture_size, expand_capture_paths, read_capture, read_captures
from capture.fragments import FragmentReassembler
from capture.live import InterfaceSource, MirrorListenAddress, UdpMirrorSource
from capture.packets import LinkType, RawPacket, TcpSegment, TunnelContext

__all__ = [
    "DEFAULT_GENEVE_PORT",
    "DEFAULT_VXLAN_PORT",
    "STDIN",
    "CaptureError",
    "CaptureFormatError",
    "CaptureTruncatedError",
    "FragmentReassembler",
    "InterfaceSource",
    "LinkType",
    "MirrorListenAddress",
    "PacketDecoder",
    "RawPacket",
    "TcpSegment",
    "TunnelContext",
    "UdpMirrorSource",
    "capture_size",
    "expand_capture_paths",
    "read_capture",
    "read_captures",
]
