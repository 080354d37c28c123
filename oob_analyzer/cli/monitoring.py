"""`--metrics [ADDR:]PORT` for the analyzing commands: serve the run's metrics while it goes.

The command builds a `PipelineMetrics` over its live objects and runs inside
`serving_metrics`, which starts the `MetricsServer` (or nothing, without the option) and
hands back the `Health` that the command marks as its run goes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

import storage
from oob_analyzer.cli.params import ListenAddressType
from oob_analyzer.metrics import Health, MetricsServer, PipelineMetrics

__all__ = ["metrics_option", "serving_metrics"]

F = TypeVar("F", bound=Callable[..., Any])

# Exporters are usually given as ":9100" (every address); a bare port will do too.
_METRICS_ADDRESS = ListenAddressType(port_alone=True, ip_only=False)


def metrics_option(function: F) -> F:
    return click.option(
        "--metrics",
        "metrics_address",
        type=_METRICS_ADDRESS,
        help="Serve Prometheus metrics at http://ADDR:PORT/metrics, with /healthz (200 while analyzing) and "
        "/ready (200 once the source is open and the database reachable, else 503 and why). "
        "Port 0 picks a free port; the address is printed on stderr.",
    )(function)


@contextmanager
def serving_metrics(address: tuple[str, int] | None, metrics: PipelineMetrics) -> Iterator[Health]:
    """Serve `metrics` on `address` for the block (nothing when None); yield the `Health` to mark."""
    health = Health()
    if address is None:
        yield health
        return
    writer = metrics.writer
    if writer is not None:
        health.add_check(lambda: _database_unreachable(writer))
    host, port = address
    try:
        server = MetricsServer(host, port, collect=metrics.collect, health=health)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise click.ClickException(f"cannot serve metrics on {host}:{port}: {reason}") from exc
    server.start()
    bound_host, bound_port = server.address
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    click.echo(f"metrics on http://{shown}:{bound_port}/metrics", err=True)
    try:
        yield health
    finally:
        server.close()


def _database_unreachable(writer: storage.BatchedWriter) -> str | None:
    if not writer.database_down:
        return None
    return f"the database is unreachable: {writer.stats.journalled} items went to the journal {writer.journal.path}"
