from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.databases import postgres_schema


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hits.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The same test on a SQLite file and on a fresh schema of the real PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture(scope="session", autouse=True)
def hyperscan_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The suite's own hyperscan cache (inherited by the CLI and worker processes it starts):
    shared by all its engines, and never the user's ~/.cache."""
    cache_dir = tmp_path_factory.mktemp("hyperscan-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OOB_ANALYZER_CACHE_DIR", str(cache_dir))
        yield cache_dir
