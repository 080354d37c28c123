"""The HTTP mirror receiver: the address NGINX, Envoy, Istio or Traefik copy requests to.

First stage of the flow for servers that can mirror requests but not packets. An asyncio
server with a raw `asyncio.Protocol` per connection: bytes go into the sans-I/O
`reassembly.HttpRequestParser`; a request that asks for it (`Expect: 100-continue`) gets
`100 Continue` once its head is in, and every complete request is answered `204 No Content`
at once, before any analysis, so that the mirroring server is never slowed; the request is
then offered to `deliver`, which must not block (a bounded queue's `put_nowait`): when it
refuses, the request is dropped and counted. Connections from outside the allowed networks
are refused and counted.

This module only receives. Who really sent the request is `capture.mirror_origin`'s job;
detection and storage run behind the queue, in `oob_analyzer.mirror_pipeline`.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from capture.mirror_origin import IpNetwork, parse_ip
from reassembly import NEED_DATA, FlowKey, HttpRequest, HttpRequestParser, ProtocolSwitch

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "HttpMirrorReceiver",
    "MirrorReceiverStats",
    "ReceiverSettings",
    "RequestDelivery",
]

# Offers a received request to the analysis side; False when it has no room (the request is dropped).
RequestDelivery = Callable[[HttpRequest], bool]

DEFAULT_MAX_CONNECTIONS = 1024

_NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"
# RFC 9110 section 10.1.1: a client that sent `Expect: 100-continue` may wait for this
# before sending the body (curl does, for a second; others for longer).
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_NO_CONTENT_CLOSE = b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceiverSettings:
    host: str = "0.0.0.0"
    port: int = 8445
    allow: tuple[IpNetwork, ...] = ()  # empty: every peer may send
    # Beyond it, new connections are refused and counted: memory stays bounded.
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_head_bytes: int = 64 * 1024
    body_inspection_bytes: int = 64 * 1024  # per request; the rest of a body is counted, not kept


@dataclass(slots=True)
class MirrorReceiverStats:
    """What the receiver saw. Written by the event loop only."""

    connections: int = 0
    refused: int = 0  # peer outside --allow
    over_limit: int = 0  # refused because max_connections were open
    requests: int = 0
    incomplete: int = 0  # cut short by the peer closing; still analyzed, not answered
    dropped: int = 0  # the analysis queue was full
    anomalies: Counter[str] = field(default_factory=Counter)


class HttpMirrorReceiver:
    """Listens, answers, and hands each mirrored request to `deliver`."""

    def __init__(self, settings: ReceiverSettings, deliver: RequestDelivery) -> None:
        self.settings = settings
        self.stats = MirrorReceiverStats()
        self._deliver = deliver
        self._server: asyncio.Server | None = None
        self._connections: set[_MirrorConnection] = set()

    async def start(self) -> tuple[str, int]:
        """Start listening; the address actually bound (port 0 picks a free port)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _MirrorConnection(self),
            self.settings.host,
            self.settings.port,
            reuse_address=True,
            backlog=1024,
        )
        bound = self._server.sockets[0].getsockname()
        return str(bound[0]), int(bound[1])

    async def stop(self) -> None:
        """Stop accepting, end every connection, and deliver the requests cut short."""
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.shut()
        if self._server is not None:
            # From Python 3.12 this also waits for the connections: hence after shutting them.
            await self._server.wait_closed()

    def is_allowed(self, peer: str) -> bool:
        if not self.settings.allow:
            return True
        address = parse_ip(peer)
        return address is not None and any(address in network for network in self.settings.allow)

    def offer(self, request: HttpRequest) -> None:
        if not self._deliver(request):
            self.stats.dropped += 1

    def admit(self, connection: _MirrorConnection, peer: str) -> bool:
        """Count and keep a new connection, or count why it is refused."""
        if not self.is_allowed(peer):
            self.stats.refused += 1
            return False
        if len(self._connections) >= self.settings.max_connections:
            self.stats.over_limit += 1
            return False
        self.stats.connections += 1
        self._connections.add(connection)
        return True

    def forget(self, connection: _MirrorConnection) -> None:
        self._connections.discard(connection)


