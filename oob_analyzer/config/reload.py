"""Reloading the config file while running (SIGHUP), without losing state.

The signal handler only sets a flag (`ConfigReloader.request`); the run loop calls `poll()`
between packets or requests, and the reload happens there, in the thread that judges:
re-read and validate the file; invalid -> the error on stderr, the running config stays;
valid -> each listener gets the new config: an in-process engine swaps its judgement
(`SensorEngine.apply`: policy, applications, allowed hosts, trusted proxies), a worker pool
sends it to every worker. The reloader holds only the config, so a parent whose workers
judge builds no engine of its own. Connections being reassembled, hits waiting for the
writer and counters are not touched. Sections only a restart applies (sources, storage,
workers, metrics, reassembly) are named on stderr when they changed.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from types import FrameType

from oob_analyzer.config.loader import load_config
from oob_analyzer.config.nodes import ConfigError
from oob_analyzer.config.schema import SensorConfig

__all__ = ["ConfigListener", "ConfigReloader", "reload_on_sighup"]


ConfigListener = Callable[[SensorConfig], None]


class ConfigReloader:
    """Re-reads `config`'s file when asked and hands each valid new config to the `listeners`
    (an engine's `apply`, a worker pool's reconfigure), in order; `say` reports what happened."""

    def __init__(
        self,
        config: SensorConfig,
        *,
        say: Callable[[str], None],
        listeners: Iterable[ConfigListener] = (),
        restart_only: tuple[str, ...] = (),
    ) -> None:
        self.config = config  # the one running: the last valid file
        self.started = config  # what the sources, the writer, ... were set up with
        self.listeners = list(listeners)  # more may be added once the run has started its parts
        self._say = say
        self._restart_only = restart_only  # sections this command applies only at start
        self._requested = threading.Event()
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
        path = self.config.path
        if path is None:
            self._say("SIGHUP: no --config file to reload")
            return False
        try:
            new = load_config(path)
        except ConfigError as exc:
            self.failures += 1
            self._say(f"config not reloaded, the running config stays: {exc}")
            return False
        self.config = new
        for listener in self.listeners:
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
