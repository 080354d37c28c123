"""Sampling of identical hits: keep the first N per hour of each kind, count the rest.

Identical means the same attack type, point, target, method and source address: a scanner
repeating one payload. Off unless the user asks for it; a sampled-out hit still counts in
its attack (`Attack.sampled_out`), it only gets no row of its own.
"""

from __future__ import annotations

from oob_analyzer.detection.events import AttackHit

__all__ = ["HitSampler"]

SAMPLING_WINDOW_SECONDS = 3600.0
# Windows are forgotten once they end; past this many live ones, sampling of new kinds stops
# (they are all kept) rather than memory growing without bound.
MAX_TRACKED_KINDS = 200_000

_SampleKey = tuple[str, str, str, str, str]


class HitSampler:
    def __init__(self, keep_per_hour: int) -> None:
        if keep_per_hour < 1:
            raise ValueError(f"keep_per_hour must be at least 1, not {keep_per_hour}")
        self.keep_per_hour = keep_per_hour
        self._windows: dict[_SampleKey, tuple[float, int]] = {}  # kind -> (window start, hits in it)
        self.sampled_out = 0

    def keep(self, hit: AttackHit) -> bool:
        """True when the hit is to be stored, False when it is only counted."""
        kind = (hit.attack_type, hit.point, hit.target, hit.method, hit.src_ip)
        start, seen = self._windows.get(kind, (hit.ts, 0))
        if hit.ts - start >= SAMPLING_WINDOW_SECONDS:
            start, seen = hit.ts, 0
        if kind not in self._windows and len(self._windows) >= MAX_TRACKED_KINDS:
            self._forget_ended(hit.ts)
            if len(self._windows) >= MAX_TRACKED_KINDS:
                return True
        self._windows[kind] = (start, seen + 1)
        if seen < self.keep_per_hour:
            return True
        self.sampled_out += 1
        return False

    def _forget_ended(self, now: float) -> None:
        ended = [kind for kind, (start, _) in self._windows.items() if now - start >= SAMPLING_WINDOW_SECONDS]
        for kind in ended:
            del self._windows[kind]
