"""The worker pool's edges: a worker that dies, a slow worker on a live source, a new engine,
counters on request."""

from __future__ import annotations

import functools
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.reassembly_generate import Impairments, packets, write_pcap
from capture import RawPacket
from oob_analyzer.pipeline import RunSummary, iter_packets
from oob_analyzer.workers import QUEUE_FULL_DROP, WorkerError, WorkerPool, analyze_packets_in_workers, segment_to_tuple
from oob_analyzer.workers.pool import _death, _Worker
from tests.builders import ethernet_frame, ipv4_packet, raw_packet, segment, tcp_header
from tests.paths import SAMPLES
from tests.workers.runs import (
    SMALL_ENGINE,
    ListSink,
    SlowEngine,
    failing_engine,
    run_packets_in_workers,
    slow_failing_engine,
    slow_start_engine,
    slow_start_engine_marked,
    small_engine,
)

ATTACK = b"GET /item?id=1%27%20OR%20%271%27%3D%271 HTTP/1.1\r\nHost: shop.example.com\r\n\r\n"


def attack_packets(count: int) -> list[RawPacket]:
    """`count` one-segment requests, each on a connection of its own (picked up mid-stream)."""
    return [
        raw_packet(ethernet_frame(ipv4_packet(tcp_header(sport=1024 + n) + ATTACK)), ts=1.0 + n / 1000)
        for n in range(count)
    ]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("generated") / "generated.pcap"
    write_pcap(path, packets(600, 4, Impairments(0.0, 0.0, 0.0), 9, path.with_suffix(".truth.jsonl")))
    return path


def test_a_worker_killed_mid_run_is_an_error_that_names_it(generated: Path) -> None:
    pools: list[WorkerPool] = []
    summary = RunSummary()

    def killing_one_worker() -> Iterator[RawPacket]:
        for n, packet in enumerate(iter_packets([generated], summary)):
            if n == 2000:
                pid = pools[0].pids[1]
                assert pid is not None
                os.kill(pid, signal.SIGKILL)
            yield packet

    started = time.monotonic()
    sink = ListSink()
    with pytest.raises(WorkerError, match=r"worker 1 \(pid \d+\) was killed by SIGKILL: the results are incomplete"):
        analyze_packets_in_workers(
            killing_one_worker(),
            workers=2,
            engine_factory=SMALL_ENGINE,
            sink=sink,
            summary=summary,
            pool_ready=pools,
        )
    assert time.monotonic() - started < 60
    assert summary.hits == len(sink.hits)
    assert all(not process_alive(pid) for pid in pools[0].pids)


def process_alive(pid: int | None) -> bool:
    assert pid is not None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        return stat.read().split(") ")[1][0] != "Z"


def test_a_worker_that_cannot_start_says_why() -> None:
    with pytest.raises(WorkerError, match=r"worker \d \(pid \d+\) failed: RuntimeError: the engine cannot be built"):
        run_packets_in_workers(attack_packets(10), 2, failing_engine)


def test_a_live_source_drops_what_a_slow_worker_cannot_take_and_counts_it() -> None:
    """A live source never waits for a worker: every segment is analyzed or counted dropped."""
    total = 20_000
    summary, sink = RunSummary(), ListSink()
    analyze_packets_in_workers(
        attack_packets(total),
        workers=2,
        engine_factory=functools.partial(SlowEngine, 0.0005),
        sink=sink,
        summary=summary,
        live=True,
    )
    dropped = summary.drops[QUEUE_FULL_DROP]
    assert dropped > 0
    assert summary.requests + dropped == total
    assert summary.hits == summary.requests == len(sink.hits)


def test_files_wait_for_a_slow_worker_and_lose_nothing() -> None:
    summary, sink = RunSummary(), ListSink()
    analyze_packets_in_workers(
        attack_packets(3000),
        workers=2,
        engine_factory=functools.partial(SlowEngine, 0.0005),
        sink=sink,
        summary=summary,
    )
    assert (summary.requests, summary.hits, QUEUE_FULL_DROP in summary.drops) == (3000, 3000, False)


