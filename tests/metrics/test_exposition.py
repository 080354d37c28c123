"""Samples add up and survive pickling; the exposition parses back to what was collected."""

from __future__ import annotations

import pickle

import pytest

from oob_analyzer.metrics import FAMILIES, PREFIX, MetricsSample, render
from tests.metrics.promtext import parse


def test_a_sample_renders_and_parses_back_with_help_type_and_total() -> None:
    sample = MetricsSample.of(
        [
            ("packets", {}, 1234),
            ("hits", {"type": "sqli"}, 3),
            ("hits", {"type": "xss"}, 2),
            ("flows_active", {}, 17),
            ("writer_lag_seconds", {}, 0.25),
        ]
    )
    parsed = parse(render(sample))
    assert parsed.value("oob_analyzer_packets_total") == 1234
    assert parsed.family("oob_analyzer_hits_total") == {(("type", "sqli"),): 3, (("type", "xss"),): 2}
    assert parsed.value("oob_analyzer_flows_active") == 17
    assert parsed.value("oob_analyzer_writer_lag_seconds") == 0.25
    assert parsed.types["oob_analyzer_packets_total"] == "counter"
    assert parsed.types["oob_analyzer_flows_active"] == "gauge"
    # Every family is announced, with its help, and shows 0 before anything happened.
    for family in FAMILIES.values():
        exposed = PREFIX + family.name + ("_total" if family.kind == "counter" else "")
        assert parsed.helps[exposed] == family.help
    assert parsed.value("oob_analyzer_responses_total") == 0


def test_label_values_are_escaped() -> None:
    hostile = 'a"b\\c\nd} e="f'
    parsed = parse(render(MetricsSample.of([("anomalies", {"name": hostile}, 1)])))
    assert parsed.family("oob_analyzer_anomalies_total") == {(("name", hostile),): 1}


def test_the_capture_loss_ratio_is_derived_from_the_summed_counters() -> None:
    one = MetricsSample.of([("capture_loss_acked_bytes", {}, 1000), ("capture_loss_gap_bytes", {}, 10)])
    two = MetricsSample.of([("capture_loss_acked_bytes", {}, 3000), ("capture_loss_gap_bytes", {}, 0)])
    assert parse(render(one)).value("oob_analyzer_capture_loss_ratio") == 0.01
    assert parse(render(one + two)).value("oob_analyzer_capture_loss_ratio") == 10 / 4000
    assert parse(render(MetricsSample())).value("oob_analyzer_capture_loss_ratio") == 0


def test_samples_from_workers_add_up_after_pickling() -> None:
    worker = MetricsSample.of(
        [("packets", {}, 10), ("hits", {"type": "sqli"}, 1), ("writer_lag_seconds", {}, 2.0), ("flows_active", {}, 3)]
    )
    other = MetricsSample.of(
        [("packets", {}, 5), ("hits", {"type": "xss"}, 4), ("writer_lag_seconds", {}, 0.5), ("flows_active", {}, 4)]
    )
    total = pickle.loads(pickle.dumps(worker)) + pickle.loads(pickle.dumps(other))
    assert total.get("packets") == 15
    assert (total.get("hits", type="sqli"), total.get("hits", type="xss")) == (1, 4)
    assert total.get("flows_active") == 7  # gauges of separate workers' flows add
    assert total.get("writer_lag_seconds") == 2.0  # a lag is the worst one, not a sum
    assert worker.get("packets") == 10  # adding made a new sample


def test_an_unknown_family_is_refused() -> None:
    with pytest.raises(KeyError, match="unknown metric family 'pakets'"):
        MetricsSample.of([("pakets", {}, 1)])
