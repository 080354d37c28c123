"""What a command costs before its first packet: the modules it imports.

SQLAlchemy and Alembic took 0.4 s of every `oob-analyzer` start, `--help` included; each
command now imports only what it uses. Checked in a fresh interpreter, as a user runs it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.paths import SAMPLES

_LOADED = (
    "import sys; from oob_analyzer.cli import main\n"
    "try:\n"
    "    main(sys.argv[1:])\n"
    "except SystemExit:\n"
    "    pass\n"
    "packages = {name.split('.')[0] for name in sys.modules} | {name for name in sys.modules if name.startswith('storage.')}\n"
    "print(' '.join(sorted(packages)), file=sys.stderr)\n"
)


def _packages_loaded(*arguments: str) -> set[str]:
    run = subprocess.run([sys.executable, "-c", _LOADED, *arguments], capture_output=True, text=True, check=True)
    return set(run.stderr.split("\n")[-2].split())


def test_help_imports_no_database_library() -> None:
    loaded = _packages_loaded("--help")
    assert "click" in loaded
    assert not loaded & {"sqlalchemy", "alembic", "mako", "storage.store", "storage.models"}


def test_replay_imports_neither_alembic_nor_the_queries(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'hits.db'}"
    for _ in ("new database", "up-to-date database"):
        loaded = _packages_loaded("replay", str(SAMPLES / "mirror-http.pcap"), "--db", database, "--workers", "1")
        assert {"sqlalchemy", "storage.store", "storage.writer"} <= loaded  # it did record
        assert not loaded & {"alembic", "mako", "storage.queries"}


def test_a_query_command_imports_the_queries_but_not_alembic(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'hits.db'}"
    loaded = _packages_loaded("hits", "list", "--db", database)
    assert "storage.queries" in loaded
    assert "alembic" not in loaded
