"""`oob-analyzer export`: every matching hit, streamed as JSON lines or CSV."""

from __future__ import annotations

from typing import Any

import click

import storage
from oob_analyzer.cli.options import (
    db_option,
    echo_csv,
    echo_jsonl,
    filter_options,
    format_option,
    hit_filter,
    open_queries,
)

__all__ = ["export"]


@click.command()
@db_option
@filter_options
@format_option("jsonl", "csv")
@click.option(
    "--limit", type=click.IntRange(min=1), default=None, help="At most this many (default: all), newest first."
)
def export(db_url: str, output_format: str, limit: int | None, **filters: Any) -> None:
    """Export the hits that match the filters, newest first, with every field.

    Streams: an export of millions of hits does not need their size in memory. CSV cells
    that a spreadsheet would run as a formula are prefixed with `'`.
    """
    with open_queries(db_url) as queries:
        records = queries.iter_hits(hit_filter(filters), limit=limit)
        if output_format == "jsonl":
            echo_jsonl(records)
        else:
            echo_csv(records, storage.HitRecord)