class _MirrorConnection(asyncio.Protocol):
    """One connection from the mirroring server: parse, answer 204, offer."""

    def __init__(self, receiver: HttpMirrorReceiver) -> None:
        self._receiver = receiver
        self._transport: asyncio.Transport | None = None
        self._parser: HttpRequestParser | None = None
        self._completed = 0  # requests read whole on this connection
        self._looked_at = -1  # the request (by count) whose head was looked at for `Expect`

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        receiver = self._receiver
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        if not receiver.admit(self, peer[0]):
            transport.abort()
            return
        # asyncio sets TCP_NODELAY on TCP transports: each 204 leaves at once, no Nagle delay.
        self._transport = transport
        flow = FlowKey(client=_plain(peer[0]), client_port=peer[1], server=_plain(local[0]), server_port=local[1])
        settings = receiver.settings
        self._parser = HttpRequestParser(
            flow, max_head_bytes=settings.max_head_bytes, body_inspection_bytes=settings.body_inspection_bytes
        )

    def data_received(self, data: bytes) -> None:
        parser, transport = self._parser, self._transport
        if parser is None or transport is None:
            return
        parser.receive_data(data, time.time())
        stats = self._receiver.stats
        while (event := parser.next_event()) is not NEED_DATA:
            if isinstance(event, HttpRequest):
                stats.requests += 1
                self._completed += 1
                closing = _wants_close(event)
                transport.write(_NO_CONTENT_CLOSE if closing else _NO_CONTENT)
                self._receiver.offer(event)
                if closing:
                    self.shut()
                    return
            elif isinstance(event, ProtocolSwitch):
                # Bytes that start no request after a mirrored CONNECT/Upgrade: the parser has
                # stopped reading HTTP/1 here, so nothing more on this connection can be analyzed.
                stats.anomalies[f"protocol_switch_{event.protocol}"] += 1
                self.shut()
                return
            else:
                stats.anomalies[event.name] += 1
        if self._looked_at != self._completed:  # the request in progress, if any, not yet looked at
            self._continue_if_expected(parser, transport)

    def _continue_if_expected(self, parser: HttpRequestParser, transport: asyncio.Transport) -> None:
        """Answer `100 Continue` to a request whose head is in and whose body is awaited.

        Looked at once per request, when its head is complete but its body is not: a body
        that came with the head needs no invitation, and the request is then answered 204.
        (Looking hands the head out, so the parser copies it once at the end: a cost paid by
        requests whose body spans several reads only.)
        """
        head = parser.in_progress
        if not isinstance(head, HttpRequest):
            return
        self._looked_at = self._completed
        # RFC 9110 section 10.1.1: ignore the expectation in an HTTP/1.0 request.
        if head.version == "HTTP/1.1" and (head.header("expect") or "").strip().lower() == "100-continue":
            transport.write(_CONTINUE)

    def pause_writing(self) -> None:
        # A peer that sends but does not read its answers: stop reading until it does.
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    def eof_received(self) -> bool:
        self.shut()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.shut()

    def shut(self) -> None:
        """End the connection; a request cut short is still delivered for analysis."""
        parser, self._parser = self._parser, None
        self._receiver.forget(self)
        if parser is not None:
            partial = parser.close()
            if partial is not None:
                self._receiver.stats.incomplete += 1
                self._receiver.offer(partial)
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()


def _wants_close(request: HttpRequest) -> bool:
    """RFC 9112 section 9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only with "keep-alive"."""
    connection = (request.header("connection") or "").lower()
    if request.version == "HTTP/1.1":
        return "close" in connection
    return "keep-alive" not in connection


def _plain(address: str) -> str:
    """A socket address as text, IPv4-mapped IPv6 (from a dual-stack listener) as IPv4."""
    parsed = parse_ip(address)
    return str(parsed) if parsed is not None else address
