"""Reassembly: TCP segments in, HTTP messages and anomalies out. Sans-I/O throughout."""

from reassembly.body_decoding import decode_body
from reassembly.capture_loss import CaptureLoss
from reassembly.connections import PythonConnectionTracker
from reassembly.events import (
    Anomaly,
    FlowKey,
    HttpMessage,
    HttpRequest,
    HttpResponse,
    ProtocolSwitch,
    ReassemblyEvent,
)
from reassembly.http_message import NEED_DATA, NeedData
from reassembly.http_request import HttpRequestParser
from reassembly.http_response import HttpResponseParser
from reassembly.limits import ReassemblyLimits
from reassembly.tcp_stream import TcpStream
from reassembly.tracker import ConnectionTracker

__all__ = [
    "NEED_DATA",
    "Anomaly",
    "CaptureLoss",
    "ConnectionTracker",
    "FlowKey",
    "HttpMessage",
    "HttpRequest",
    "HttpRequestParser",
    "HttpResponse",
    "HttpResponseParser",
    "NeedData",
    "ProtocolSwitch",
    "PythonConnectionTracker",
    "ReassemblyEvent",
    "ReassemblyLimits",
    "TcpStream",
    "decode_body",
]
