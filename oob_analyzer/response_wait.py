"""Hits held until their request's response is seen, so that they carry its status code.

Between detection and storage, in the pipeline. Reassembly emits a request when it is
complete and its `HttpResponse` later (paired: `response.request` is that request, or the
head of it). A request's hits wait here until the first final response to it arrives, and
are then released with `response_status` set; they are released without a status when the
response does not come within `max_wait` seconds of capture time (a one-sided mirror, a
lost response, a slow server), when a live source is quiet and they have waited `max_wait`
seconds of wall time (capture time then stands still), when more than `max_held` hits are
waiting (the oldest go first), and at the end of the input. So no hit is lost, none waits
long, and memory stays bounded.

Sans-I/O: requests, responses and the current times go in, hits ready for storage come out.
"""

from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from capture.packets import TunnelContext
from oob_analyzer.detection import AttackHit
from reassembly import HttpRequest, HttpResponse

__all__ = ["DEFAULT_MAX_HELD_HITS", "DEFAULT_MAX_WAIT", "HitsAwaitingResponse"]

DEFAULT_MAX_WAIT = 5.0  # seconds: time-based blind SQL injection (sleep(5)) is still answered in time
DEFAULT_MAX_HELD_HITS = 10_000
# A server may answer before the request is complete (413 or 401 before the body): its
# status is kept, for this many requests, until the request's hits come.
_EARLY_ANSWERS_KEPT = 4096
# RFC 9110 section 15.2: 1xx responses are interim, the final one follows; 101 ends HTTP/1
# on the connection, so it is the last response the request gets.
_SWITCHING_PROTOCOLS = 101


# A request: its FlowKey's fields (client, client port, server, server port, tunnel) and its index.
_RequestKey = tuple[str, int, str, int, TunnelContext, int]


@dataclass(slots=True)
class _Waiting:
    hits: list[AttackHit]
    ts: float  # capture time of the request
    since: float  # monotonic time it began to wait


class HitsAwaitingResponse:
    """Hits keyed by their request (flow and index on the connection), oldest first."""

    def __init__(
        self,
        *,
        max_wait: float = DEFAULT_MAX_WAIT,
        max_held: int = DEFAULT_MAX_HELD_HITS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_wait = max_wait
        self.max_held = max_held
        self._clock = clock
        # Keyed by the request's flow, field by field, and its index on the connection (`_RequestKey`).
        self._waiting: OrderedDict[_RequestKey, _Waiting] = OrderedDict()
        # Status and request start time of requests answered before they were held.
        self._early: OrderedDict[_RequestKey, tuple[int, float]] = OrderedDict()
        self._held = 0
        # The latest capture time expired by: the end of input judges by it, not by the clock.
        self.capture_time: float | None = None
        self.answered = 0  # hits released with a status
        self.unanswered = 0  # hits released without one: waited too long, too many, or end of input

    def __len__(self) -> int:
        """How many hits are waiting."""
        return self._held

    def hold(self, request: HttpRequest, hits: list[AttackHit]) -> list[AttackHit]:
        """Keep `hits` until `request` is answered; the hits that must go now to stay bounded.

        With `max_wait` 0 nothing waits: the hits go at once, without a status.
        """
        if self.max_wait <= 0:
            self.unanswered += len(hits)
            return list(hits)
        flow = request.flow
        key = (flow.client, flow.client_port, flow.server, flow.server_port, flow.tunnel, request.index)
        early = self._early.pop(key, None)
        # The same start time: the same request, not one of an earlier connection on these ports.
        if early is not None and early[1] == request.ts:
            self.answered += len(hits)
            return [dataclasses.replace(hit, response_status=early[0]) for hit in hits]
        waiting = self._waiting.get(key)
        if waiting is None:
            self._waiting[key] = _Waiting(hits=list(hits), ts=request.ts, since=self._clock())
        else:  # the same request again (a retransmission parsed twice): one wait, both sets
            waiting.hits.extend(hits)
        self._held += len(hits)
        released: list[AttackHit] = []
        while self._held > self.max_held and self._waiting:
            released += self._release_oldest()
        return released

    def answer(self, response: HttpResponse) -> list[AttackHit]:
        """The hits of the request `response` answers, with its status (none if not held)."""
        request = response.request
        if request is None or (response.status < 200 and response.status != _SWITCHING_PROTOCOLS):
            return []  # not paired, or interim (100 Continue): the final response is still to come
        flow = request.flow  # its fields in the key: a FlowKey's hash is a Python call, a tuple's is not
        key = (flow.client, flow.client_port, flow.server, flow.server_port, flow.tunnel, request.index)
        waiting = self._waiting.pop(key, None) if self._waiting else None
        if waiting is None:
            # No hits (most requests), or the request is not complete yet: remember the status.
            self._early[key] = (response.status, request.ts)
            if len(self._early) > _EARLY_ANSWERS_KEPT:
                self._early.popitem(last=False)
            return []
        self._held -= len(waiting.hits)
        self.answered += len(waiting.hits)
        status = response.status
        return [dataclasses.replace(hit, response_status=status) for hit in waiting.hits]

    def expire(self, capture_time: float | None) -> list[AttackHit]:
        """Hits that waited `max_wait` seconds: of capture time, or of wall time while idle.

        `capture_time` is the time of the latest packet, or None when a live source waited
        for one in vain: then wall time counts, as capture time stands still. (A replay is
        judged by capture time alone, so it gives the same result however fast it runs.)
        Only the oldest entries are looked at: when nothing is due this costs one comparison.
        """
        if capture_time is not None and (self.capture_time is None or capture_time > self.capture_time):
            self.capture_time = capture_time
        if not self._waiting:
            return []
        released: list[AttackHit] = []
        now = self._clock() if capture_time is None else 0.0
        while self._waiting:
            oldest = next(iter(self._waiting.values()))
            if capture_time is not None:
                due = capture_time - oldest.ts >= self.max_wait
            else:
                due = now - oldest.since >= self.max_wait
            if not due:
                break
            released += self._release_oldest()
        return released

    def release_all(self) -> list[AttackHit]:
        """Every waiting hit, without a status: the input ended (or the run is stopping)."""
        released: list[AttackHit] = []
        while self._waiting:
            released += self._release_oldest()
        return released

    def _release_oldest(self) -> list[AttackHit]:
        _, waiting = self._waiting.popitem(last=False)
        self._held -= len(waiting.hits)
        self.unanswered += len(waiting.hits)
        return waiting.hits
