"""Reloading the config file while running (SIGHUP), without losing state.

The signal handler only sets a flag (`ConfigReloader.request`); the run loop calls `poll()`
between packets or requests, and the reload happens there, in the thread that judges:
re-read and validate the file; invalid -> the error on stderr, the running config stays;
valid -> the engine's judgement (policy, applications, allowed hosts, trusted proxies) is
swapped. Connections being reassembled, hits waiting for the writer and counters are not
touched. Sections only a restart applies (sources, storage, workers, metrics, reassembly)
are named on stderr when they changed.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from oob_analyzer.config.engine import SensorEngine
from oob_analyzer.config.loader import load_config
from oob_analyzer.config.nodes import ConfigError
from oob_analyzer.config.schema import SensorConfig

__all__ = ["ConfigReloader", "reload_on_sighup"]


class ConfigReloader:
    """Re-reads `engine.config`'s file when asked; `say` reports what happened (to stderr)."""

    def __init__(self, engine: SensorEngine, *, say: Callable[[str], None], restart_only: tuple[str, ...] = ()) -> None:
        self.engine = engine
        self.started = engine.config  # what the sources, the writer, ... were set up with
        self._say = say
        self._restart_only = restart_only  # sections this command applies only at start
        self._requested = threading.Event()
        # Also told of each new config, after the engine (e.g. to reconfigure worker processes).
        self.on_reload: list[Callable[[SensorConfig], None]] = []
        self.reloads = 0
        self.failures = 0

    def request(self) -> None:
        """Ask for a reload at the next `poll()`; safe in a signal handler."""
        self._requested.set()

    def poll(self) -> None:
        if self._requested.is_set():
            self._requested.clear()
            self.reload()

    def reload(self) -> bool:
        path = self.engine.config.path
        if path is None:
            self._say("SIGHUP: no --config file to reload")
            return False
        try:
            new = load_config(path)
        except ConfigError as exc:
            self.failures += 1
            self._say(f"config not reloaded, the running config stays: {exc}")
            return False
        self.engine.apply(new)
        for listener in self.on_reload:
            listener(new)
        self.reloads += 1
        self._say(f"config reloaded from {path}")
        changed = self.started.needs_restart(new) + [
            name for name in self._restart_only if getattr(self.started, name) != getattr(new, name)
        ]
        if changed:
            self._say(f"{path}: {', '.join(changed)} changed: applied only after a restart")
        return True


@contextmanager
def reload_on_sighup(reloader: ConfigReloader | None) -> Iterator[None]:
    """SIGHUP asks `reloader` for a reload while inside; the previous handler comes back after."""
    if reloader is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def request(_signum: int, _frame: FrameType | None) -> None:
        reloader.request()

    previous = signal.signal(signal.SIGHUP, request)
    try:
        yield
    finally:
        signal.signal(signal.SIGHUP, previous)
