"""Who really sent a mirrored request, and to which host: sans-I/O, values in, values out.

Part of the capture stage for the HTTP mirror (see `capture.http_mirror`): a web server that
mirrors a request to us connects from its own address and adds headers saying where the
request came from. Those headers are the mirror's "tunnel" and are peeled off here, the way
the packet decoder peels off VXLAN: the client comes from X-Forwarded-For / X-Real-IP, but
only when the connecting peer is a proxy we trust (anyone else could write them); the host
loses the `-shadow` suffix Envoy and Istio add to mirrored requests; X-Server-Addr and
X-Server-Port name the server the client really connected to.

Anything odd is recorded as a named anomaly on the request, never silently fixed.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from capture.packets import TunnelContext
from reassembly.events import FlowKey, HttpRequest

__all__ = [
    "MIRROR_TUNNEL_KIND",
    "IpNetwork",
    "MirrorOrigin",
    "OriginResolver",
    "parse_ip",
    "strip_shadow_suffix",
]

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MIRROR_TUNNEL_KIND = "http-mirror"

# Envoy's shadow policy appends "-shadow" to the host, before the port when there is one
# (envoy source/common/router/shadow_writer / config: "the Host/Authority header is
# suffixed with -shadow"); Istio's mirror is Envoy's.
_SHADOW_HOST = re.compile(r"(?P<name>.+?)-shadow(?P<port>:\d*)?", re.IGNORECASE)


@dataclass(frozen=True, slots=True, kw_only=True)
class MirrorOrigin:
    """The original request's endpoints as the mirroring proxy reported them."""

    client: str
    client_port: int
    server: str
    server_port: int
    host: str
    request_id: str
    anomalies: tuple[str, ...] = ()


def parse_ip(text: str) -> IpAddress | None:
    """An address from a header or a socket, or None; IPv4-mapped IPv6 becomes IPv4.

    Accepts the forms proxies write: `203.0.113.7`, `203.0.113.7:4711`, `[2001:db8::7]:4711`
    and `2001:db8::7`. Parsed with inet_pton (C): ipaddress's own text parser took most of
    the time of resolving a request (benchmarks/mirror_throughput.py).
    """
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else text[1:]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        return ipaddress.IPv4Address(socket.inet_pton(socket.AF_INET, text))
    except (OSError, ValueError):  # ValueError: an embedded NUL
        pass
    try:
        address = ipaddress.IPv6Address(socket.inet_pton(socket.AF_INET6, text.split("%", 1)[0]))
    except (OSError, ValueError):
        return None
    return address.ipv4_mapped or address


def strip_shadow_suffix(host: str) -> tuple[str, bool]:
    """`api.example.com-shadow:8443` -> (`api.example.com:8443`, True); other hosts unchanged."""
    match = _SHADOW_HOST.fullmatch(host)
    if match is None:
        return host, False
    return match["name"] + (match["port"] or ""), True


