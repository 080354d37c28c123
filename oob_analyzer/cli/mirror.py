"""`oob-analyzer mirror-server`: be the address a web server mirrors its requests to."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import click

from capture.http_mirror import DEFAULT_MAX_CONNECTIONS, ReceiverSettings
from capture.mirror_origin import IpNetwork
from oob_analyzer.cli.config_options import config_option, from_config, recording_settings, sensor_config
from oob_analyzer.cli.monitoring import metrics_option, serving_metrics
from oob_analyzer.cli.options import db_option
from oob_analyzer.cli.params import NETWORK, ListenAddressType
from oob_analyzer.cli.recording import recording_run, writer_options
from oob_analyzer.config import ConfigReloader, SensorEngine, build_engine
from oob_analyzer.config.reload import reload_on_sighup
from oob_analyzer.detection import AttackHit
from oob_analyzer.metrics import PipelineMetrics
from oob_analyzer.mirror_pipeline import DEFAULT_QUEUE_BYTES, DEFAULT_QUEUE_SIZE, MirrorService, MirrorSettings
from reassembly import HttpRequest

__all__ = ["LISTEN_ADDRESS", "mirror_server"]

# An IP address and a port, always both: the mirror target is named in a proxy config.
LISTEN_ADDRESS = ListenAddressType(port_alone=False, ip_only=True)


@click.command("mirror-server")
@click.option(
    "--listen",
    type=LISTEN_ADDRESS,
    default="0.0.0.0:8445",
    show_default=True,
    help="Where to receive mirrored requests.",
)
@click.option(
    "--trusted",
    type=NETWORK,
    multiple=True,
    help="Proxy network whose X-Forwarded-For / X-Real-IP / X-Server-* headers are believed. Repeatable. "
    "Default: the config file's trusted_proxies.",
)
@click.option(
    "--allow",
    type=NETWORK,
    multiple=True,
    help="Accept connections only from these networks (default: from anyone). Repeatable.",
)
@click.option(
    "--queue-size",
    type=click.IntRange(min=1),
    default=DEFAULT_QUEUE_SIZE,
    show_default=True,
    help="Requests waiting for analysis; beyond it, requests are dropped and counted.",
)
@click.option(
    "--queue-mib",
    type=click.IntRange(min=1),
    default=DEFAULT_QUEUE_BYTES // (1024 * 1024),
    show_default=True,
    help="Memory the waiting requests may hold (heads and inspected bodies), in MiB; beyond it they are dropped.",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_CONNECTIONS,
    show_default=True,
    help="Connections open at once; more are refused and counted.",
)
@db_option
@writer_options
@config_option
@metrics_option
def mirror_server(
    *,
    listen: tuple[str, int],
    trusted: tuple[IpNetwork, ...],
    allow: tuple[IpNetwork, ...],
    queue_size: int,
    queue_mib: int,
    max_connections: int,
    db_url: str,
    journal: Path | None,
    sample_identical: int | None,
    flush_interval: float,
    config_path: Path | None,
    metrics_address: tuple[str, int] | None,
) -> None:
    """Receive requests mirrored by NGINX, Envoy, Istio or Traefik and record the attacks.

    Every request is answered 204 at once, then analyzed. The client is taken from
    X-Forwarded-For / X-Real-IP only when the connecting proxy is --trusted; the Host loses
    Envoy's and Istio's "-shadow" suffix. Runs until SIGINT or SIGTERM, then records what
    is queued and prints a summary; SIGHUP reloads the config file (its trusted_proxies
    only at a restart). See docs/mirroring.md.
    """
    host, port = listen
    config = sensor_config(config_path)
    metrics_address = from_config("metrics_address", metrics_address, config.metrics)
    # The receiver resolves the client with the trusted proxies; the engine must not again.
    engine = build_engine(config, resolve_clients=False)
    reloader = ConfigReloader(
        config,
        say=lambda message: click.echo(message, err=True),
        listeners=[engine.apply],
        restart_only=("trusted_proxies",),
    )
    settings = MirrorSettings(
        receiver=ReceiverSettings(host=host, port=port, allow=allow, max_connections=max_connections),
        trusted=trusted or config.trusted_proxies,
        queue_size=queue_size,
        queue_bytes=queue_mib * 1024 * 1024,
    )
    source = f"mirror-server {host}:{port}"
    writing = recording_settings(
        config, db_url=db_url, journal=journal, sample_identical=sample_identical, flush_interval=flush_interval
    )
    with recording_run(source=source, **writing) as run, reload_on_sighup(reloader):
        # The analysis thread reloads before its next request, or at once when none is waiting.
        service = MirrorService(settings, engine=_Reloading(engine, reloader), sink=run.writer, when_idle=reloader.poll)
        metrics = PipelineMetrics(writer=run.writer, mirror=service, engine_counters=engine.counters)
        try:
            with serving_metrics(metrics_address, metrics) as health, health.running():

                def ready(host: str, port: int) -> None:
                    health.source_opened()
                    _announce(host, port)

                summary = service.run(on_ready=ready)
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise click.ClickException(f"cannot listen on {host}:{port}: {reason}") from exc
        run.summary.requests, run.summary.hits = summary.analyzed, summary.hits
        run.summary.drops.update(dropped_queue_full=summary.receiver.dropped, refused=summary.receiver.refused)
        run.summary.drops.update(engine.counters)
        click.echo(summary.line())
    if summary.error:
        # What was detected but could not be stored goes to stderr, one JSON object per hit.
        for hit in summary.unrecorded:
            click.echo(json.dumps(dataclasses.asdict(hit), ensure_ascii=False), err=True)
        raise click.ClickException(summary.error)


class _Reloading:
    """The engine, reloaded (when SIGHUP asked) by the analysis thread before its next request."""

    def __init__(self, engine: SensorEngine, reloader: ConfigReloader) -> None:
        self._engine = engine
        self._reloader = reloader

    def analyze(self, request: HttpRequest) -> list[AttackHit]:
        self._reloader.poll()
        return self._engine.analyze(request)


def _announce(host: str, port: int) -> None:
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"listening on {shown}:{port}", err=False)
