"""The capture-loss estimate: acknowledgements of bytes the capture never held (Zeek's idea)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capture import TcpSegment
from reassembly import CaptureLoss, ConnectionTracker
from tests.builders import conversation, segment

# Each test runs against the compiled tracker and the pure-Python reference.
pytestmark = pytest.mark.usefixtures("either_tracker")

SYN, ACK, PSH, FIN = TcpSegment.SYN, TcpSegment.ACK, TcpSegment.PSH, TcpSegment.FIN
CLIENT_ISN, SERVER_ISN = 1000, 5000


def loss_of(segments: list[TcpSegment]) -> CaptureLoss:
    tracker = ConnectionTracker()
    for item in segments:
        tracker.receive_segment(item)
    tracker.close_all()
    return tracker.capture_loss


def data_segments(segments: list[TcpSegment]) -> list[int]:
    return [index for index, item in enumerate(segments) if item.payload]


def test_a_whole_capture_loses_nothing() -> None:
    loss = loss_of(conversation())
    # Every request (355 bytes) and response (540 bytes) acknowledged once, and the client's
    # FIN; the last ACK comes after both FINs closed the connection.
    assert loss == CaptureLoss(ack_events=4 * 2 + 1, ack_bytes=4 * (355 + 540) + 1, gap_events=0, gap_bytes=0)
    assert loss.ratio == 0.0


def test_a_data_segment_missing_in_the_middle_is_counted_once_with_its_size() -> None:
    segments = conversation()
    missing = data_segments(segments)[1]  # the second half of the first request
    lost = len(segments[missing].payload)
    del segments[missing]
    loss = loss_of(segments)
    assert (loss.gap_events, loss.gap_bytes) == (1, lost)
    assert loss.ratio == lost / loss.ack_bytes


def test_the_acknowledged_tail_of_a_connection_missing_is_counted_at_the_close() -> None:
    segments = conversation()
    last_response = data_segments(segments)[-1]
    lost = len(segments[last_response].payload)
    del segments[last_response]
    del segments[last_response - 1]  # and the response's first half: nothing pending, just unseen
    loss = loss_of(segments)
    assert (loss.gap_events, loss.gap_bytes) == (1, lost + 270)


def test_an_acknowledgement_that_overtakes_its_data_on_the_mirror_is_not_loss() -> None:
    segments = conversation()
    first_request_half = data_segments(segments)[0]
    server_ack = first_request_half + 2
    assert not segments[server_ack].payload and segments[server_ack].sport == 80
    # The server's ACK of the request arrives before the request's second half.
    segments.insert(first_request_half + 1, segments.pop(server_ack))
    assert loss_of(segments).gap_bytes == 0


def test_a_lost_segment_the_receiver_never_acknowledged_is_no_capture_loss() -> None:
    # The network lost it, not the mirror: the receiver's ACKs stop at the hole.
    segments = [item for item in conversation(requests=1) if not (item.payload and item.seq == CLIENT_ISN + 1 + 150)]
    stalled = CLIENT_ISN + 1 + 150
    segments = [
        item
        if item.src != segments[1].src or not item.flags & ACK or item.ack <= stalled
        else segment(item.payload, seq=item.seq, ack=stalled, flags=item.flags, from_client=False, ts=item.ts)
        for item in segments
    ]
    loss = loss_of(segments)
    assert loss.gap_bytes == 0


def test_a_wild_acknowledgement_is_not_believed() -> None:
    segments = conversation(requests=1)
    segments.insert(4, segment(seq=SERVER_ISN + 1, ack=(CLIENT_ISN + 1 + (1 << 30) + 5), flags=ACK, from_client=False))
    assert loss_of(segments) == loss_of(conversation(requests=1))


def test_samples_add_up() -> None:
    one = CaptureLoss(ack_events=2, ack_bytes=100, gap_events=1, gap_bytes=10)
    assert one + one == CaptureLoss(ack_events=4, ack_bytes=200, gap_events=2, gap_bytes=20)
    assert (one + one).ratio == 0.1


@settings(max_examples=60, deadline=None)
@given(st.sets(st.integers(min_value=0, max_value=23), max_size=6))
def test_every_acknowledged_byte_removed_from_the_capture_is_counted(removed: set[int]) -> None:
    segments = conversation(requests=6)
    data = data_segments(segments)
    gone = {data[index] for index in removed}
    loss = loss_of([item for index, item in enumerate(segments) if index not in gone])
    assert loss.gap_bytes == sum(len(segments[index].payload) for index in gone)
    # Missing bytes are acknowledged all the same; only the last ACK (of the server's FIN) may
    # count or not, as the connection is still open then or already closed.
    assert loss.ack_bytes - loss_of(segments).ack_bytes in (0, 1)
