"""What reassembly emits: HTTP messages and anomalies, each stamped with its flow.

Second stage of the flow (capture -> reassembly -> detection -> storage). Every event is a
frozen dataclass under `ReassemblyEvent`; consumers dispatch on the type.
"""

from __future__ import annotations

from dataclasses import dataclass

from capture.packets import TunnelContext

__all__ = ["Anomaly", "FlowKey", "HttpMessage", "HttpRequest", "HttpResponse", "ProtocolSwitch", "ReassemblyEvent"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowKey:
    """A TCP connection seen from its client, with the tunnel it arrived through."""

    client: str
    client_port: int
    server: str
    server_port: int
    tunnel: TunnelContext = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ReassemblyEvent:
    ts: float
    flow: FlowKey


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpMessage(ReassemblyEvent):
    """What requests and responses share: headers, body, completeness and anomalies.

    `headers` keep their order and case (decoded as Latin-1, so no byte is lost); `body`
    holds the first bytes of the body (de-chunked) up to the inspection depth, `body_length`
    its full length, gaps included. `complete` is False when the connection ended, or bytes
    were lost, before the message did. `decoded_body` is the body after Content-Encoding
    (gzip, deflate, br) was undone, or None when there was none to undo or it could not be.
    `index` counts the messages of this kind on the connection, from 0.
    """

    version: str
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""
    body_length: int = 0
    complete: bool = True
    anomalies: tuple[str, ...] = ()
    decoded_body: bytes | None = None
    index: int = 0

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), or None."""
        wanted = name.lower()
        # Lengths first: most fields are not the one wanted, and lower() builds a string.
        # (Only U+0130 changes length when lower-cased, and not into ASCII: exact for ASCII names.)
        size = len(wanted) if wanted.isascii() else -1
        for key, value in self.headers:
            if (size < 0 or len(key) == size) and key.lower() == wanted:
                return value
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpRequest(HttpMessage):
    """One HTTP/1.x request as the client sent it; `target` exactly as on the wire."""

    method: str
    target: str

    @property
    def host(self) -> str:
        """The first Host header's value, or "" (`header("host") or ""`).

        Looked up for every request when the config names hosts or applications: the loop
        of `header` without its call and its work on the wanted name.
        """
        for key, value in self.headers:
            if len(key) == 4 and key.lower() == "host":
                return value
        return ""

    @property
    def switch_protocol(self) -> str:
        """What a CONNECT or Upgrade request asks to switch to: "connect", "websocket", "h2c", "h2"."""
        if self.method == "CONNECT":
            return "connect"
        if self.version == "HTTP/2.0":
            return "h2"
        upgrade = self.header("upgrade") or ""
        return upgrade.split(",")[0].strip().lower() or "unknown"


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpResponse(HttpMessage):
    """One HTTP/1.x response, with the request it answers (None when that was not seen).

    Emitted after its request, never holding it back: detection has the request already.
    """

    status: int
    reason: str
    request: HttpRequest | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ProtocolSwitch(ReassemblyEvent):
    """HTTP/1 ended on this connection: CONNECT or Upgrade (websocket, h2c) took over.

    `protocol` is "connect", the Upgrade token (e.g. "websocket", "h2c") or "h2" for the
    HTTP/2 preface; `confirmed` is True when the server's response was seen to agree.
    The bytes that follow are counted, not parsed.
    """

    protocol: str
    target: str = ""
    confirmed: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Anomaly(ReassemblyEvent):
    """Something odd on a connection that belongs to no single request (e.g. `garbage_before_request`)."""

    name: str
    detail: str = ""
