"""A worker process judges with the collector's settings of `gc_policy`, as the in-process loop does."""

from __future__ import annotations

import dataclasses
import functools
import gc

from oob_analyzer.detection import AttackHit, DetectionEngine
from oob_analyzer.detection.detectors import SqlInjectionDetector
from oob_analyzer.gc_policy import YOUNG_COLLECTION_THRESHOLD
from reassembly import HttpRequest
from tests.builders import ethernet_frame, ipv4_packet, raw_packet, tcp_header
from tests.workers.runs import run_packets_in_workers

ATTACK = b"GET /item?id=1%27%20OR%20%271%27%3D%271 HTTP/1.1\r\nHost: shop.example.com\r\n\r\n"


class SettingsReportingEngine(DetectionEngine):
    """Its hits say, in `reason`, the collector's settings the worker judged them with."""

    def analyze(self, request: HttpRequest, *, application: str = "") -> list[AttackHit]:
        settings = f"threshold={gc.get_threshold()[0]} frozen={gc.get_freeze_count() > 0}"
        return [dataclasses.replace(hit, reason=settings) for hit in super().analyze(request, application=application)]


def settings_reporting_engine() -> DetectionEngine:
    return SettingsReportingEngine([SqlInjectionDetector()])


def test_each_worker_judges_with_fewer_collections() -> None:
    packets = [
        raw_packet(ethernet_frame(ipv4_packet(tcp_header(sport=1024 + n) + ATTACK)), ts=1.0 + n / 1000)
        for n in range(8)  # eight connections: both workers get some
    ]
    _, sink = run_packets_in_workers(packets, 2, functools.partial(settings_reporting_engine))
    assert len(sink.hits) == 8
    assert {hit.reason for hit in sink.hits} == {f"threshold={YOUNG_COLLECTION_THRESHOLD} frozen=True"}
