"""Options and helpers the commands share: the database, filters, and the output format."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

import click

import storage
from oob_analyzer.cli.params import NETWORK, POINT_IN_TIME

__all__ = [
    "DEFAULT_DB_URL",
    "db_option",
    "default_journal_path",
    "echo_csv",
    "echo_json",
    "echo_jsonl",
    "filter_options",
    "format_option",
    "hit_filter",
    "limit_option",
    "open_queries",
    "open_store",
]

DEFAULT_DB_URL = "sqlite:///oob-analyzer.db"

F = TypeVar("F", bound=Callable[..., Any])


def db_option(function: F) -> F:
    return click.option(
        "--db",
        "db_url",
        envvar="OOB_ANALYZER_DB",
        default=DEFAULT_DB_URL,
        show_default=True,
        show_envvar=True,
        metavar="URL",
        help="Database URL: sqlite:///PATH or postgresql+psycopg://USER@HOST/DB.",
    )(function)


def format_option(*choices: str) -> Callable[[F], F]:
    def decorate(function: F) -> F:
        return click.option(
            "--format",
            "output_format",
            type=click.Choice(choices),
            default=choices[0],
            show_default=True,
            help="table for people; json (one array), jsonl (one object a line) or csv for programs.",
        )(function)

    return decorate


def limit_option(function: F) -> F:
    return click.option(
        "--limit",
        type=click.IntRange(min=1),
        default=50,
        show_default=True,
        help="Show at most this many, newest first.",
    )(function)


_FILTER_OPTIONS = [
    click.option(
        "--since", type=POINT_IN_TIME, help="Only from this time on: ISO 8601 (UTC unless said) or an age (1h, 7d)."
    ),
    click.option(
        "--until", type=POINT_IN_TIME, help="Only before this time: ISO 8601 or an age (30m = until 30 minutes ago)."
    ),
    click.option("--type", "types", multiple=True, metavar="TYPE", help="Attack type (sqli, xss, ...); repeatable."),
    click.option("--src", type=NETWORK, help="Source address or CIDR block."),
    click.option("--host", help="Host header, case-insensitive."),
    click.option("--app", "application", help="Application name."),
    click.option("--path", help="Request targets that start with this (e.g. /api/)."),
]


def filter_options(function: F) -> F:
    for option in reversed(_FILTER_OPTIONS):
        function = option(function)
    return function


def hit_filter(options: dict[str, Any]) -> storage.HitFilter:
    """The `HitFilter` of the filter options' values (popped from `options`)."""
    return storage.HitFilter(
        since=options.pop("since"),
        until=options.pop("until"),
        types=tuple(options.pop("types")),
        src=options.pop("src"),
        host=options.pop("host"),
        application=options.pop("application"),
        path=options.pop("path"),
    )


def default_journal_path(db_url: str) -> Path:
    """Where a run journals what the database at `db_url` cannot take: one file per database."""
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    digest = hashlib.sha256(db_url.encode()).hexdigest()[:16]
    return state / "oob-analyzer" / f"journal-{digest}.jsonl"


@contextmanager
def open_store(db_url: str) -> Iterator[storage.AttackStore]:
    try:
        store = storage.AttackStore.open(db_url)
    except storage.StorageError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        yield store
    except storage.StorageError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        store.close()


@contextmanager
def open_queries(db_url: str) -> Iterator[storage.HitQueries]:
    with open_store(db_url) as store:
        yield storage.HitQueries(store.engine)


def echo_json(records: Sequence[Any]) -> None:
    click.echo(json.dumps([record.as_dict() for record in records], indent=2, ensure_ascii=False))


def echo_jsonl(records: Iterable[Any]) -> None:
    for record in records:
        click.echo(json.dumps(record.as_dict(), ensure_ascii=False))


def echo_csv(records: Iterable[Any], record_type: type) -> None:
    """CSV with a header (even with no rows); cells a spreadsheet would run as a formula get a `'`."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[f.name for f in fields(record_type)], lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({key: _inert_cell(value) for key, value in record.as_dict().items()})
        if out.tell() > 1 << 16:
            click.echo(out.getvalue(), nl=False)
            out.seek(0)
            out.truncate()
    click.echo(out.getvalue(), nl=False)


def _inert_cell(value: Any) -> Any:
    # OWASP "CSV injection": attacker text opening with = + - @ (or tab, CR) runs as a formula.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