def test_reconfigure_swaps_the_engine_between_segments_and_keeps_connections() -> None:
    """A request split over a reconfigure is judged whole, by the new engine."""
    line_end = ATTACK.index(b"\r\n") + 2  # the request line, enough to pick the connection up
    head, rest = ATTACK[:line_end], ATTACK[line_end:]
    before = segment_to_tuple(segment(ATTACK, seq=1))
    first, second = segment(head, seq=1), segment(rest, seq=1 + len(head))
    first.sport = second.sport = 50000
    summary, sink = RunSummary(), ListSink()
    with WorkerPool.started(1, engine_factory=SMALL_ENGINE, sink=sink, summary=summary) as pool:
        pool.send(0, [before, segment_to_tuple(first)])
        pool.reconfigure(functools.partial(small_engine, frozenset({"sqli"})))
        pool.send(0, [segment_to_tuple(second)])
        counters = pool.counters()
        pool.finish(close_connections=True)
    assert (counters["segments"], counters["requests"]) == (3, 2)
    # The hit waits for its response (there is none) until the end: then it is recorded.
    assert summary.hits == 1
    assert [hit.src_port for hit in sink.hits] == [40000]  # the split request: sqli is off now
    assert pool.final_counters()["tracker.connections"] == 2


def test_a_bad_new_engine_is_reported_and_the_old_one_kept() -> None:
    summary, sink = RunSummary(), ListSink()
    with WorkerPool.started(2, engine_factory=SMALL_ENGINE, sink=sink, summary=summary) as pool:
        pool.reconfigure(failing_engine)
        pool.send(1, [segment_to_tuple(segment(ATTACK))])
        pool.finish(close_connections=True)
    assert sorted(pool.reconfigure_errors) == [
        "worker 0: RuntimeError: the engine cannot be built",
        "worker 1: RuntimeError: the engine cannot be built",
    ]
    assert len(sink.hits) == 1


def test_counters_add_up_over_the_workers(generated: Path) -> None:
    summary, sink = RunSummary(), ListSink()
    pools: list[WorkerPool] = []
    samples = []

    def sampling() -> Iterator[RawPacket]:
        for n, packet in enumerate(iter_packets([generated], summary)):
            if n in (5000, 10000):
                samples.append(pools[0].counters())
            yield packet

    analyze_packets_in_workers(
        sampling(), workers=3, engine_factory=SMALL_ENGINE, sink=sink, summary=summary, pool_ready=pools
    )
    final = pools[0].final_counters()
    assert samples[0]["segments"] < samples[1]["segments"] <= final["segments"]
    assert samples[0]["requests"] <= samples[1]["requests"] <= final["requests"] == summary.requests == 2400
    assert final["cpu_milliseconds"] > 0
    assert final["tracker.connections"] == summary.drops["connections"] == 600


def test_a_worker_idle_longer_than_its_parent_check_keeps_serving() -> None:
    """A quiet live source leaves the workers idle: they must not take it for their parent's death."""
    summary, sink = RunSummary(), ListSink()
    with WorkerPool.started(1, engine_factory=SMALL_ENGINE, sink=sink, summary=summary) as pool:
        pool.send(0, [segment_to_tuple(segment(ATTACK, seq=1))])
        time.sleep(2.5)  # more than two of the worker's parent checks
        pool.check()
        pool.send(0, [segment_to_tuple(segment(ATTACK, seq=1 + len(ATTACK)))])
        pool.finish(close_connections=True)
    assert summary.requests == 2
    assert len(sink.hits) == 2


@pytest.mark.parametrize("live", [False, True], ids=["file", "live"])
def test_from_a_file_a_slow_worker_still_pairs_the_hit_with_its_response(live: bool) -> None:
    """Capture time decides how long a hit waits for its response when replaying a file: a
    pause in wall time (a slow disk, a busy dispatcher) releases nothing. A live source whose
    worker gets nothing for a while is quiet, and there wall time counts."""
    summary, sink = RunSummary(), ListSink()
    request = segment(ATTACK, seq=1, ack=5001, ts=1.0)
    answer = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"
    response = segment(answer, seq=5001, ack=1 + len(ATTACK), from_client=False, ts=2.0)
    with WorkerPool.started(1, engine_factory=SMALL_ENGINE, sink=sink, summary=summary, live=live) as pool:
        pool.send(0, [segment_to_tuple(request)])
        time.sleep(7.5)  # more than the 5 s a hit waits, in wall time
        pool.send(0, [segment_to_tuple(response)])
        pool.finish(close_connections=True)
    assert [hit.response_status for hit in sink.hits] == ([None] if live else [403])


