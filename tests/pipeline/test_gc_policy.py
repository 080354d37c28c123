"""The collector's settings while packets are analyzed (`gc_policy.fewer_collections`).

What holds inside the block: the young generation's threshold is raised, what existed before
is frozen out of collections, cyclic garbage made inside is still collected. What holds after
it (even when the block raised): the previous settings, nothing left frozen. And the loops that
analyze packets in this process run inside it.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from oob_analyzer.detection import AttackHit
from oob_analyzer.gc_policy import YOUNG_COLLECTION_THRESHOLD, fewer_collections
from oob_analyzer.pipeline import (
    RequestStream,
    RunSummary,
    analyze_event_runs,
    analyze_packets,
    file_event_runs,
    iter_packets,
)
from reassembly import HttpRequest
from tests.paths import SAMPLES
from tests.workers.runs import ListSink


@pytest.fixture(autouse=True)
def nothing_frozen() -> Iterator[None]:
    assert gc.get_freeze_count() == 0, "a test before this one left objects frozen"
    before = gc.get_threshold()
    yield
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def _tracked(thing: object) -> bool:
    """Whether a collection of the oldest generation would walk `thing` (frozen objects it never does)."""
    return any(each is thing for each in gc.get_objects())


def test_inside_the_block_the_young_are_collected_less_often_and_the_old_never() -> None:
    before = gc.get_threshold()
    existing = _Node()
    assert _tracked(existing)
    with fewer_collections():
        assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, *before[1:])
        assert not _tracked(existing)
        made_inside = _Node()
        assert _tracked(made_inside)
    assert gc.get_threshold() == before
    assert _tracked(existing)


def test_cyclic_garbage_made_inside_the_block_is_still_collected() -> None:
    with fewer_collections():
        first, second = _Node(), _Node()
        first.other, second.other = second, first
        gone = weakref.ref(first)
        del first, second
        gc.collect()
        assert gone() is None


def test_the_settings_come_back_when_the_block_raises() -> None:
    with pytest.raises(KeyError), fewer_collections():
        raise KeyError("stop")
    # (the fixture checks the threshold and the freeze)


def test_a_nested_block_leaves_the_freeze_to_the_outermost() -> None:
    with fewer_collections():
        with fewer_collections():
            pass
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] == YOUNG_COLLECTION_THRESHOLD


class _SettingsSpy:
    """An engine that notes the collector's settings at each request it judges."""

    def __init__(self) -> None:
        self.seen: set[tuple[int, bool]] = set()

    def analyze(self, request: HttpRequest) -> list[AttackHit]:
        self.seen.add((gc.get_threshold()[0], gc.get_freeze_count() > 0))
        return []


SAMPLE = SAMPLES / "mirror-http.pcap"


def test_the_record_path_judges_inside_the_block() -> None:
    engine, summary, stream = _SettingsSpy(), RunSummary(), RequestStream()
    runs = file_event_runs(stream, [SAMPLE], summary)
    assert runs is not None
    analyze_event_runs(runs, engine=engine, sink=ListSink(), summary=summary, stream=stream)
    assert summary.requests > 0
    assert engine.seen == {(YOUNG_COLLECTION_THRESHOLD, True)}


def test_packet_by_packet_judges_inside_the_block() -> None:
    engine, summary = _SettingsSpy(), RunSummary()
    analyze_packets(iter_packets([SAMPLE], summary), engine=engine, sink=ListSink(), summary=summary)
    assert summary.requests > 0
    assert engine.seen == {(YOUNG_COLLECTION_THRESHOLD, True)}
