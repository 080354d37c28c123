"""Reassembly: TCP segments in, HTTP messages and anomalies out. Sans-I/O throughout."""

from reassembly.connections import ConnectionTracker
from reassembly.events import Anomaly, FlowKey, HttpRequest, ReassemblyEvent
from reassembly.http_request import NEED_DATA, HttpRequestParser, NeedData
from reassembly.tcp_stream import TcpStream

__all__ = [
    "NEED_DATA",
    "Anomaly",
    "ConnectionTracker",
    "FlowKey",
    "HttpRequest",
    "HttpRequestParser",
    "NeedData",
    "ReassemblyEvent",
    "TcpStream",
]