@pytest.mark.parametrize("regular_files", [True, False])
def test_from_regular_files_no_flusher_thread_runs(regular_files: bool) -> None:
    """Its lock would cost the dispatcher 0.4 us a packet for nothing: a file read never stalls."""
    flusher_running: list[bool] = []

    def packets() -> Iterator[RawPacket]:
        for packet in iter_packets([SAMPLES / "mirror-http.pcap"], RunSummary()):
            flusher_running.append(any(thread.name == "oob-batch-flusher" for thread in threading.enumerate()))
            yield packet

    summary, sink = RunSummary(), ListSink()
    analyze_packets_in_workers(
        packets(), workers=2, engine_factory=SMALL_ENGINE, sink=sink, summary=summary, regular_files=regular_files
    )
    assert (summary.packets, summary.requests) == (0, 9)  # packets are counted by the reader: not this one
    assert len(flusher_running) == 55 and set(flusher_running) == {not regular_files}


def test_a_live_source_is_read_only_once_every_worker_has_built_its_engine() -> None:
    """Else the first seconds of a capture overflow the queues of workers still starting."""
    events: list[str] = []

    def trickle() -> Iterator[RawPacket]:  # 200 packets over about a second: batches every 50 ms
        for packet in attack_packets(200):
            events.append("read")
            time.sleep(0.005)
            yield packet

    summary, sink = RunSummary(), ListSink()
    analyze_packets_in_workers(
        trickle(),
        workers=2,
        engine_factory=functools.partial(slow_start_engine, 2.0),
        sink=sink,
        summary=summary,
        live=True,
        on_ready=lambda: events.append("ready"),
    )
    assert events[0] == "ready" and events.count("read") == 200
    assert summary.drops[QUEUE_FULL_DROP] == 0
    assert summary.requests == summary.hits == len(sink.hits) == 200


def test_from_files_packets_are_read_while_the_workers_build_their_engines(tmp_path: Path) -> None:
    """The bounded queues make the reader wait for a worker still starting: nothing is lost,
    and the first batches are read and routed meanwhile instead of after."""
    built = tmp_path / "an engine is built"
    read_before_built: list[bool] = []

    def reading() -> Iterator[RawPacket]:
        for packet in attack_packets(200):
            read_before_built.append(not built.exists())
            yield packet

    summary, sink = RunSummary(), ListSink()
    analyze_packets_in_workers(
        reading(),
        workers=2,
        engine_factory=functools.partial(slow_start_engine_marked, 2.0, built),
        sink=sink,
        summary=summary,
    )
    assert len(read_before_built) == 200 and all(read_before_built)
    assert built.exists()
    assert summary.requests == summary.hits == len(sink.hits) == 200
    assert QUEUE_FULL_DROP not in summary.drops


def test_from_files_a_worker_that_cannot_start_says_why_even_with_nothing_left_to_send() -> None:
    """Not waiting for the engines, a run of a few packets has sent them all before a worker
    fails to build its engine: the failure still ends the run, with its reason."""
    with pytest.raises(WorkerError, match=r"worker \d \(pid \d+\) failed: RuntimeError: the engine cannot be built"):
        run_packets_in_workers(attack_packets(2), 2, slow_failing_engine)


def _sleep_a_minute() -> None:
    time.sleep(60)


def test_a_killed_worker_is_named_killed_when_two_threads_ask_at_once() -> None:
    """Under forkserver the exit status comes once, from a pipe: the dispatcher and the collector
    asking at the same moment made one of them read an empty pipe and report status 255."""
    context = multiprocessing.get_context("forkserver")
    reports: list[str] = []
    for _ in range(30):
        process = context.Process(target=_sleep_a_minute)
        process.start()
        worker = _Worker(0, process, context.Queue(), context.Pipe()[0])
        assert process.pid is not None
        os.kill(process.pid, signal.SIGKILL)
        time.sleep(0.02)
        both = threading.Barrier(2)

        def ask(worker: _Worker = worker, both: threading.Barrier = both) -> None:
            both.wait()
            worker.is_alive()
            reports.append(_death(worker))

        threads = [threading.Thread(target=ask) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(reports) == 60
    assert all("was killed by SIGKILL" in report for report in reports), [r for r in reports if "SIGKILL" not in r]
