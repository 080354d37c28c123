"""`oob-analyzer db ...`: the database's schema version and its upkeep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

import storage
from oob_analyzer.cli.options import db_option
from oob_analyzer.cli.params import DURATION

__all__ = ["db"]


@click.group()
def db() -> None:
    """The database: schema upgrades and pruning."""


@db.command("upgrade")
@db_option
def upgrade(db_url: str) -> None:
    """Bring the schema to the newest version (every command also does it on first use)."""
    try:
        before = _revision_of(db_url)
        store = storage.AttackStore.open(db_url)
    except storage.StorageError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        after = storage.current_revision(store.engine)
    finally:
        store.close()
    if before == after:
        click.echo(f"schema is up to date (revision {after})")
    else:
        click.echo(f"schema upgraded from {before or 'nothing'} to {after} (newest: {storage.head_revision()})")


@db.command("prune")
@db_option
@click.option("--older-than", type=DURATION, required=True, help="Age of what to delete: 30d, 12w, ...")
def prune(db_url: str, older_than: timedelta) -> None:
    """Delete hits, anomalies and runs older than the given age, and attacks last seen before it.

    An attack still going on at the cutoff is kept: its hit count loses the hits deleted
    (hits counted but not stored, --sample-identical, stay counted: they have no time).
    """
    cutoff = datetime.now(UTC) - older_than
    try:
        store = storage.AttackStore.open(db_url)
        try:
            counts = store.prune(cutoff)
        finally:
            store.close()
    except storage.StorageError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"deleted before {cutoff:%Y-%m-%d %H:%M} UTC: {counts.hits} hits, {counts.attacks} attacks, "
        f"{counts.anomalies} anomalies, {counts.runs} runs"
    )


def _revision_of(db_url: str) -> str | None:
    store = storage.AttackStore.open(db_url, upgrade=False)
    try:
        return storage.current_revision(store.engine)
    finally:
        store.close()
