"""What a command readies before it opens the store (`preparing_run`): with workers, the fork
server, started at once; in every case a garbage collector quiet through start-up
(`gc_policy.quiet_start_up`)."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator

import pytest

from oob_analyzer.cli.workers_option import preparing_run
from oob_analyzer.gc_policy import quiet_start_up


@pytest.fixture
def collector_as_found() -> Iterator[None]:
    """Whatever a test does to the collector, the next test finds it as this one did."""
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    if enabled:
        gc.enable()


@pytest.mark.usefixtures("collector_as_found")
def test_no_collection_until_the_analysis_starts_then_the_start_up_objects_are_frozen() -> None:
    gc.enable()
    with quiet_start_up() as analysis_started:
        assert not gc.isenabled()  # opening the store: no collection walks what it builds
        assert gc.get_freeze_count() == 0
        analysis_started()
        assert gc.isenabled()
        assert gc.get_freeze_count() > 1000  # the modules, classes and functions imported so far
    assert gc.isenabled() and gc.get_freeze_count() == 0  # as before, for a caller that goes on


@pytest.mark.usefixtures("collector_as_found")
def test_a_run_that_fails_before_its_analysis_leaves_the_collector_as_it_was() -> None:
    gc.enable()
    with pytest.raises(RuntimeError, match="the store cannot be opened"), quiet_start_up():
        raise RuntimeError("the store cannot be opened")
    assert gc.isenabled() and gc.get_freeze_count() == 0


@pytest.mark.usefixtures("collector_as_found")
def test_a_disabled_collector_stays_disabled() -> None:
    gc.disable()
    with quiet_start_up() as analysis_started:
        analysis_started()
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_at_exit_the_heap_is_frozen_so_that_the_last_collection_walks_nothing() -> None:
    # In a process of its own: the exit functions are run here, and not at pytest's exit.
    script = (
        "import atexit, gc\n"
        "from oob_analyzer.gc_policy import quiet_start_up\n"
        "with quiet_start_up() as analysis_started:\n"
        "    analysis_started()\n"
        "print(gc.get_freeze_count())\n"
        "atexit._run_exitfuncs()\n"
        "print(gc.get_freeze_count())\n"
    )
    after_run, at_exit = map(int, _run(script).split())
    assert after_run == 0 and at_exit > 1000


def test_with_workers_the_fork_server_is_running_before_the_store_opens() -> None:
    script = (
        "import os\n"
        "from oob_analyzer.cli.workers_option import preparing_run\n"
        "with preparing_run(WORKERS):\n"
        "    children = [p for p in os.listdir('/proc') if p.isdigit() and _ppid(p) == os.getpid()]\n"
        "    print(sum('forkserver' in _cmdline(p) for p in children))\n"
    )
    helpers = (
        "def _ppid(pid):\n"
        "    try:\n"
        "        with open(f'/proc/{pid}/stat') as stat:\n"
        "            return int(stat.read().rsplit(') ', 1)[1].split()[1])\n"
        "    except (OSError, IndexError):\n"
        "        return -1\n"
        "def _cmdline(pid):\n"
        "    try:\n"
        "        with open(f'/proc/{pid}/cmdline', 'rb') as cmdline:\n"
        "            return cmdline.read().decode(errors='replace')\n"
        "    except OSError:\n"
        "        return ''\n"
    )
    assert _run(helpers + script.replace("WORKERS", "2")).strip() == "1"
    assert _run(helpers + script.replace("WORKERS", "1")).strip() == "0"


@pytest.mark.usefixtures("collector_as_found")
def test_one_process_starts_no_fork_server_but_starts_up_as_quietly() -> None:
    gc.enable()
    with preparing_run(1) as analysis_started:
        assert not gc.isenabled()
        analysis_started()
        assert gc.isenabled() and gc.get_freeze_count() > 1000
    assert gc.isenabled() and gc.get_freeze_count() == 0


def _run(script: str) -> str:
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout
