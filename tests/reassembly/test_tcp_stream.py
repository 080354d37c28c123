from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from reassembly import TcpStream

DATA = bytes(range(256)) * 4


def deliver(stream: TcpStream, pieces: list[tuple[int, bytes]]) -> bytes:
    return b"".join(stream.add(seq, payload) for seq, payload in pieces)


def test_in_order_after_a_syn() -> None:
    stream = TcpStream()
    stream.start(99)
    assert deliver(stream, [(100, b"abc"), (103, b"def")]) == b"abcdef"


def test_early_segment_waits_for_the_hole() -> None:
    stream = TcpStream()
    stream.start(99)
    assert stream.add(103, b"def") == b""
    assert stream.pending_bytes == 3
    assert stream.add(100, b"abc") == b"abcdef"
    assert stream.pending_bytes == 0


def test_retransmission_and_overlap_keep_the_first_copy() -> None:
    stream = TcpStream()
    stream.start(0)
    assert stream.add(1, b"abcd") == b"abcd"
    assert stream.add(1, b"abcd") == b""
    assert stream.add(3, b"XXef") == b"ef"


def test_sequence_numbers_wrap_around() -> None:
    stream = TcpStream()
    stream.start(2**32 - 3)
    assert deliver(stream, [(2**32 - 2, b"ab"), (0, b"cd")]) == b"abcd"


def test_mid_stream_pickup_starts_at_the_first_segment_seen() -> None:
    stream = TcpStream()
    assert stream.add(5000, b"xyz") == b"xyz"


def test_pending_buffer_is_bounded() -> None:
    stream = TcpStream(max_pending_bytes=4)
    stream.start(0)
    stream.add(10, b"abc")
    stream.add(20, b"def")
    assert stream.dropped_segments == 1
    assert stream.pending_bytes == 3


@st.composite
def shuffled_segments(draw: st.DrawFn) -> list[tuple[int, bytes]]:
    cuts = sorted(draw(st.sets(st.integers(1, len(DATA) - 1), max_size=12)))
    bounds = [0, *cuts, len(DATA)]
    pieces = [(1 + a, DATA[a:b]) for a, b in pairwise(bounds)]
    pieces += draw(st.lists(st.sampled_from(pieces), max_size=5))  # duplicates
    start = draw(st.integers(0, len(DATA) - 2))
    end = draw(st.integers(start + 1, len(DATA)))
    pieces.append((1 + start, DATA[start:end]))  # an overlap carrying the same bytes
    return draw(st.permutations(pieces))


@given(shuffled_segments())
def test_any_order_duplication_and_overlap_give_the_same_bytes(pieces: list[tuple[int, bytes]]) -> None:
    stream = TcpStream()
    stream.start(0)
    assert deliver(stream, pieces) == DATA
