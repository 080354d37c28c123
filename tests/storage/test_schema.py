"""The schema is versioned: the migrations build exactly the models, on both databases."""

from __future__ import annotations

import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from storage import AttackStore, Base, StorageError, current_revision, head_revision, upgrade_schema


def test_first_use_applies_the_migrations_and_they_match_the_models(db_url: str) -> None:
    store = AttackStore.open(db_url)
    try:
        assert current_revision(store.engine) == head_revision() is not None
        with store.engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert differences == []
        assert upgrade_schema(store.engine) is False  # already up to date: nothing is applied
    finally:
        store.close()


def test_opening_without_upgrade_leaves_an_empty_database_alone(db_url: str) -> None:
    store = AttackStore.open(db_url, upgrade=False)
    try:
        assert current_revision(store.engine) is None
        assert "hits" not in inspect(store.engine).get_table_names()
    finally:
        store.close()


def test_the_migrations_ship_inside_the_package() -> None:
    versions = resources.files("storage.migrations") / "versions"
    assert any(entry.name.startswith("0001_") for entry in versions.iterdir())
    engine = create_engine("sqlite://")
    assert upgrade_schema(engine) is True
    assert {"hits", "attacks", "anomalies", "capture_runs", "written_batches", "alembic_version"} <= set(
        inspect(engine).get_table_names()
    )


def test_a_database_from_before_versioning_is_refused_with_what_to_do(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'skeleton.db'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE hits (id INTEGER PRIMARY KEY)")
    engine.dispose()
    with pytest.raises(StorageError, match="holds hits but no schema version .* use a new database"):
        AttackStore.open(url)


def test_sensors_starting_together_on_an_empty_database_all_open_it(db_url: str) -> None:
    """Several sensors started at once race to create the schema; none may fail for it."""
    opener = "import sys; from storage import AttackStore; AttackStore.open(sys.argv[1]).close()"
    sensors = [subprocess.Popen([sys.executable, "-c", opener, db_url], stderr=subprocess.PIPE) for _ in range(4)]
    outcomes = [(sensor.wait(timeout=60), sensor.communicate()[1].decode()) for sensor in sensors]
    assert [stderr for status, stderr in outcomes if status != 0] == []
    engine = create_engine(db_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