class OriginResolver:
    """Maps a request as received from the mirroring proxy to the request the client sent.

    `trusted`: the proxies whose forwarding headers are believed (the connecting peer and,
    walking X-Forwarded-For from the right, every hop inside these networks is skipped).
    """

    def __init__(self, trusted: Iterable[IpNetwork] = ()) -> None:
        self.trusted: tuple[IpNetwork, ...] = tuple(trusted)
        # (version, network as int, mask as int): `address in network` costs microseconds each.
        self._trusted_ints = tuple(
            (network.version, int(network.network_address), int(network.netmask)) for network in self.trusted
        )

    def is_trusted(self, address: IpAddress) -> bool:
        version, value = address.version, int(address)
        return any(version == v and value & mask == net for v, net, mask in self._trusted_ints)

    def origin(self, request: HttpRequest) -> MirrorOrigin:
        """Where `request` (whose flow is peer -> our listener) really came from and went to."""
        flow = request.flow
        headers = _mirror_headers(request.headers)
        anomalies: list[str] = []
        host, shadowed = strip_shadow_suffix(_first(headers, "host") or "")
        if shadowed:
            anomalies.append("mirror_shadow_host")
        names_client = "x-forwarded-for" in headers or "x-real-ip" in headers
        request_id = _first(headers, "x-request-id") or ""
        peer = parse_ip(flow.client)
        if peer is None or not self.is_trusted(peer):
            if names_client:
                anomalies.append("mirror_forwarding_from_untrusted_peer")
            return MirrorOrigin(
                client=str(peer) if peer is not None else flow.client,
                client_port=flow.client_port,
                server=flow.server,
                server_port=flow.server_port,
                host=host,
                request_id=request_id,
                anomalies=tuple(anomalies),
            )
        forwarded = self._forwarded_client(peer, headers, anomalies)
        server, server_port = _original_server(headers, flow, anomalies)
        return MirrorOrigin(
            client=str(forwarded),
            # Proxies tell the client's address, not its port: 0 says "not known".
            client_port=0 if names_client else flow.client_port,
            server=server,
            server_port=server_port,
            host=host,
            request_id=request_id,
            anomalies=tuple(anomalies),
        )

    def resolve(self, request: HttpRequest) -> HttpRequest:
        """`request` as the client sent it: its flow, Host and anomalies rewritten."""
        origin = self.origin(request)
        tunnel: TunnelContext = (
            *request.flow.tunnel,
            (MIRROR_TUNNEL_KIND, f"{request.flow.client}>{request.flow.server}", 0),
        )
        flow = FlowKey(
            client=origin.client,
            client_port=origin.client_port,
            server=origin.server,
            server_port=origin.server_port,
            tunnel=tunnel,
        )
        headers = request.headers
        if "mirror_shadow_host" in origin.anomalies:
            headers = _replace_header(headers, "host", origin.host)
        return replace(request, flow=flow, headers=headers, anomalies=(*request.anomalies, *origin.anomalies))

    def _forwarded_client(self, peer: IpAddress, headers: _MirrorHeaders, anomalies: list[str]) -> IpAddress:
        forwarded = headers.get("x-forwarded-for")
        if forwarded:
            return self._walk_forwarded_for(peer, forwarded, anomalies)
        real_ip = _first(headers, "x-real-ip")
        if real_ip is None:
            return peer
        address = parse_ip(real_ip)
        if address is None:
            anomalies.append("mirror_real_ip_invalid")
            return peer
        return address

    def _walk_forwarded_for(self, peer: IpAddress, values: Sequence[str], anomalies: list[str]) -> IpAddress:
        """The rightmost hop that is not a trusted proxy (nginx realip's `real_ip_recursive on`).

        Several X-Forwarded-For lines count as one list, in order (RFC 9110 section 5.3). An
        unreadable hop ends the walk: what lies left of it cannot be vouched for, so the last
        hop read is the client.
        """
        hops = [hop for value in values for hop in value.split(",")]
        client = peer
        for hop in reversed(hops):
            if not hop.strip():
                continue
            address = parse_ip(hop)
            if address is None:
                anomalies.append("mirror_forwarded_for_invalid")
                return client
            client = address
            if not self.is_trusted(address):
                return client
        return client  # every hop is a trusted proxy: the leftmost is the best we know


# What the proxies say, by lower-case name, every value in order: one pass over the headers.
_MirrorHeaders = dict[str, list[str]]
_MIRROR_HEADER_NAMES = frozenset(
    {"host", "x-forwarded-for", "x-real-ip", "x-server-addr", "x-server-port", "x-request-id"}
)


def _mirror_headers(headers: Sequence[tuple[str, str]]) -> _MirrorHeaders:
    found: _MirrorHeaders = {}
    for name, value in headers:
        key = name.lower()
        if key in _MIRROR_HEADER_NAMES:
            found.setdefault(key, []).append(value)
    return found


def _first(headers: _MirrorHeaders, name: str) -> str | None:
    values = headers.get(name)
    return values[0] if values else None


def _original_server(headers: _MirrorHeaders, flow: FlowKey, anomalies: list[str]) -> tuple[str, int]:
    server, server_port = flow.server, flow.server_port
    server_addr = _first(headers, "x-server-addr")
    if server_addr is not None:
        address = parse_ip(server_addr)
        if address is None:
            anomalies.append("mirror_server_addr_invalid")
        else:
            server = str(address)
    port_text = _first(headers, "x-server-port")
    if port_text is not None:
        port_text = port_text.strip()
        if port_text.isascii() and port_text.isdigit() and 0 < int(port_text) < 65536:
            server_port = int(port_text)
        else:
            anomalies.append("mirror_server_port_invalid")
    return server, server_port


def _replace_header(headers: tuple[tuple[str, str], ...], name: str, value: str) -> tuple[tuple[str, str], ...]:
    """`headers` with the first `name` header's value replaced; the rest kept as sent."""
    result = list(headers)
    for index, (key, _) in enumerate(result):
        if key.lower() == name:
            result[index] = (key, value)
            break
    return tuple(result)
