"""`oob-analyzer hits ...` and `oob-analyzer attacks ...`: what was recorded."""

from __future__ import annotations

import click

from oob_analyzer.cli.options import db_option, echo_json, format_option, limit_option, open_store
from oob_analyzer.cli.tables import render_table

__all__ = ["attacks", "hits"]

_MINUTE = "%Y-%m-%d %H:%M"


@click.group()
def hits() -> None:
    """Recorded hits: one per malicious request and attack type."""


@hits.command("list")
@db_option
@format_option
@limit_option
def list_hits(db_url: str, output_format: str, limit: int) -> None:
    """List recorded hits, newest first."""
    with open_store(db_url) as store:
        records = store.list_hits(limit=limit)
    if output_format == "json":
        echo_json(records)
        return
    columns = [("ID", 5), ("TIME (UTC)", 16), ("TYPE", 5), ("SOURCE", 15), ("POINT", 17), ("TARGET", 16)]
    rows = [(r.id, r.time.strftime(_MINUTE), r.type, r.src_ip, r.point, r.target) for r in records]
    click.echo(render_table(columns, rows))


@click.group()
def attacks() -> None:
    """Recorded attacks: hits of one type at one point of one target, grouped."""


@attacks.command("list")
@db_option
@format_option
@limit_option
def list_attacks(db_url: str, output_format: str, limit: int) -> None:
    """List attacks, most recently seen first."""
    with open_store(db_url) as store:
        records = store.list_attacks(limit=limit)
    if output_format == "json":
        echo_json(records)
        return
    columns = [
        ("ID", 4),
        ("LAST SEEN (UTC)", 16),
        ("TYPE", 5),
        ("HITS", 4),
        ("SOURCE", 15),
        ("POINT", 17),
        ("TARGET", 12),
    ]
    rows = [(r.id, r.last_seen.strftime(_MINUTE), r.type, r.hits, r.src_ip, r.point, r.target) for r in records]
    click.echo(render_table(columns, rows))
