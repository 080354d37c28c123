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
from dataclasses import dataclass, replace

from capture.mirror_origin import OriginResolver, parse_ip
from oob_analyzer.config.applications import ApplicationMap, RouteMode
from oob_analyzer.config.schema import AllowedHosts, SensorConfig
from oob_analyzer.detection import AttackHit, DetectionEngine, Detector, default_detectors
from reassembly import HttpRequest

__all__ = ["HOST_NOT_ALLOWED", "NOT_MONITORED", "SensorEngine", "build_engine"]

NOT_MONITORED = "requests_not_monitored"  # their route's mode is `off`
HOST_NOT_ALLOWED = "requests_host_not_allowed"  # their host is not in allowed_hosts


@dataclass(frozen=True, slots=True)
class _Judgement:
    detection: DetectionEngine
    applications: ApplicationMap
    allowed_hosts: AllowedHosts
    resolver: OriginResolver | None  # None: the client is the TCP peer (or resolved upstream)


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
        host = request.host
        if judgement.allowed_hosts and not judgement.allowed_hosts.allows(host):
            self.counters[HOST_NOT_ALLOWED] += 1
            return []
        application = ""
        if judgement.applications:
            resolution = judgement.applications.resolve(host, request.target)
            if resolution.mode is RouteMode.OFF:
                self.counters[NOT_MONITORED] += 1
                return []
            application = resolution.application
        if judgement.resolver is not None:
            request = _with_forwarded_client(request, judgement.resolver)
        return judgement.detection.analyze(request, application=application)

    def _judgement_for(self, config: SensorConfig) -> _Judgement:
        trusted = config.trusted_proxies if self._resolve_clients else ()
        return _Judgement(
            detection=DetectionEngine(self._detectors, policy=config.detection),
            applications=config.applications,
            allowed_hosts=config.allowed_hosts,
            resolver=OriginResolver(trusted) if trusted else None,
        )


def build_engine(config: SensorConfig, *, resolve_clients: bool = True) -> SensorEngine:
    """The engine for `config`: default detectors under its policy, applications, hosts, proxies.

    `resolve_clients=False` where the client was already resolved upstream (`mirror-server`,
    whose receiver applies the same trusted proxies to the mirror's headers).
    """
    return SensorEngine(config, resolve_clients=resolve_clients)


def _with_forwarded_client(request: HttpRequest, resolver: OriginResolver) -> HttpRequest:
    """`request` with the client its trusted proxy names; unchanged when the peer is not trusted."""
    peer = parse_ip(request.flow.client)
    if peer is None or not resolver.is_trusted(peer):
        return request
    origin = resolver.origin(request)
    if origin.client == request.flow.client and origin.client_port == request.flow.client_port:
        return request
    flow = replace(request.flow, client=origin.client, client_port=origin.client_port)
    return replace(request, flow=flow)
