"""The parent's side of the worker processes: start them, feed them, collect what they find.

Each worker has a bounded input queue (back-pressure: memory stays bounded) and a pipe of its
own back to the parent. A collector thread reads the pipes and hands hits and anomaly
sightings to the single sink (the storage writer), so a slow database slows the workers
down instead of filling memory. A worker that dies closes its pipe: the collector notices at
once and the run fails with a message that says which worker and how it ended.
"""

from __future__ import annotations

import itertools
import multiprocessing
import multiprocessing.forkserver
import queue
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue

from oob_analyzer.metrics import ENGINE_PREFIX, TRACKER_PREFIX
from oob_analyzer.pipeline import HitSink, RunSummary
from oob_analyzer.workers.child import run_worker
from oob_analyzer.workers.flows import FramePart
from oob_analyzer.workers.messages import (
    CountersReply,
    CountersRequest,
    Crashed,
    DecoderSettings,
    EngineFactory,
    Finish,
    Finished,
    Ready,
    Reconfigure,
    ReconfigureFailed,
    Results,
    SegmentBatch,
    ToParent,
    ToWorker,
)
from reassembly import ReassemblyLimits

__all__ = ["QUEUE_FULL_DROP", "WorkerError", "WorkerPool", "start_worker_server", "worker_limits"]

QUEUE_FULL_DROP = "segments_dropped_worker_queue_full"
_POLL_SECONDS = 0.2
_JOIN_SECONDS = 10.0


class WorkerError(Exception):
    """A worker process died or failed: the run's results are incomplete."""


