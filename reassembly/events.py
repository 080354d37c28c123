"""What reassembly emits: HTTP messages and anomalies, each stamped with its flow.

Second stage of the flow (capture -> reassembly -> detection -> storage). Every event is a
frozen dataclass under `ReassemblyEvent`; consumers dispatch on the type.
"""

from __future__ import annotations

from dataclasses import dataclass

from capture.packets import TunnelContext

__all__ = ["Anomaly", "FlowKey", "HttpRequest", "ReassemblyEvent"]


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
class HttpRequest(ReassemblyEvent):
    """One HTTP/1.x request as the client sent it.

    `target` is the request-target exactly as on the wire; `headers` keep their order and
    case (decoded as Latin-1, so no byte is lost); `body` holds the first bytes of the body
    up to the inspection depth, `body_length` its full length. `complete` is False when the
    connection ended before the message did.
    """

    method: str
    target: str
    version: str
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""
    body_length: int = 0
    complete: bool = True
    anomalies: tuple[str, ...] = ()

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), or None."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    @property
    def host(self) -> str:
        return self.header("host") or ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Anomaly(ReassemblyEvent):
    """Something odd on a connection that belongs to no single request (e.g. `garbage_before_request`)."""

    name: str
    detail: str = ""
