"""`VerdictCache`: the engine's bounded memory of verdicts on values it has judged before.

Mirrored traffic repeats the same header values, cookies and token claims request after
request, among a stream of values seen once (session ids, timestamps, signatures). Two
generations keep the repeated ones: when the young generation is full it becomes the old
one and the previous old one is dropped; a hit in the old generation moves back to the
young. So a value seen again within `size / 2` new values is never judged twice, and memory
stays bounded, where clearing one dict when full forgot the hot values with the cold.

The cache is itself the young generation, a dict: the engine looks a key up with the dict's
own `get` (no Python call on a hit, some twenty times per request) and asks `recall` only
on a miss. The compiled engine loops (`_inspect_loops.c`) do `get`, `recall` and `put` in C
on the same object: they read `size`, `_generation_size` and `_old` and replace `_old` as
`put` does, so those names and meanings are part of this class's contract, and so is this:
the two sizes are fixed once the cache is made (the loops read them once per call).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TypeVar

__all__ = ["VerdictCache"]

Verdict = TypeVar("Verdict")


class VerdictCache(dict[Hashable, Verdict]):
    """At most `size` verdicts (0: none kept), in two generations of `size // 2`."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self._generation_size = max(1, size // 2)
        self._old: dict[Hashable, Verdict] = {}

    def __len__(self) -> int:
        return super().__len__() + len(self._old)

    def recall(self, key: Hashable) -> Verdict | None:
        """The verdict on `key` from the old generation (moved to the young one), or None.

        For a key that the dict's `get` did not find.
        """
        if not self._old:
            return None
        verdict = self._old.pop(key, None)
        if verdict is not None:
            self.put(key, verdict)
        return verdict

    def put(self, key: Hashable, verdict: Verdict) -> None:
        if not self.size:
            return
        if super().__len__() >= self._generation_size:
            self._old = dict(self)
            self.clear()
        self[key] = verdict
