"""Schema versions: Alembic migrations applied in code, automatically on first use.

The migrations live in `storage/migrations` inside the package; Alembic is configured here
rather than by an alembic.ini, so an installed package carries everything it needs.

Alembic (and the Mako and Pygments it brings) takes about 0.1 s to import, paid by every
run: the version is read with plain SQLAlchemy first, and Alembic imported only when a
migration must really be applied, or its own view of the scripts is asked for. A new, empty
database gets the newest schema straight from the models (`create_all`) and is stamped with
the head revision, as Alembic's cookbook does ("building an up to date database from
scratch"); tests/storage/test_schema.py holds that schema to the one the migrations build,
on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Column, Connection, Engine, MetaData, PrimaryKeyConstraint, String, Table, inspect, text

from storage.models import Base

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["HEAD_REVISION", "UnversionedDatabaseError", "current_revision", "head_revision", "upgrade_schema"]

# The newest migration in storage/migrations/versions (tests/storage/test_schema.py holds it
# to Alembic's own head, so a migration added without updating it fails there).
HEAD_REVISION = "0001"
# Alembic's table of the applied revision, as `alembic.runtime.migration.MigrationContext`
# defines it (default `version_table`, with its primary key).
_VERSION_TABLE = "alembic_version"
_VERSION = Table(
    _VERSION_TABLE,
    MetaData(),
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name=f"{_VERSION_TABLE}_pkc"),
)


# Held while migrations are applied (any number shared by every oob-analyzer: "oob-anal" in ASCII).
_UPGRADE_LOCK_KEY = 0x6F6F622D616E616C


class UnversionedDatabaseError(Exception):
    """The database has our tables but no schema version: the migrations cannot adopt it."""


def _alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config  # noqa: PLC0415 - Alembic only when used (module docstring)

    config = Config()
    config.set_main_option("script_location", "storage:migrations")
    config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    """The newest revision as Alembic reads it from the migration scripts."""
    from alembic.script import ScriptDirectory  # noqa: PLC0415

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return _stored_revision(connection)


def _stored_revision(connection: Connection) -> str | None:
    """The revision recorded in the database, read as Alembic's `get_current_revision` does."""
    if not inspect(connection).has_table(_VERSION_TABLE):
        return None
    versions = connection.execute(text(f"SELECT version_num FROM {_VERSION_TABLE}")).scalars().all()
    if len(versions) > 1:  # branches: never ours, but Alembic's answer is the one to give
        from alembic.runtime.migration import MigrationContext  # noqa: PLC0415

        return MigrationContext.configure(connection).get_current_revision()
    return versions[0] if versions else None


def upgrade_schema(engine: Engine) -> bool:
    """Bring the database to the newest schema; True when something had to be applied.

    Several sensors may start at once against one new database: on PostgreSQL the first
    to take the lock (an advisory lock on PostgreSQL, the write lock on SQLite) applies the
    migrations (or creates the newest schema, in an empty database); the others wait for it,
    then find nothing left to do.
    """
    if current_revision(engine) == HEAD_REVISION:
        return False
    with engine.begin() as connection:
        _exclude_other_upgraders(connection)
        current = _stored_revision(connection)
        if current == HEAD_REVISION:
            return False
        if current is None:
            existing = set(inspect(connection).get_table_names())
            if "hits" in existing:
                raise UnversionedDatabaseError(
                    "it holds hits but no schema version (made by the 0.1.0 skeleton, before migrations): "
                    "use a new database, or export what it holds first"
                )
            if not existing & {*Base.metadata.tables, _VERSION_TABLE}:
                _create_newest_schema(connection)
                return True
        from alembic import command  # noqa: PLC0415

        command.upgrade(_alembic_config(connection), "head")
    return True


def _create_newest_schema(connection: Connection) -> None:
    """The head schema in a database that holds none of our tables, stamped as at the head revision."""
    Base.metadata.create_all(connection, checkfirst=False)
    _VERSION.create(connection)
    connection.execute(_VERSION.insert().values(version_num=HEAD_REVISION))


def _exclude_other_upgraders(connection: Connection) -> None:
    """Hold, until the transaction ends, a lock that every other upgrader of this database waits for."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _UPGRADE_LOCK_KEY})
    elif connection.dialect.name == "sqlite":
        # pysqlite opens no transaction before DDL by itself: take the write lock now.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