def worker_limits(limits: ReassemblyLimits | None, workers: int) -> ReassemblyLimits:
    """Each worker's share of the bounds that hold for the whole run (flows, pending bytes)."""
    limits = limits or ReassemblyLimits()
    return ReassemblyLimits(
        max_flows=-(-limits.max_flows // workers),
        idle_timeout=limits.idle_timeout,
        max_pending_bytes_per_direction=limits.max_pending_bytes_per_direction,
        max_pending_bytes_total=-(-limits.max_pending_bytes_total // workers),
        overlap_check_bytes=limits.overlap_check_bytes,
        max_head_bytes=limits.max_head_bytes,
        body_inspection_bytes=limits.body_inspection_bytes,
        max_decoded_body_bytes=limits.max_decoded_body_bytes,
        max_decompression_ratio=limits.max_decompression_ratio,
    )


def _signal_name(exitcode: int | None) -> str:
    if exitcode is None:
        return "is still running but closed its pipe"
    if exitcode < 0:
        try:
            return f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"was killed by signal {-exitcode}"
    return f"exited with status {exitcode}"


@dataclass(slots=True)
class _Worker:
    index: int
    process: BaseProcess
    inbox: Queue[ToWorker]
    outbox: Connection
    ready: bool = False  # its engine is built
    finished: bool = False
    counters: Counter[str] = field(default_factory=Counter)
    # Held while asking the process how it is: under forkserver the exit status is read once,
    # from a pipe, and a second thread asking at the same moment read an empty pipe and took
    # the death for "exited with status 255" (the dispatcher and the collector both ask).
    process_lock: threading.Lock = field(default_factory=threading.Lock)

    def is_alive(self) -> bool:
        with self.process_lock:
            return self.process.is_alive()


class WorkerPool:
    """N worker processes behind per-worker queues; `WorkerPool.started(...)` runs and cleans up."""

    def __init__(
        self,
        workers: list[_Worker],
        *,
        sink: HitSink,
        summary: RunSummary,
    ) -> None:
        self._workers = workers
        self._sink = sink
        self._summary = summary
        self.dropped: Counter[str] = Counter()  # what the live path could not queue
        self.reconfigure_errors: list[str] = []
        self._finishing = False
        self._closing = threading.Event()
        self._failure: str | None = None
        self._lock = threading.Condition()
        self._sequence = itertools.count(1)
        self._replies: dict[int, list[Counter[str]]] = {}
        self._collector = threading.Thread(target=self._collect, name="oob-worker-results", daemon=True)
        self._collector.start()

    @classmethod
    @contextmanager
    def started(
        cls,
        count: int,
        *,
        engine_factory: EngineFactory,
        sink: HitSink,
        summary: RunSummary,
        limits: ReassemblyLimits | None = None,
        queue_batches: int = 8,
        live: bool = True,
        decoder: DecoderSettings | None = None,
    ) -> Iterator[WorkerPool]:
        """Start `count` workers; on the way out, any still running are stopped.

        `live`: the source may go quiet, and then a worker without segments releases the hits
        whose response is overdue by wall time; from files, capture time alone decides.
        `decoder`: how the workers decode packed frames (the dispatcher's decoder's settings;
        default ones when not given).
        A live source's pool is handed over once every worker has built its engine (seconds):
        until then its packets wait in the kernel's buffer, not in queues that would overflow.
        From files it is handed over at once: the bounded queues make the reader wait for a
        worker still building its engine, and meanwhile the reader has read and routed the
        first batches. Raises `WorkerError` if a worker fails to start (from files: when the
        next batch is sent, or at the latest when the pool finishes).
        """
        context = _context()
        shares = worker_limits(limits, count)
        workers: list[_Worker] = []
        # Only this process holds the write end: when it dies, however, every worker sees EOF
        # (a pid check cannot tell: a killed parent lingers as a zombie until reaped).
        lifeline, lifeline_end = context.Pipe(duplex=False)
        try:
            for index in range(count):
                inbox: Queue[ToWorker] = context.Queue(maxsize=queue_batches)
                reader, writer = context.Pipe(duplex=False)
                process = context.Process(
                    target=run_worker,
                    args=(inbox, writer, engine_factory, shares, lifeline),
                    kwargs={"live": live, "decoder": decoder},
                    name=f"oob-worker-{index}",
                    daemon=True,
                )
                process.start()
                writer.close()  # the child holds the only write end: its death is EOF here
                workers.append(_Worker(index, process, inbox, reader))
            lifeline.close()
            pool = cls(workers, sink=sink, summary=summary)
            try:
                if live:
                    pool._wait_ready()
                yield pool
            finally:
                pool._closing.set()  # normally done already; not when the finish itself was interrupted
                pool._collector.join()
        finally:
            for worker in workers:
                _stop(worker)
            lifeline_end.close()

    @property
    def size(self) -> int:
        return len(self._workers)

    @property
    def pids(self) -> list[int | None]:
        return [worker.process.pid for worker in self._workers]

    @property
    def failure(self) -> str | None:
        return self._failure

    def _wait_ready(self) -> None:
        with self._lock:
            while not all(worker.ready for worker in self._workers) and self._failure is None:
                self._lock.wait(timeout=_POLL_SECONDS)
        self._raise_failure()

    # -- feeding --------------------------------------------------------------------------

    def send(self, index: int, parts: list[FramePart], *, wait: bool = True, count: int | None = None) -> None:
        """Queue a batch for worker `index`: wait for room (files), or count it dropped (live).

        `count`: how many frames and segments `parts` holds (default: one per part, as when
        every part is a segment)."""
        self._raise_failure()
        worker = self._workers[index]
        if not wait:
            try:
                worker.inbox.put_nowait(SegmentBatch(parts))
            except queue.Full:
                self.dropped[QUEUE_FULL_DROP] += len(parts) if count is None else count
            return
        self._put(worker, SegmentBatch(parts))

    def reconfigure(self, engine_factory: EngineFactory) -> None:
        """Every worker builds a new engine and judges later requests with it (its state is kept)."""
        for worker in self._workers:
            self._put(worker, Reconfigure(engine_factory))

    def counters(self, timeout: float = 5.0) -> Counter[str]:
        """Every worker's counters, summed, while the run goes on (after it: `final_counters`).

        Asked in order with the segments already queued, so the answer can take as long as
        they do; `TimeoutError` after `timeout` seconds, `WorkerError` if a worker died.
        """
        sequence = next(self._sequence)
        with self._lock:
            self._replies[sequence] = []
        for worker in self._workers:
            self._put(worker, CountersRequest(sequence))
        with self._lock:
            self._lock.wait_for(
                lambda: len(self._replies[sequence]) == len(self._workers) or self._failure is not None,
                timeout=timeout,
            )
            replies = self._replies.pop(sequence)
        self._raise_failure()
        if len(replies) < len(self._workers):
            raise TimeoutError(f"only {len(replies)} of {len(self._workers)} workers reported their counters")
        return sum(replies, Counter())

    def finish(self, *, close_connections: bool) -> None:
        """Tell every worker that is still alive to finish, and wait for its last results.

        Only the first call does anything. Raises `WorkerError` if a worker died (what the
        others found is still handed to the sink first).
        """
        if not self._finishing:
            self._finishing = True
            for worker in self._workers:
                try:
                    self._put(worker, Finish(close_connections), tolerate_failure=True)
                except WorkerError:
                    continue  # dead: the collector has said so, or is about to
            self._collector.join()
        self._raise_failure()

    def final_counters(self) -> Counter[str]:
        """The counters every worker sent as it finished, summed (a dead worker's are missing)."""
        return sum((worker.counters for worker in self._workers), Counter())

    @staticmethod
    def tracker_stats(counters: Counter[str]) -> Counter[str]:
        """The connection trackers' `stats` in a counters sample, under their own names."""
        return _prefixed(counters, TRACKER_PREFIX)

    @staticmethod
    def engine_counters(counters: Counter[str]) -> Counter[str]:
        """The engines' counters (requests not judged, by reason) in a counters sample."""
        return _prefixed(counters, ENGINE_PREFIX)

    def _put(self, worker: _Worker, message: ToWorker, *, tolerate_failure: bool = False) -> None:
        while True:
            if not tolerate_failure:
                self._raise_failure()
            if not worker.is_alive():
                with self._lock:  # the collector reads its last words (a traceback) or its end
                    self._lock.wait_for(lambda: self._failure is not None, timeout=_JOIN_SECONDS)
                self._fail(_death(worker))
                raise WorkerError(self._failure)
            try:
                worker.inbox.put(message, timeout=_POLL_SECONDS)
                return
            except queue.Full:
                continue

    def check(self) -> None:
        """Raise `WorkerError` if a worker has died or failed."""
        self._raise_failure()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise WorkerError(self._failure)

    # -- collecting (a thread) ------------------------------------------------------------

    def _collect(self) -> None:
        by_pipe = {worker.outbox: worker for worker in self._workers}
        while by_pipe and not self._closing.is_set():
            for pipe in wait(list(by_pipe), timeout=_POLL_SECONDS):
                assert isinstance(pipe, Connection)
                worker = by_pipe[pipe]
                try:
                    message: ToParent = pipe.recv()
                except (EOFError, OSError):
                    del by_pipe[pipe]
                    if not worker.finished:
                        self._fail(_death(worker))
                    continue
                try:
                    self._handle(worker, message)
                except Exception as exc:  # the sink failed (the journal's disk): the run cannot go on
                    self._fail(f"the results of worker {worker.index} could not be recorded: {exc}")
                if worker.finished:
                    del by_pipe[pipe]

    def _handle(self, worker: _Worker, message: ToParent) -> None:
        if isinstance(message, Ready):
            with self._lock:
                worker.ready = True
                self._lock.notify_all()
        elif isinstance(message, Results):
            summary = self._summary
            summary.requests += message.requests
            summary.responses += message.responses
            if message.hits:
                self._sink.record(message.hits)
                summary.hits += len(message.hits)
                summary.hits_by_type.update(hit.attack_type for hit in message.hits)
            if message.sightings:
                self._sink.record_anomalies(message.sightings)
                summary.anomalies += len(message.sightings)
                summary.anomalies_by_name.update(sighting.name for sighting in message.sightings)
        elif isinstance(message, Finished):
            worker.finished = True
            worker.counters = message.counters
        elif isinstance(message, CountersReply):
            with self._lock:
                if message.sequence in self._replies:
                    self._replies[message.sequence].append(message.counters)
                    self._lock.notify_all()
        elif isinstance(message, ReconfigureFailed):
            self.reconfigure_errors.append(f"worker {worker.index}: {message.error}")
        elif isinstance(message, Crashed):
            last_line = message.error.strip().splitlines()[-1] if message.error.strip() else "unknown error"
            self._fail(f"worker {worker.index} (pid {worker.process.pid}) failed: {last_line}")

    def _fail(self, reason: str) -> None:
        with self._lock:
            if self._failure is None:
                self._failure = reason
            self._lock.notify_all()


def _prefixed(counters: Counter[str], prefix: str) -> Counter[str]:
    return Counter({name.removeprefix(prefix): n for name, n in counters.items() if name.startswith(prefix)})


def _death(worker: _Worker) -> str:
    with worker.process_lock:
        worker.process.join(timeout=_JOIN_SECONDS)
        how = _signal_name(worker.process.exitcode)
    return f"worker {worker.index} (pid {worker.process.pid}) {how}: the results are incomplete"


def _stop(worker: _Worker) -> None:
    """Wait briefly for a worker told to finish; kill one that is not; release its queue."""
    with worker.process_lock:
        worker.process.join(timeout=_JOIN_SECONDS if worker.finished else 0.5)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()
    worker.inbox.cancel_join_thread()  # a dead reader must not hang our exit on its feeder thread
    worker.inbox.close()
    worker.outbox.close()


def start_worker_server() -> None:
    """Start the fork server that `WorkerPool` forks its workers from, without waiting for it.

    Starting it imports the pipeline in a new interpreter (a fifth of a second of CPU). Called
    as soon as a command knows it will start workers, before it opens the store, those imports
    run on another core while this process sets up storage; otherwise the first worker's start
    waits for them. Calling it again, or starting a pool without it, is harmless.
    """
    _context()
    multiprocessing.forkserver.ensure_running()


def _context() -> ForkServerContext:
    # forkserver: the children do not inherit the parent's threads (the storage writer) or its
    # database connections, and the server imports the pipeline (and the main script, which a
    # child would otherwise run again) once for every worker it forks: a worker is up sooner,
    # and a Ctrl-C in its first moments, before it ignores SIGINT, is less likely to kill it.
    context = multiprocessing.get_context("forkserver")
    assert isinstance(context, ForkServerContext)
    context.set_forkserver_preload(["__main__", "oob_analyzer.workers.child"])
    return context
