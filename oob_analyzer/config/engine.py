"""The engine that judges requests as the config file says, and its reload.

`build_engine(config)` is the one way to get it, so a worker process can rebuild the same
engine from a pickled `SensorConfig`. For each request, in order: a host outside
`allowed_hosts` is not judged; the application and the route's mode are resolved (mode
`off`: not judged); the client is taken from X-Forwarded-For / X-Real-IP when the peer is a
trusted proxy (`capture.mirror_origin.OriginResolver`, the same walk as `mirror-server`);
then detection runs under the policy, and each hit carries the application id.

Reload = `engine.apply(new_config)`: a new judgement is built and swapped in with one
assignment; the counters (requests not judged, by reason) carry over.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from capture.mirror_origin import OriginResolver, parse_ip
from oob_analyzer.config.applications import Application, ApplicationMap, RouteMode
from oob_analyzer.config.schema import AllowedHosts, SensorConfig
from oob_analyzer.detection import AttackHit, DetectionEngine, Detector, default_detectors
from reassembly import HttpRequest

__all__ = ["HOST_NOT_ALLOWED", "NOT_MONITORED", "SensorEngine", "build_engine"]

NOT_MONITORED = "requests_not_monitored"  # their route's mode is `off`
HOST_NOT_ALLOWED = "requests_host_not_allowed"  # their host is not in allowed_hosts
_KEPT = 4096


@dataclass(frozen=True, slots=True)
class _Judgement:
    detection: DetectionEngine
    applications: ApplicationMap
    allowed_hosts: AllowedHosts
    resolver: OriginResolver | None  # None: the client is the TCP peer (or resolved upstream)
    # Whether the Host must be looked up (allowed hosts or applications configured): decided
    # once here, as their truth is a Python `__bool__` call each.
    by_host: bool
    # Whether a peer address is a trusted proxy, by its text: a sensor sees few peers, often.
    trusted_peers: dict[str, bool] = field(default_factory=dict)
    # Per Host header as sent: (allowed, its application). Hosts repeat request after request.
    hosts: dict[str, tuple[bool, Application | None]] = field(default_factory=dict)


class SensorEngine:
    """`analyze(request)` like `DetectionEngine`'s, with the config's applications, hosts and proxies."""

    def __init__(
        self,
        config: SensorConfig,
        *,
        detectors: Sequence[Detector] | None = None,
        resolve_clients: bool = True,
    ) -> None:
        self._detectors = tuple(detectors) if detectors is not None else tuple(default_detectors())
        self._resolve_clients = resolve_clients
        self.counters: Counter[str] = Counter()
        self.config = config
        self._judgement = self._judgement_for(config)

    def apply(self, config: SensorConfig) -> None:
        """Judge by `config` from the next request on (the detectors' caches start afresh)."""
        judgement = self._judgement_for(config)
        self._judgement, self.config = judgement, config

    def analyze(self, request: HttpRequest) -> list[AttackHit]:
        judgement = self._judgement  # one read: a reload between two lines changes nothing here
        application = ""
        if judgement.by_host:  # else no Host to look up
            allowed, app = _host_verdict(request.host, judgement)
            if not allowed:
                self.counters[HOST_NOT_ALLOWED] += 1
                return []
            if app is not None:
                if app.mode_of_target(request.target) is RouteMode.OFF:
                    self.counters[NOT_MONITORED] += 1
                    return []
                application = app.id
        if judgement.resolver is not None and _is_trusted(request.flow.client, judgement):
            request = _with_forwarded_client(request, judgement.resolver)
        return judgement.detection.analyze(request, application=application)

    def _judgement_for(self, config: SensorConfig) -> _Judgement:
        trusted = config.trusted_proxies if self._resolve_clients else ()
        return _Judgement(
            detection=DetectionEngine(self._detectors, policy=config.detection),
            applications=config.applications,
            allowed_hosts=config.allowed_hosts,
            resolver=OriginResolver(trusted) if trusted else None,
            by_host=bool(config.allowed_hosts or config.applications),
        )


def build_engine(config: SensorConfig, *, resolve_clients: bool = True) -> SensorEngine:
    """The engine for `config`: default detectors under its policy, applications, hosts, proxies.

    `resolve_clients=False` where the client was already resolved upstream (`mirror-server`,
    whose receiver applies the same trusted proxies to the mirror's headers).
    """
    return SensorEngine(config, resolve_clients=resolve_clients)


def _host_verdict(host: str, judgement: _Judgement) -> tuple[bool, Application | None]:
    verdict = judgement.hosts.get(host)
    if verdict is None:
        allowed = not judgement.allowed_hosts or judgement.allowed_hosts.allows(host)
        verdict = (allowed, judgement.applications.application_for(host) if allowed else None)
        if len(judgement.hosts) >= _KEPT:
            judgement.hosts.clear()  # bounded memory: a flood of made-up hosts costs a lookup each
        judgement.hosts[host] = verdict
    return verdict


def _is_trusted(peer: str, judgement: _Judgement) -> bool:
    trusted = judgement.trusted_peers.get(peer)
    if trusted is None:
        address = parse_ip(peer)
        assert judgement.resolver is not None
        trusted = address is not None and judgement.resolver.is_trusted(address)
        if len(judgement.trusted_peers) >= _KEPT:
            judgement.trusted_peers.clear()  # bounded memory; the busy peers come back at once
        judgement.trusted_peers[peer] = trusted
    return trusted


def _with_forwarded_client(request: HttpRequest, resolver: OriginResolver) -> HttpRequest:
    """`request` (from a trusted proxy) with the client the proxy names."""
    origin = resolver.origin(request)
    if origin.client == request.flow.client and origin.client_port == request.flow.client_port:
        return request
    flow = replace(request.flow, client=origin.client, client_port=origin.client_port)
    return replace(request, flow=flow)
