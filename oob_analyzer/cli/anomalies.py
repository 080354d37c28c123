"""`oob-analyzer anomalies list`: what reassembly found odd, a signal in itself."""

from __future__ import annotations

from datetime import datetime
from ipaddress import IPv4Network, IPv6Network

import click

import storage
from oob_analyzer.cli.options import (
    db_option,
    echo_csv,
    echo_json,
    echo_jsonl,
    format_option,
    limit_option,
    open_queries,
)
from oob_analyzer.cli.params import NETWORK, POINT_IN_TIME
from oob_analyzer.cli.tables import render_table

__all__ = ["anomalies"]


@click.group()
def anomalies() -> None:
    """Recorded anomalies: e.g. content_length_and_chunked, garbage_before_request."""


@anomalies.command("list")
@db_option
@click.option(
    "--since", type=POINT_IN_TIME, help="Only from this time on: ISO 8601 (UTC unless said) or an age (1h, 7d)."
)
@click.option("--until", type=POINT_IN_TIME, help="Only before this time: ISO 8601 or an age.")
@click.option("--name", "names", multiple=True, metavar="NAME", help="Anomaly name; repeatable.")
@click.option("--src", type=NETWORK, help="Client address or CIDR block.")
@format_option("table", "json", "jsonl", "csv")
@limit_option
def list_anomalies(
    *,
    db_url: str,
    since: datetime | None,
    until: datetime | None,
    names: tuple[str, ...],
    src: IPv4Network | IPv6Network | None,
    output_format: str,
    limit: int,
) -> None:
    """List recorded anomalies, newest first."""
    where = storage.AnomalyFilter(since=since, until=until, names=names, src=src)
    with open_queries(db_url) as queries:
        records = queries.list_anomalies(where, limit=limit)
    if output_format == "json":
        echo_json(records)
    elif output_format == "jsonl":
        echo_jsonl(records)
    elif output_format == "csv":
        echo_csv(records, storage.AnomalyRecord)
    else:
        columns = [("ID", 5), ("TIME (UTC)", 16), ("NAME", 26), ("CLIENT", 15), ("TARGET", 13)]
        rows = [(r.id, r.time.strftime("%Y-%m-%d %H:%M"), r.name, r.src_ip, r.target or "-") for r in records]
        click.echo(render_table(columns, rows))
