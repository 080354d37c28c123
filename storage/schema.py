"""Schema versions: Alembic migrations applied in code, automatically on first use.

The migrations live in `storage/migrations` inside the package; Alembic is configured here
rather than by an alembic.ini, so an installed package carries everything it needs.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect

__all__ = ["UnversionedDatabaseError", "current_revision", "head_revision", "upgrade_schema"]


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
    """Bring the database to the newest schema; True when something had to be applied."""
    current = current_revision(engine)
    if current == head_revision():
        return False
    if current is None and inspect(engine).has_table("hits"):
        raise UnversionedDatabaseError(
            "it holds hits but no schema version (made by the 0.1.0 skeleton, before migrations): "
            "use a new database, or export what it holds first"
        )
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), "head")
    return True
