"""The storage suite runs on SQLite and on the real PostgreSQL, each test on a fresh database.

PostgreSQL: every test gets its own schema in the test database (found through the
connection's search_path), dropped afterwards; the shared server is never reconfigured.
Locally an unreachable PostgreSQL skips its half of the suite; under CI it fails.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from storage import AttackStore
from tests.system import TEST_POSTGRES_URL, unavailable


def postgres_url_with_schema(base_url: str, schema: str) -> str:
    url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@contextmanager
def postgres_schema(base_url: str = TEST_POSTGRES_URL) -> Iterator[str]:
    """A URL for a fresh schema of the PostgreSQL test database; the schema is dropped after."""
    schema = f"oob6_{uuid.uuid4().hex[:12]}"
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


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture
def store(db_url: str) -> Iterator[AttackStore]:
    store = AttackStore.open(db_url)
    yield store
    store.close()
