"""The flow hash: both directions and one tunnel context of a flow reach the same worker."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from capture import TcpSegment
from oob_analyzer.workers import segment_from_tuple, segment_to_tuple, worker_for

ADDRESSES = st.one_of(st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(str))
PORTS = st.integers(0, 65535)
ENDPOINTS = st.tuples(ADDRESSES, PORTS)
TUNNELS = st.lists(
    st.tuples(st.sampled_from(["vxlan", "geneve", "gre", "erspan"]), st.text(max_size=20), st.integers(0, 1 << 24)),
    max_size=3,
).map(tuple)


def make_segment(src: str, sport: int, dst: str, dport: int, tunnel: tuple[tuple[str, str, int], ...]) -> TcpSegment:
    return TcpSegment(
        ts=1.0, src=src, dst=dst, sport=sport, dport=dport, seq=7, ack=9, flags=0x18, payload=b"x", tunnel=tunnel
    )


@given(ENDPOINTS, ENDPOINTS, TUNNELS, st.integers(1, 64))
def test_both_directions_of_a_flow_go_to_the_same_worker(
    a: tuple[str, int], b: tuple[str, int], tunnel: tuple[tuple[str, str, int], ...], workers: int
) -> None:
    forward = make_segment(*a, *b, tunnel)
    backward = make_segment(*b, *a, tunnel)
    index = worker_for(forward, workers)
    assert 0 <= index < workers
    assert worker_for(backward, workers) == index


def test_flows_spread_over_every_worker() -> None:
    segments = [make_segment("192.0.2.10", 30000 + n, "198.51.100.80", 80, ()) for n in range(1000)]
    per_worker = [0] * 4
    for segment in segments:
        per_worker[worker_for(segment, 4)] += 1
    assert all(count > 150 for count in per_worker), per_worker


def test_the_tunnel_context_is_part_of_the_flow() -> None:
    """The same inner 5-tuple from two VNIs is two flows: not always on the same worker."""
    owners = {
        (worker_for(make_segment("10.0.0.1", 40000, "10.0.0.2", 80, (("vxlan", "198.18.0.5>198.18.0.99", vni),)), 8))
        for vni in range(64)
    }
    assert len(owners) > 1


@given(ENDPOINTS, ENDPOINTS, TUNNELS, st.binary(max_size=64), st.booleans())
def test_a_segment_crosses_as_a_tuple_unchanged(
    a: tuple[str, int], b: tuple[str, int], tunnel: tuple[tuple[str, str, int], ...], payload: bytes, truncated: bool
) -> None:
    segment = make_segment(*a, *b, tunnel)
    segment.payload, segment.truncated = payload, truncated
    assert segment_from_tuple(segment_to_tuple(segment)) == segment
