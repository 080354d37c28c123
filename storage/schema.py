"""Schema versions: Alembic migrations applied in code, automatically on first use.

The migrations live in `storage/migrations` inside the package; Alembic is configured here
rather than by an alembic.ini, so an installed package carries everything it needs.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

__all__ = ["UnversionedDatabaseError", "current_revision", "head_revision", "upgrade_schema"]


# Held while migrations are applied (any number shared by every oob-analyzer: "oob-anal" in ASCII).
_UPGRADE_LOCK_KEY = 0x6F6F622D616E616C


class UnversionedDatabaseError(Exception):
    """The database has our tables but no schema version: the migrations cannot adopt it."""


def _alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", "storage:migrations")
    config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_schema(engine: Engine) -> bool:
    """Bring the database to the newest schema; True when something had to be applied.

    Several sensors may start at once against one new database: on PostgreSQL the first
    to take the lock (an advisory lock on PostgreSQL, the write lock on SQLite) applies the
    migrations; the others wait for it, then find nothing left to do.
    """
    head = head_revision()
    if current_revision(engine) == head:
        return False
    with engine.begin() as connection:
        _exclude_other_upgraders(connection)
        current = MigrationContext.configure(connection).get_current_revision()
        if current == head:
            return False
        if current is None and inspect(connection).has_table("hits"):
            raise UnversionedDatabaseError(
                "it holds hits but no schema version (made by the 0.1.0 skeleton, before migrations): "
                "use a new database, or export what it holds first"
            )
        command.upgrade(_alembic_config(connection), "head")
    return True


def _exclude_other_upgraders(connection: Connection) -> None:
    """Hold, until the transaction ends, a lock that every other upgrader of this database waits for."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _UPGRADE_LOCK_KEY})
    elif connection.dialect.name == "sqlite":
        # pysqlite opens no transaction before DDL by itself: take the write lock now.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
