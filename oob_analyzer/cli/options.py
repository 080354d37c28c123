"""Options and helpers the commands share: the database, and the output format."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from storage import AttackStore, StorageError

__all__ = ["DEFAULT_DB_URL", "db_option", "echo_json", "format_option", "limit_option", "open_store"]

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


def format_option(function: F) -> F:
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        help="table for people, json (one array) for programs.",
    )(function)


def limit_option(function: F) -> F:
    return click.option(
        "--limit",
        type=click.IntRange(min=1),
        default=50,
        show_default=True,
        help="Show at most this many, newest first.",
    )(function)


@contextmanager
def open_store(db_url: str) -> Iterator[AttackStore]:
    try:
        store = AttackStore.open(db_url)
    except StorageError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        yield store
    except StorageError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        store.close()


def echo_json(records: Sequence[Any]) -> None:
    click.echo(json.dumps([record.as_dict() for record in records], indent=2, ensure_ascii=False))
