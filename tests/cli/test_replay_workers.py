"""`replay --workers`: real processes, real signals, a real worker killed.

As in test_replay_interrupted, the capture comes through a FIFO the test writes, so the run
is in progress when the signal arrives, and the flush interval is an hour, so hits reach
the database only through the shutdown path.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from oob_analyzer.cli import main
from oob_analyzer.config import SensorEngine
from storage import CaptureRun, Hit
from tests.cli.test_replay_interrupted import ATTACKS, pcap_bytes
from tests.paths import SAMPLES

COMMAND = Path(sys.executable).parent / "oob-analyzer"


def start_replay(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], Path, Path]:
    fifo = tmp_path / "live.pcap"
    os.mkfifo(fifo)
    db = tmp_path / "hits.db"
    process = subprocess.Popen(
        [COMMAND, "replay", str(fifo), "--db", f"sqlite:///{db}", "--journal", str(tmp_path / "j"),
         "--flush-interval", "3600", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    return process, fifo, db


def stored(db: Path) -> tuple[list[int], CaptureRun]:
    engine = create_engine(f"sqlite:///{db}")
    with Session(engine) as session:
        ports = sorted(session.scalars(select(Hit.src_port)))
        (run,) = session.scalars(select(CaptureRun)).all()
        session.expunge(run)
    engine.dispose()
    return ports, run


def descendants(pid: int) -> Iterator[tuple[int, int]]:
    """(pid, depth) of every process below `pid`, from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    level, depth = [pid], 0
    while level:
        depth += 1
        level = [child for parent in level for child in parents.get(parent, [])]
        yield from ((child, depth) for child in level)


@pytest.mark.parametrize(("signum", "to_group"), [(signal.SIGINT, True), (signal.SIGTERM, False)])
def test_a_signal_mid_run_with_workers_writes_every_hit(tmp_path: Path, signum: int, to_group: bool) -> None:
    """Ctrl-C reaches the whole process group (the workers too); SIGTERM only the parent."""
    process, fifo, db = start_replay(tmp_path, "--workers", "2")
    try:
        with fifo.open("wb") as feed:
            feed.write(pcap_bytes(ATTACKS))
            feed.flush()
            time.sleep(1.0)
            workers = [pid for pid, depth in descendants(process.pid) if depth == 2]
            if to_group:
                os.killpg(process.pid, signum)
            else:
                process.send_signal(signum)
            stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert "interrupted: writing what was detected" in stderr
    assert stdout == f"{ATTACKS} packets, {ATTACKS} requests, {ATTACKS} hits\n"
    ports, run = stored(db)
    assert ports == [20000 + n for n in range(ATTACKS)]
    assert (run.status, run.packets, run.requests, run.hits, json.loads(run.errors)) == (
        "interrupted", ATTACKS, ATTACKS, ATTACKS, [],
    )  # fmt: skip
    assert len(workers) >= 2  # the forkserver's children: the workers were there
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]


def test_a_worker_killed_mid_run_fails_the_run_with_a_clear_message(tmp_path: Path) -> None:
    process, fifo, db = start_replay(tmp_path, "--workers", "2")
    try:
        with fifo.open("wb") as feed:
            feed.write(pcap_bytes(ATTACKS))
            feed.flush()
            deadline = time.monotonic() + 30
            while len(workers := [pid for pid, depth in descendants(process.pid) if depth == 2]) < 2:
                assert time.monotonic() < deadline, "the workers did not start"
                time.sleep(0.1)
            os.kill(workers[0], signal.SIGKILL)
            time.sleep(0.5)
        stdout, stderr = process.communicate(timeout=60)  # the input ends: the run must end too
    finally:
        process.kill()
    assert process.returncode == 1, stderr
    assert "was killed by SIGKILL: the results are incomplete; what was detected before is recorded" in stderr
    assert stdout == ""
    _ports, run = stored(db)
    assert run.status == "failed"


@pytest.mark.parametrize("value", ["0", "257", "many", "-1"])
def test_a_bad_number_of_workers_is_a_usage_error(value: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["replay", str(tmp_path), "--workers", value])
    assert result.exit_code == 2
    assert "is not a number of workers from 1 to 256, or 'auto'" in result.output


def replay_sample_with_config(tmp_path: Path, workers: str) -> tuple[list[tuple[object, ...]], str]:
    """The sample replayed with its config (applications, a route off, a type disabled)."""
    db_url = f"sqlite:///{tmp_path / f'workers-{workers}.db'}"
    replayed = subprocess.run(
        [COMMAND, "replay", str(SAMPLES / "mirror-http.pcap"), "--config", str(SAMPLES / "oob-analyzer.yaml"),
         "--db", db_url, "--workers", workers, "--stats"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert replayed.returncode == 0, replayed.stderr
    listed = CliRunner().invoke(main, ["hits", "list", "--db", db_url, "--format", "json"])
    assert listed.exit_code == 0, listed.output
    keys = ("type", "point", "payload", "application", "response_status", "src_port")
    hits = sorted(tuple(hit[key] for key in keys) for hit in json.loads(listed.output))
    return hits, replayed.stdout + replayed.stderr


def test_workers_judge_with_the_config_file_as_the_single_process_does(tmp_path: Path) -> None:
    single_hits, single_out = replay_sample_with_config(tmp_path, "1")
    parallel_hits, parallel_out = replay_sample_with_config(tmp_path, "2")
    assert parallel_hits == single_hits
    assert {hit[3] for hit in single_hits} == {"shop"}  # the application, from the config
    assert all(isinstance(hit[4], int) for hit in single_hits)  # each hit waited for its response
    assert "requests_not_monitored" in single_out  # /login is off in the config
    assert parallel_out == single_out  # the summary and every counter --stats prints


@pytest.mark.parametrize(("workers", "engines"), [("2", 0), ("1", 1)])
def test_the_parent_builds_an_engine_only_when_it_judges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: str, engines: int
) -> None:
    """With workers, each builds its own engine from the config (a forkserver child does not see
    this patch); the parent's would cost seconds of CPU for nothing."""
    built: list[SensorEngine] = []
    build = SensorEngine.__init__

    def counted(engine: SensorEngine, *args: Any, **kwargs: Any) -> None:
        built.append(engine)
        build(engine, *args, **kwargs)

    monkeypatch.setattr(SensorEngine, "__init__", counted)
    db_url = f"sqlite:///{tmp_path / 'hits.db'}"
    sample, config = str(SAMPLES / "mirror-http.pcap"), str(SAMPLES / "oob-analyzer.yaml")
    result = CliRunner().invoke(main, ["replay", sample, "--config", config, "--db", db_url, "--workers", workers])
    assert result.exit_code == 0, result.output
    assert result.output == "55 packets, 9 requests, 4 hits\n"
    assert len(built) == engines
