"""`oob-analyzer extract`: the dissector view, one JSON object per HTTP request found."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import click

from oob_analyzer.cli.config_options import config_option, sensor_config
from oob_analyzer.cli.exit_codes import ExitCode
from oob_analyzer.cli.sources import (
    decoder_options,
    echo_stats,
    given_sources,
    make_decoder,
    sources_argument,
    stats_option,
)
from oob_analyzer.pipeline import RunSummary, extract_events
from reassembly import Anomaly, FlowKey, HttpRequest, HttpResponse, ReassemblyEvent

__all__ = ["extract", "request_records"]

# Requests waiting for their response before being printed. Past this many the oldest is
# printed without one: a one-sided mirror never pairs anything, and memory stays bounded.
MAX_UNANSWERED = 10_000
MAX_ANOMALIES_PER_REQUEST = 100


@click.command()
@sources_argument
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["jsonl"]),
    default="jsonl",
    show_default=True,
    help="jsonl: one JSON object per request.",
)
@decoder_options
@config_option
@stats_option
def extract(
    *,
    sources: tuple[Path, ...],
    output_format: str,
    vxlan_ports: tuple[int, ...],
    geneve_ports: tuple[int, ...],
    config_path: Path | None,
    stats: bool,
) -> None:
    """Print every HTTP request found in captures, without detection.

    SOURCE is what `replay` reads: pcap/pcapng files (gzipped or not), directories, -;
    without one, the --config file's sources.files. Of the config file, only sources and
    the reassembly limits apply here.

    Fields: ts, src, sport, dst, dport, method, host, target, version, headers (list of
    [name, value]), body_length, complete, anomalies (the request's own, then those of its
    connection since the previous request, e.g. tcp_gap, overlap_conflict), response
    ({status, reason, headers, body_length, body_start} or null when none was seen), and
    tunnel (only for tunnelled traffic: a list of [kind, outer source>destination,
    VNI/key/session id], outermost first). A request is printed once its response arrived,
    or at the end. For checking reassembly against other dissectors.
    """
    config = sensor_config(config_path)
    sources = given_sources(sources, config.sources.files)
    summary = RunSummary()
    events = extract_events(sources, summary, make_decoder(vxlan_ports, geneve_ports), config.reassembly)
    for record in request_records(events):
        click.echo(json.dumps(record, ensure_ascii=False))
    for error in summary.errors:
        click.echo(f"warning: {error}", err=True)
    if stats:
        echo_stats(summary)
    if summary.errors:
        raise SystemExit(ExitCode.INPUT_DAMAGED)


def request_records(events: Iterable[ReassemblyEvent]) -> Iterator[dict[str, Any]]:
    """One record per request, with its response and anomalies, from reassembly events."""
    waiting: OrderedDict[tuple[FlowKey, int], dict[str, Any]] = OrderedDict()
    # Responses that came before their request was complete (a 413 during an upload).
    early: OrderedDict[tuple[FlowKey, int], dict[str, Any]] = OrderedDict()
    connection_anomalies: dict[FlowKey, list[str]] = {}
    for event in events:
        if isinstance(event, HttpRequest):
            record = _request_record(event, connection_anomalies.pop(event.flow, []))
            record["response"] = early.pop((event.flow, event.index), None)
            if record["response"] is not None:
                yield record
                continue
            waiting[(event.flow, event.index)] = record
            if len(waiting) > MAX_UNANSWERED:
                yield waiting.popitem(last=False)[1]
        elif isinstance(event, HttpResponse) and event.request is not None and _is_final(event):
            key = (event.flow, event.request.index)
            answered = waiting.pop(key, None)
            if answered is not None:
                answered["response"] = _response_record(event)
                yield answered
            else:
                early[key] = _response_record(event)
                if len(early) > MAX_UNANSWERED:
                    early.popitem(last=False)
        elif isinstance(event, Anomaly):
            names = connection_anomalies.setdefault(event.flow, [])
            if len(names) < MAX_ANOMALIES_PER_REQUEST:
                names.append(event.name)
            if len(connection_anomalies) > MAX_UNANSWERED:  # flows that never send a request
                del connection_anomalies[next(iter(connection_anomalies))]
    yield from waiting.values()


def _is_final(response: HttpResponse) -> bool:
    """1xx responses are interim (100 Continue), except 101 Switching Protocols."""
    return response.status >= 200 or response.status == 101


def _request_record(request: HttpRequest, connection_anomalies: list[str]) -> dict[str, Any]:
    return {
        "ts": round(request.ts, 6),
        "src": request.flow.client,
        "sport": request.flow.client_port,
        "dst": request.flow.server,
        "dport": request.flow.server_port,
        "method": request.method,
        "host": request.host,
        "target": request.target,
        "version": request.version,
        "headers": [list(pair) for pair in request.headers],
        "body_length": request.body_length,
        "complete": request.complete,
        "anomalies": [*request.anomalies, *connection_anomalies],
        "response": None,
    } | ({"tunnel": [list(layer) for layer in request.flow.tunnel]} if request.flow.tunnel else {})


def _response_record(response: HttpResponse) -> dict[str, Any]:
    return {
        "status": response.status,
        "reason": response.reason,
        "headers": [list(pair) for pair in response.headers],
        "body_length": response.body_length,
        "body_start": response.body[:64].decode("latin-1"),
        "complete": response.complete,
        "anomalies": list(response.anomalies),
    }
