"""A PostgreSQL cluster of the test's own, on a free port in a temporary directory.

For the test that stops the database for real: the shared server at 5432 is never touched.
initdb and pg_ctl run as the `postgres` user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.system import unavailable

__all__ = ["ThrowawayPostgres", "throwaway_postgres"]


class ThrowawayPostgres:
    def __init__(self, bin_dir: Path, data_dir: Path, port: int, as_user: list[str]) -> None:
        self.bin_dir = bin_dir
        self.data_dir = data_dir
        self.port = port
        self.as_user = as_user
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg_ctl("start", "-o", options, "-l", str(self.data_dir / "server.log"))

    def stop(self) -> None:
        self._pg_ctl("stop", "-m", "immediate")

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.as_user, str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir / "data"), "-w", *args],
            check=True,
            capture_output=True,
            timeout=60,
        )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        unavailable("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    bin_dir = Path(found[-1]).parent
    as_user: list[str] = []
    if os.geteuid() == 0:
        runuser = shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin")
        if runuser is None:
            unavailable("runuser is needed to run PostgreSQL as its own user")
        as_user = [str(runuser), "-u", "postgres", "--"]
    work = Path(tempfile.mkdtemp(prefix="oob6-pg-"))
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(work, owner.pw_uid, owner.pw_gid)
    cluster = ThrowawayPostgres(bin_dir, work, _free_port(), as_user)
    try:
        subprocess.run(
            [*as_user, str(bin_dir / "initdb"), "-D", str(work / "data"), "-A", "trust", "-U", "postgres", "-N"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        cluster.start()
        yield cluster
    finally:
        subprocess.run(
            [*as_user, str(bin_dir / "pg_ctl"), "-D", str(work / "data"), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
            check=False,  # already stopped is fine
        )
        shutil.rmtree(work, ignore_errors=True)
