"""The schema is versioned: the migrations build exactly the models, on both databases."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect

from storage import AttackStore, Base, StorageError, current_revision, head_revision, upgrade_schema
from storage.schema import HEAD_REVISION, _alembic_config
from tests.databases import postgres_schema


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


def test_the_head_revision_named_in_code_is_alembics_head() -> None:
    """`upgrade_schema` compares with `HEAD_REVISION` so as not to import Alembic: a new migration must update it."""
    assert head_revision() == HEAD_REVISION


def test_a_new_database_gets_the_schema_the_migrations_build(db_url: str, tmp_path: Path) -> None:
    """The new-database shortcut (the models' `create_all`, stamped) and the migrations agree, object by object."""
    fresh = create_engine(db_url)
    try:
        assert upgrade_schema(fresh) is True
        with _another_empty_database(db_url, tmp_path) as migrated_url:
            migrated = create_engine(migrated_url)
            try:
                with migrated.begin() as connection:
                    command.upgrade(_alembic_config(connection), "head")
                assert _schema_of(fresh) == _schema_of(migrated)
                assert current_revision(fresh) == current_revision(migrated) == HEAD_REVISION
            finally:
                migrated.dispose()
    finally:
        fresh.dispose()


def test_a_database_with_some_of_our_tables_but_no_version_is_not_patched_up(db_url: str) -> None:
    """Only a database with none of our tables gets the shortcut; this one goes to the migrations, which refuse it."""
    engine = create_engine(db_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE attacks (id INTEGER PRIMARY KEY)")
    engine.dispose()
    with pytest.raises(StorageError, match="cannot open database .*attacks"):
        AttackStore.open(db_url)


def test_an_empty_version_table_goes_to_the_migrations(db_url: str) -> None:
    """Alembic keeps its table, emptied, when a database is taken back to no revision."""
    engine = create_engine(db_url)
    try:
        with engine.begin() as connection:
            command.upgrade(_alembic_config(connection), "head")
            command.downgrade(_alembic_config(connection), "base")
        assert current_revision(engine) is None
        assert "alembic_version" in inspect(engine).get_table_names()
        assert upgrade_schema(engine) is True
        assert current_revision(engine) == HEAD_REVISION
    finally:
        engine.dispose()


def test_opening_a_database_imports_no_alembic(tmp_path: Path) -> None:
    """Alembic costs a tenth of a second to import: neither a new nor an up-to-date database needs it."""
    url = f"sqlite:///{tmp_path / 'hits.db'}"
    opener = (
        "import sys; from storage import AttackStore; AttackStore.open(sys.argv[1]).close(); "
        "print(sorted(name for name in sys.modules if name.split('.')[0] in ('alembic', 'mako')))"
    )
    for _ in ("new", "up to date"):
        opened = subprocess.run([sys.executable, "-c", opener, url], capture_output=True, text=True, check=True)
        assert opened.stdout.strip() == "[]"
    engine = create_engine(url)
    try:
        assert current_revision(engine) == HEAD_REVISION
    finally:
        engine.dispose()


def _schema_of(engine: Engine) -> dict[str, Any]:
    """Every table's columns, keys, constraints and indexes, and the recorded versions."""
    inspector = inspect(engine)
    schema: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        schema[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], c.get("default")) for c in inspector.get_columns(table)
            ],
            "primary_key": inspector.get_pk_constraint(table),
            "foreign_keys": sorted(
                (fk["name"], fk["constrained_columns"], fk["referred_table"], fk["referred_columns"], fk["options"])
                for fk in inspector.get_foreign_keys(table)
            ),
            "unique": sorted((u["name"], u["column_names"]) for u in inspector.get_unique_constraints(table)),
            "indexes": sorted((i["name"], i["column_names"], i["unique"]) for i in inspector.get_indexes(table)),
        }
    with engine.connect() as connection:
        schema["versions"] = connection.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    return schema


@contextmanager
def _another_empty_database(db_url: str, tmp_path: Path) -> Iterator[str]:
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'migrated.db'}"
    else:
        with postgres_schema() as url:
            yield url


def test_a_store_opens_while_another_holds_the_write_lock_of_a_new_file(tmp_path: Path) -> None:
    """Switching to WAL while another connection holds the write lock got "database is locked"
    at once, whatever the busy timeout (SQLite will not wait where waiting could deadlock):
    the race of sensors starting together on a new SQLite file. The open now waits."""
    path = tmp_path / "new.db"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("CREATE TABLE someone_else_is_writing (a)")
    done = threading.Timer(0.5, writer.execute, ("COMMIT",))
    done.start()
    try:
        store = AttackStore.open(f"sqlite:///{path}")
        store.close()
    finally:
        done.join()
        writer.close()
