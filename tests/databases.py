"""Test databases: SQLite files and fresh schemas of the real PostgreSQL.

PostgreSQL: every test gets its own schema in the test database (found through the
connection's search_path), dropped afterwards; the shared server is never reconfigured.
Locally an unreachable PostgreSQL skips the test; under CI it fails.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from tests.system import TEST_POSTGRES_URL, unavailable

__all__ = ["postgres_schema", "postgres_url_with_schema"]


def postgres_url_with_schema(base_url: str, schema: str) -> str:
    url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@contextmanager
def postgres_schema(base_url: str = TEST_POSTGRES_URL) -> Iterator[str]:
    """A URL for a fresh schema of the PostgreSQL test database; the schema is dropped after."""
    schema = f"oob_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as exc:
        admin.dispose()
        unavailable(f"PostgreSQL at {base_url} is not reachable: {exc.orig}")
    try:
        yield postgres_url_with_schema(base_url, schema)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
