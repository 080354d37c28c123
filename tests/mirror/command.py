"""The real `oob-analyzer mirror-server` command in its own process, and what a test asks of it."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from storage import AttackStore, HitFilter, HitQueries, HitRecord

COMMAND = str(Path(sys.executable).parent / "oob-analyzer")


@dataclass
class MirrorProcess:
    process: subprocess.Popen[str]
    port: int

    def stop(self, signum: signal.Signals = signal.SIGTERM) -> tuple[int, str]:
        self.process.send_signal(signum)
        stdout, stderr = self.process.communicate(timeout=20)
        return self.process.returncode, stdout + stderr


@contextmanager
def mirror_server(db_url: str, *args: str) -> Iterator[MirrorProcess]:
    process = subprocess.Popen(
        [COMMAND, "mirror-server", "--listen", "127.0.0.1:0", "--db", db_url, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        assert first_line.startswith("listening on 127.0.0.1:"), first_line + process.stderr.read()  # type: ignore[union-attr]
        yield MirrorProcess(process, int(first_line.rsplit(":", 1)[1]))
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def send(port: int, method: str, target: str, *, headers: dict[str, str], body: bytes | None = None) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request(method, target, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def wait_for_hits(db_url: str, count: int, timeout: float = 10.0) -> list[HitRecord]:
    deadline = time.monotonic() + timeout
    while True:
        store = AttackStore.open(db_url)
        try:
            hits = HitQueries(store.engine).list_hits(HitFilter(), limit=100)
        finally:
            store.close()
        if len(hits) >= count or time.monotonic() > deadline:
            return list(reversed(hits))
        time.sleep(0.05)
