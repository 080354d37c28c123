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


def test_skipping_a_hole_reports_its_size_and_delivers_what_follows() -> None:
    stream = TcpStream()
    stream.start(0)
    assert stream.add(1, b"ab") == b"ab"
    assert stream.add(10, b"xyz", ts=5.0) == b""
    assert stream.add(13, b"!", ts=6.0) == b""
    assert stream.pending_bytes == 4
    assert stream.skip_hole() == (7, [(b"xyz", 5.0, None), (b"!", 6.0, None)])
    assert (stream.pending_bytes, stream.has_pending) == (0, False)
    assert stream.add(3, b"late") == b""  # the hole's bytes, arriving after it was given up
    assert stream.skip_hole() == (0, [])


def test_conflicting_retransmission_is_counted_and_the_first_copy_wins() -> None:
    stream = TcpStream()
    stream.start(0)
    assert stream.add(1, b"GET /a") == b"GET /a"
    assert stream.add(1, b"GET /a") == b""
    assert stream.overlap_conflicts == 0
    assert stream.add(5, b"/bcd") == b"cd"  # "/b" overlaps "/a": the first copy wins
    assert stream.overlap_conflicts == 1


def test_conflicting_early_segments_are_counted() -> None:
    stream = TcpStream()
    stream.start(0)
    stream.add(5, b"abc")
    stream.add(5, b"abXdef")
    assert stream.overlap_conflicts == 1  # same start, different bytes
    stream.add(7, b"ZZ")
    assert stream.add(1, b"1234") == b"1234abcdef"
    assert stream.overlap_conflicts == 2  # found when "ZZ" met the delivered "cd"


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
