"""`oob-analyzer hits ...` and `oob-analyzer attacks ...`: what was recorded."""

from __future__ import annotations

import json
import re
from typing import Any

import click

import storage
from oob_analyzer.cli.options import (
    db_option,
    echo_csv,
    echo_json,
    echo_jsonl,
    filter_options,
    format_option,
    hit_filter,
    limit_option,
    open_queries,
)
from oob_analyzer.cli.tables import printable, render_table

__all__ = ["attacks", "hits"]

_MINUTE = "%Y-%m-%d %H:%M"
_SECOND = "%Y-%m-%d %H:%M:%S"
_LIST_FORMATS = ("table", "json", "jsonl", "csv")
_LINE_BREAK = re.compile(r"\r?\n")  # HTTP line ends only: any other control character is shown escaped


@click.group()
def hits() -> None:
    """Recorded hits: one per malicious request and attack type."""


@hits.command("list")
@db_option
@filter_options
@format_option(*_LIST_FORMATS)
@limit_option
def list_hits(db_url: str, output_format: str, limit: int, **filters: Any) -> None:
    """List recorded hits, newest first."""
    with open_queries(db_url) as queries:
        records = queries.list_hits(hit_filter(filters), limit=limit)
    if output_format == "table":
        click.echo(hits_table(records))
    else:
        _echo_records(records, output_format, storage.HitRecord)


def hits_table(records: list[storage.HitRecord]) -> str:
    """One line per hit in 80 columns; STATUS is the response's (`-`: none was paired)."""
    columns = [
        ("ID", 5),
        ("TIME (UTC)", 16),
        ("TYPE", 5),
        ("SOURCE", 15),
        ("STATUS", 6),
        ("POINT", 15),
        ("TARGET", 12),
    ]
    rows = [
        (r.id, r.time.strftime(_MINUTE), r.type, r.src_ip, _status(r.response_status), r.point, r.target)
        for r in records
    ]
    return render_table(columns, rows)


def _status(response_status: int | None) -> str:
    return "-" if response_status is None else str(response_status)


@click.group()
def attacks() -> None:
    """Recorded attacks: hits of one type at one point of one target, grouped."""


@attacks.command("list")
@db_option
@filter_options
@format_option(*_LIST_FORMATS)
@limit_option
def list_attacks(db_url: str, output_format: str, limit: int, **filters: Any) -> None:
    """List attacks with a hit that matches the filters, most recently seen first.

    SOURCE, and the other fields of a hit, are those of the attack's latest matching hit.
    """
    with open_queries(db_url) as queries:
        records = queries.list_attacks(hit_filter(filters), limit=limit)
    if output_format == "table":
        click.echo(_attacks_table(records))
    else:
        _echo_records(records, output_format, storage.AttackRecord)


def _attacks_table(records: list[storage.AttackRecord]) -> str:
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
    return render_table(columns, rows)


@attacks.command("show")
@click.argument("attack_id", type=click.IntRange(min=1), metavar="ID")
@db_option
@format_option("table", "json")
@click.option(
    "--hits", "hit_limit", type=click.IntRange(min=1), default=20, show_default=True, help="Show this many hits."
)
def show_attack(attack_id: int, db_url: str, output_format: str, hit_limit: int) -> None:
    """Show attack ID and its latest hits, with the requests as they were seen."""
    with open_queries(db_url) as queries:
        detail = queries.attack_detail(attack_id, hit_limit=hit_limit)
    if detail is None:
        raise click.ClickException(f"no attack {attack_id} (see `oob-analyzer attacks list`)")
    if output_format == "json":
        click.echo(_json(detail.as_dict()))
    else:
        click.echo(attack_report(detail))


def attack_report(detail: storage.AttackDetail) -> str:
    attack = detail.attack
    counted = f"{attack.hits}" + (
        f" ({attack.sampled_out} counted, not stored: sampling)" if attack.sampled_out else ""
    )
    lines = [
        f"Attack {attack.id}: {attack.type} in {printable(attack.point)}",
        f"  target      {printable(attack.target)}",
        f"  first seen  {attack.first_seen.strftime(_SECOND)} UTC",
        f"  last seen   {attack.last_seen.strftime(_SECOND)} UTC",
        f"  hits        {counted}",
        "",
    ]
    for hit in detail.hits:
        lines.append(
            f"Hit {hit.id}  {hit.time.strftime(_SECOND)}  {hit.src_ip}:{hit.src_port} -> "
            f"{hit.dst_ip}:{hit.dst_port}  status {_status(hit.response_status)}"
        )
        lines.append(f"  host {printable(hit.host)}  rule {printable(hit.rule)}  payload {printable(hit.payload)}")
        if hit.tunnel:
            lines.append(f"  tunnel {printable(hit.tunnel)}")
        excerpt = _LINE_BREAK.split(hit.request_excerpt) if hit.request_excerpt else ["(no excerpt)"]
        lines.extend(f"  | {printable(line)}" for line in excerpt)
        lines.append("")
    return "\n".join(lines).rstrip("\n")


@attacks.command("stats")
@db_option
@filter_options
@format_option("table", "json")
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True, help="Rows per ranking.")
def attack_stats(db_url: str, output_format: str, top: int, **filters: Any) -> None:
    """Count the matching hits by type, source, host and hour."""
    with open_queries(db_url) as queries:
        stats = queries.stats(hit_filter(filters), top=top)
    if output_format == "json":
        click.echo(_json(stats.as_dict()))
    else:
        click.echo(stats_tables(stats))


def stats_tables(stats: storage.HitStats) -> str:
    sections = [f"{stats.total} hits"]
    for title, counts in (
        ("TYPE", stats.by_type),
        ("SOURCE", stats.by_source),
        ("HOST", stats.by_host),
        ("HOUR (UTC)", stats.by_hour),
    ):
        sections.append(render_table([(title, 60), ("HITS", 10)], counts))
    return "\n\n".join(sections)


def _echo_records(records: list[Any], output_format: str, record_type: type) -> None:
    if output_format == "json":
        echo_json(records)
    elif output_format == "jsonl":
        echo_jsonl(records)
    else:
        echo_csv(records, record_type)


def _json(data: object) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)
