"""The storage suite runs on SQLite and on the real PostgreSQL (`db_url`, in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from storage import AttackStore


@pytest.fixture
def store(db_url: str) -> Iterator[AttackStore]:
    store = AttackStore.open(db_url)
    yield store
    store.close()
