"""Schema versions: Alembic migrations applied in code, automatically on first use.

The migrations live in `storage/migrations` inside the package; Alembic is configured here
rather than by an alembic.ini, so an installed package carries everything it needs.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

__all__ = ["current_revision", "head_revision", "upgrade_schema"]


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
    if current_revision(engine) == head_revision():
        return False
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), "head")
    return True
