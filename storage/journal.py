"""The journal: batches the database could not take, kept on local disk until it can.

One JSON object per line, each line flushed and fsync'd before the writer moves on, so a
batch in the journal survives a crash. A line cut short by a crash in the middle of its
write is not silently skipped: it is moved to the rejected file beside the journal.

Two runs against one database share its journal: appending, and replaying-then-clearing,
each hold an exclusive lock (flock on a file beside the journal), so one run never clears
a batch that another has just appended.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from storage.batches import WriteBatch

__all__ = ["Journal"]


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.rejected_path = path.with_name(path.name + ".rejected")
        self.lock_path = path.with_name(path.name + ".lock")

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the journal for this process alone (blocks while another holds it)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.lock_path.open("a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def pending(self) -> bool:
        try:
            return self.path.stat().st_size > 0
        except FileNotFoundError:
            return False

    def append(self, batch: WriteBatch) -> None:
        line = json.dumps(batch.to_json(), ensure_ascii=True)
        with self.locked():
            self._append_line(self.path, line)

    def batches(self) -> Iterator[WriteBatch]:
        """The journalled batches in the order they were written (hold `locked()` to then `clear()`)."""
        if not self.pending():
            return
        with self.path.open(encoding="ascii", errors="replace") as lines:
            for line in lines:
                try:
                    batch = WriteBatch.from_json(json.loads(line))
                except (ValueError, KeyError, TypeError) as exc:
                    self.reject(line.rstrip("\n"), f"unreadable journal line: {exc}")
                    continue
                yield batch

    def reject(self, text: str, reason: str) -> None:
        """Set aside what cannot be written, with why, for a person to look at."""
        self._append_line(self.rejected_path, json.dumps({"reason": reason, "entry": text}))

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)

    @staticmethod
    def _append_line(path: Path, line: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="ascii") as out:
            out.write(line + "\n")
            out.flush()
            os.fsync(out.fileno())
