"""`VerdictCache`: the engine's bounded memory of verdicts on values it has judged before.

Mirrored traffic repeats the same header values, cookies and token claims request after
request, among a stream of values seen once (session ids, timestamps, signatures). Two
generations keep the repeated ones: when the young generation is full it becomes the old
one and the previous old one is dropped; a hit in the old generation moves back to the
young. So a value seen again within `size / 2` new values is never judged twice, and memory
stays bounded, where clearing one dict when full forgot the hot values with the cold.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["VerdictCache"]

Verdict = TypeVar("Verdict")


class VerdictCache(Generic[Verdict]):
    """At most `size` verdicts (0: none kept), in two generations of `size // 2`."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._generation_size = max(1, size // 2)
        self._young: dict[Hashable, Verdict] = {}
        self._old: dict[Hashable, Verdict] = {}

    def __len__(self) -> int:
        return len(self._young) + len(self._old)

    def get(self, key: Hashable) -> Verdict | None:
        verdict = self._young.get(key)
        if verdict is None and self._old:
            verdict = self._old.pop(key, None)
            if verdict is not None:
                self.put(key, verdict)
        return verdict

    def put(self, key: Hashable, verdict: Verdict) -> None:
        if not self.size:
            return
        if len(self._young) >= self._generation_size:
            self._old = self._young
            self._young = {}
        self._young[key] = verdict
