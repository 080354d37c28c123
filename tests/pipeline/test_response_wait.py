"""Hits wait for their request's response, sans-I/O: requests, responses and times in, hits out."""

from __future__ import annotations

from oob_analyzer.detection import AttackHit
from oob_analyzer.response_wait import HitsAwaitingResponse
from reassembly import FlowKey, HttpRequest, HttpResponse

FLOW = FlowKey(client="192.0.2.66", client_port=40001, server="198.51.100.20", server_port=80)
OTHER_FLOW = FlowKey(client="192.0.2.66", client_port=40002, server="198.51.100.20", server_port=80)


class FakeClock:
    """Wall time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def request(ts: float, *, index: int = 0, flow: FlowKey = FLOW) -> HttpRequest:
    return HttpRequest(
        ts=ts, flow=flow, method="GET", target=f"/?id={index}'--", version="HTTP/1.1", headers=(), index=index
    )


def response(answered: HttpRequest | None, status: int, ts: float) -> HttpResponse:
    flow = answered.flow if answered is not None else FLOW
    index = answered.index if answered is not None else 0
    return HttpResponse(
        ts=ts, flow=flow, version="HTTP/1.1", headers=(), status=status, reason="", request=answered, index=index
    )


def hit(answered: HttpRequest, attack_type: str = "sqli") -> AttackHit:
    flow = answered.flow
    return AttackHit(
        ts=answered.ts,
        src_ip=flow.client,
        src_port=flow.client_port,
        dst_ip=flow.server,
        dst_port=flow.server_port,
        host="shop.example.com",
        method=answered.method,
        target=answered.target,
        attack_type=attack_type,
        point="query.id",
        payload="'--",
        rule="libinjection-sqli",
        reason="SQL fingerprint",
    )


def test_hits_leave_with_the_status_of_the_response() -> None:
    waiting = HitsAwaitingResponse()
    sent = request(10.0)
    assert waiting.hold(sent, [hit(sent), hit(sent, "xss")]) == []
    assert len(waiting) == 2
    released = waiting.answer(response(sent, 500, 10.2))
    assert [(h.attack_type, h.response_status) for h in released] == [("sqli", 500), ("xss", 500)]
    assert len(waiting) == 0 and waiting.answered == 2 and waiting.unanswered == 0


def test_an_interim_response_is_not_the_status() -> None:
    waiting = HitsAwaitingResponse()
    sent = request(10.0)
    waiting.hold(sent, [hit(sent)])
    assert waiting.answer(response(sent, 100, 10.1)) == []
    assert [h.response_status for h in waiting.answer(response(sent, 403, 10.3))] == [403]


def test_switching_protocols_is_final() -> None:
    waiting = HitsAwaitingResponse()
    sent = request(10.0)
    waiting.hold(sent, [hit(sent)])
    assert [h.response_status for h in waiting.answer(response(sent, 101, 10.1))] == [101]


def test_responses_go_to_their_own_request() -> None:
    waiting = HitsAwaitingResponse()
    first, second, elsewhere = request(10.0, index=0), request(10.1, index=1), request(10.1, flow=OTHER_FLOW)
    for sent in (first, second, elsewhere):
        waiting.hold(sent, [hit(sent)])
    assert [(h.target, h.response_status) for h in waiting.answer(response(second, 404, 10.2))] == [
        (second.target, 404)
    ]
    assert [(h.src_port, h.response_status) for h in waiting.answer(response(elsewhere, 200, 10.3))] == [(40002, 200)]
    assert [h.response_status for h in waiting.answer(response(first, 200, 10.4))] == [200]
    assert waiting.answer(response(None, 200, 10.5)) == []  # a response without a request seen


def test_without_a_response_hits_leave_after_the_wait_in_capture_time() -> None:
    clock = FakeClock()
    waiting = HitsAwaitingResponse(max_wait=5.0, clock=clock)
    sent = request(10.0)
    waiting.hold(sent, [hit(sent)])
    assert waiting.expire(14.9) == []
    [released] = waiting.expire(15.0)
    assert released.response_status is None
    assert waiting.unanswered == 1 and len(waiting) == 0
    assert waiting.answer(response(sent, 200, 16.0)) == []  # too late: already recorded, not twice


def test_a_quiet_live_source_releases_hits_by_wall_time() -> None:
    clock = FakeClock()
    waiting = HitsAwaitingResponse(max_wait=5.0, clock=clock)
    sent = request(10.0)
    waiting.hold(sent, [hit(sent)])
    clock.now += 4.9
    assert waiting.expire(None) == []  # no packets: capture time stands still
    clock.now += 0.1
    assert waiting.expire(10.5) == []  # packets again: capture time decides, and it is early
    assert [h.response_status for h in waiting.expire(None)] == [None]


def test_the_number_of_waiting_hits_is_bounded_oldest_first() -> None:
    waiting = HitsAwaitingResponse(max_held=3)
    sent = [request(10.0 + index, index=index) for index in range(3)]
    assert waiting.hold(sent[0], [hit(sent[0]), hit(sent[0], "xss")]) == []
    assert waiting.hold(sent[1], [hit(sent[1])]) == []
    over = waiting.hold(sent[2], [hit(sent[2])])
    assert [(h.target, h.response_status) for h in over] == [(sent[0].target, None)] * 2
    assert len(waiting) == 2
    assert {h.target for h in waiting.release_all()} == {sent[1].target, sent[2].target}
    assert len(waiting) == 0


def test_a_response_before_the_request_completed_still_counts() -> None:
    waiting = HitsAwaitingResponse()
    head = request(10.0)  # a 413 to the head, before the body was all in
    assert waiting.answer(response(head, 413, 10.1)) == []
    complete = request(10.0)
    assert [h.response_status for h in waiting.hold(complete, [hit(complete)])] == [413]


def test_an_early_status_from_an_earlier_connection_on_the_same_ports_is_not_taken() -> None:
    waiting = HitsAwaitingResponse()
    old = request(10.0)
    waiting.answer(response(old, 200, 10.1))  # no hits: the status is remembered for a while
    reused = request(30.0)  # a new connection from the same port, its request 0
    assert waiting.hold(reused, [hit(reused)]) == []
    assert [h.response_status for h in waiting.answer(response(reused, 403, 30.2))] == [403]


def test_with_no_wait_hits_go_at_once() -> None:
    waiting = HitsAwaitingResponse(max_wait=0.0)
    sent = request(10.0)
    assert [h.response_status for h in waiting.hold(sent, [hit(sent)])] == [None]
    assert len(waiting) == 0
