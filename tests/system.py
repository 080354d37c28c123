"""What a test needs from the machine: tools, root, the test database.

Locally a test whose tool is missing is skipped with the reason; under CI (`CI` set) it
fails instead, because CI installs everything (`scripts/install-test-deps`) and must run
every test.
"""

from __future__ import annotations

import os
import shutil

import pytest

TEST_POSTGRES_URL = os.environ.get(
    "OOB_ANALYZER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


def unavailable(reason: str) -> None:
    """Skip the calling test, or fail it under CI."""
    if in_ci():
        pytest.fail(f"required under CI: {reason}")
    pytest.skip(reason)


def require_command(name: str) -> str:
    """The path of command `name`; the test cannot run without it."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        unavailable(f"{name} is not installed (scripts/install-test-deps installs it)")
    assert path is not None
    return path


def require_root() -> None:
    if os.geteuid() != 0:
        unavailable("needs root (network namespaces, raw sockets)")
