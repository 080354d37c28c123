"""Alembic's entry point: runs the migrations on the connection `storage.schema` passes in.

No alembic.ini: the store configures Alembic in code, so a plain `pip install` ships
everything the schema needs.
"""

from alembic import context

from storage.models import Base

connection = context.config.attributes["connection"]
# render_as_batch: SQLite can alter a table only by copying it, which batch mode does.
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
