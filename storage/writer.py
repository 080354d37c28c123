"""The batched writer: the pipeline hands it hits and anomalies, a thread stores them.

Sits between detection and the database so that storage never holds the pipeline up:
`record` only appends to a list; a background thread writes batches of up to `batch_size`
items, or whatever is waiting every `flush_interval` seconds. The queue of cut batches is
bounded, so memory is too: when the database is slower than detection, `record` waits.

Nothing detected is lost: when the database cannot be reached, batches go to the journal
on local disk and are written, in order, once it answers again. Nothing is written twice:
every item has a key from the moment it is recorded and every batch has a key stored with
it, so a batch replayed after a lost acknowledgement is recognised and skipped.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from oob_analyzer.detection.events import AttackHit
from storage.batches import AnomalySighting, KeyedAnomaly, KeyedHit, RunReport, WriteBatch
from storage.journal import Journal
from storage.sampling import HitSampler
from storage.store import AttackStore, StorageError, StorageUnavailableError

__all__ = ["BatchedWriter", "WriterStats"]

_STOP = object()


@dataclass(slots=True)
class WriterStats:
    written: int = 0  # items stored by this writer (hits, sampled-out hits, anomalies, runs)
    journalled: int = 0  # items that went to the journal because the database was away
    replayed_duplicates: int = 0  # batches found already stored when replayed
    rejected: int = 0  # items the database refused for good (set aside in the rejected file)
    sampled_out: int = 0


class BatchedWriter:
    """A `HitSink` in front of an `AttackStore`; `close()` writes everything before returning."""

    def __init__(
        self,
        store: AttackStore,
        *,
        journal: Journal,
        batch_size: int = 5000,
        flush_interval: float = 0.5,
        max_queued_batches: int = 4,
        retry_interval: float = 2.0,
        sampler: HitSampler | None = None,
    ) -> None:
        self.store = store
        self.journal = journal
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.retry_interval = retry_interval
        self.sampler = sampler
        self.run_key = uuid.uuid4().hex
        self.stats = WriterStats()
        self.database_down = False
        self._sequence = 0
        self._batches = 0
        self._lock = threading.Lock()
        self._hits: list[KeyedHit] = []
        self._anomalies: list[KeyedAnomaly] = []
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_queued_batches)
        self._last_attempt = float("-inf")
        # For `backlog()`: when the oldest item of the list being filled was recorded, and of
        # each cut batch not yet stored or journalled (oldest first).
        self._pending_since: float | None = None
        self._batches_since: deque[tuple[float, int]] = deque()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="oob-storage-writer", daemon=True)
        self._thread.start()

    # -- the producer side, called by the pipeline --

    def backlog(self) -> tuple[int, float]:
        """Items recorded but not yet stored or journalled, and the age in seconds of the oldest."""
        with self._lock:
            waiting = len(self._hits) + len(self._anomalies) + sum(size for _, size in self._batches_since)
            oldest = self._batches_since[0][0] if self._batches_since else self._pending_since
        return waiting, 0.0 if oldest is None or not waiting else time.monotonic() - oldest

    def record(self, hits: Sequence[AttackHit]) -> None:
        with self._lock:
            if self._pending_since is None:
                self._pending_since = time.monotonic()
            for hit in hits:
                keep = self.sampler is None or self.sampler.keep(hit)
                self._hits.append(KeyedHit(key=self._next_key("h"), hit=hit, sampled_out=not keep))
            full = len(self._hits) + len(self._anomalies) >= self.batch_size
        if full:
            self._queue_pending()

    def record_anomalies(self, sightings: Sequence[AnomalySighting]) -> None:
        with self._lock:
            if self._pending_since is None:
                self._pending_since = time.monotonic()
            for sighting in sightings:
                self._anomalies.append(KeyedAnomaly(key=self._next_key("a"), sighting=sighting))
            full = len(self._hits) + len(self._anomalies) >= self.batch_size
        if full:
            self._queue_pending()

    def flush(self) -> None:
        """Return once everything recorded so far is stored or journalled."""
        self._queue_pending()
        self._queue.join()
        self._raise_failure()

    def close(self, report: RunReport | None = None) -> None:
        """Write everything, with the run's report, then stop the thread."""
        self._queue_pending(runs=(report,) if report else ())
        self._queue.put(_STOP)
        self._thread.join()
        if self.sampler is not None:
            self.stats.sampled_out = self.sampler.sampled_out
        self._raise_failure()

    def _next_key(self, kind: str) -> str:
        self._sequence += 1
        return f"{self.run_key}-{kind}{self._sequence}"

    def _queue_pending(self, runs: tuple[RunReport, ...] = ()) -> None:
        with self._lock:
            if not (self._hits or self._anomalies or runs):
                return
            self._batches += 1
            batch = WriteBatch(
                batch_key=f"{self.run_key}-b{self._batches}",
                hits=tuple(self._hits),
                anomalies=tuple(self._anomalies),
                runs=runs,
            )
            self._cut()
            if self.sampler is not None:
                self.stats.sampled_out = self.sampler.sampled_out
        self._raise_failure()
        self._queue.put(batch)  # blocks while the queue is full: bounded memory

    def _cut(self) -> None:
        """The pending items became a batch (called with the lock held)."""
        size = len(self._hits) + len(self._anomalies)
        if size:  # a batch with only the run's report is no backlog
            self._batches_since.append((self._pending_since or time.monotonic(), size))
        self._hits.clear()
        self._anomalies.clear()
        self._pending_since = None

    def _done_with_batch(self) -> None:
        with self._lock:
            if self._batches_since:
                self._batches_since.popleft()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise StorageError(f"the storage writer stopped: {self._failure}") from self._failure

    # -- the writer thread --

    def _run(self) -> None:
        try:
            while True:
                try:
                    item = self._queue.get(timeout=self.flush_interval)
                except queue.Empty:
                    self._on_idle()
                    continue
                try:
                    if item is _STOP:
                        self._drain_journal(final=True)
                        return
                    assert isinstance(item, WriteBatch)
                    self._store(item)
                finally:
                    self._queue.task_done()
        except BaseException as exc:  # the journal's disk failed: make the producer see it
            self._failure = exc
            self._empty_queue()

    def _on_idle(self) -> None:
        self._queue_pending_from_thread()
        self._drain_journal(final=False)

    def _queue_pending_from_thread(self) -> None:
        # The thread cuts what has waited `flush_interval` itself; it must not block on its
        # own queue, so it writes the batch directly instead of queueing it.
        with self._lock:
            if not (self._hits or self._anomalies):
                return
            self._batches += 1
            batch = WriteBatch(
                batch_key=f"{self.run_key}-b{self._batches}", hits=tuple(self._hits), anomalies=tuple(self._anomalies)
            )
            self._cut()
        self._store(batch)

    def _store(self, batch: WriteBatch) -> None:
        try:
            self._store_or_journal(batch)
        finally:
            if batch.hits or batch.anomalies:
                self._done_with_batch()

    def _store_or_journal(self, batch: WriteBatch) -> None:
        if self.database_down or self.journal.pending():
            self._journal(batch)
            self._drain_journal(final=False)
            return
        try:
            self._write(batch)
        except StorageUnavailableError:
            self.database_down = True
            self._last_attempt = time.monotonic()
            self._journal(batch)

    def _write(self, batch: WriteBatch) -> None:
        try:
            stored = self.store.write(batch)
        except StorageUnavailableError:
            raise
        except StorageError as exc:
            self.journal.reject(json.dumps(batch.to_json(), ensure_ascii=True), str(exc))
            self.stats.rejected += len(batch)
            return
        if stored:
            self.stats.written += len(batch)
        else:
            self.stats.replayed_duplicates += 1

    def _journal(self, batch: WriteBatch) -> None:
        self.journal.append(batch)
        self.stats.journalled += len(batch)

    def _drain_journal(self, *, final: bool) -> None:
        """Write the journal to the database, oldest first, if it answers (and it is time to ask)."""
        if not self.journal.pending():
            self.database_down = False
            return
        now = time.monotonic()
        if not final and now - self._last_attempt < self.retry_interval:
            return
        self._last_attempt = now
        with self.journal.locked():
            try:
                for batch in self.journal.batches():
                    self._write(batch)
            except StorageUnavailableError:
                self.database_down = True
                return
            self.journal.clear()
        self.database_down = False

    def _empty_queue(self) -> None:
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return
            self._queue.task_done()
