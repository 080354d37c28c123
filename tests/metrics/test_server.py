"""The metrics server over a real socket on 127.0.0.1: paths, status codes, readiness reasons."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from oob_analyzer.metrics import CONTENT_TYPE, Health, MetricsSample, MetricsServer
from tests.metrics.promtext import parse


def get(port: int, path: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


@pytest.fixture
def served() -> Iterator[tuple[int, Health, list[int]]]:
    health, scrapes = Health(), []

    def collect() -> MetricsSample:
        scrapes.append(1)
        return MetricsSample.of([("packets", {}, len(scrapes))])

    server = MetricsServer("127.0.0.1", 0, collect=collect, health=health)
    server.start()
    try:
        yield server.address[1], health, scrapes
    finally:
        server.close()


def test_metrics_are_collected_at_each_scrape(served: tuple[int, Health, list[int]]) -> None:
    port, _, _ = served
    first = get(port, "/metrics")
    second = get(port, "/metrics")
    assert first[:2] == (200, CONTENT_TYPE)
    assert parse(first[2]).value("oob_analyzer_packets_total") == 1
    assert parse(second[2]).value("oob_analyzer_packets_total") == 2


def test_health_and_readiness_follow_the_run(served: tuple[int, Health, list[int]]) -> None:
    port, health, _ = served
    assert get(port, "/healthz")[0::2] == (503, "the analysis loop is not running\n")
    problem: list[str] = []
    health.add_check(lambda: problem[0] if problem else None)
    with health.running():
        assert get(port, "/healthz")[0::2] == (200, "ok\n")
        assert get(port, "/ready")[0::2] == (503, "the source is not open yet\n")
        health.source_opened()
        assert get(port, "/ready")[0::2] == (200, "ok\n")
        problem.append("the database is unreachable")
        assert get(port, "/ready")[0::2] == (503, "the database is unreachable\n")
        assert get(port, "/healthz")[0] == 200  # alive all the same
    assert get(port, "/healthz")[0] == 503


def test_other_paths_are_404_and_the_query_string_is_ignored(served: tuple[int, Health, list[int]]) -> None:
    port, _, scrapes = served
    assert get(port, "/")[0] == 404
    assert get(port, "/metrics/x")[0] == 404
    assert get(port, "/metrics?name[]=packets")[0] == 200
    assert len(scrapes) == 1  # a 404 collects nothing
