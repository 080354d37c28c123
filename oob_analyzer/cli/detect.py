"""`oob-analyzer detect`: analyze one raw HTTP request and print its hits (for tuning)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import BinaryIO

import click

from oob_analyzer.cli.config_options import config_option, sensor_config
from oob_analyzer.cli.tables import render_table
from oob_analyzer.config import build_engine
from oob_analyzer.detection import AttackHit
from oob_analyzer.pipeline import RequestAnalyzer
from reassembly import HttpRequestParser
from reassembly.events import FlowKey, HttpRequest

__all__ = ["RawRequestError", "analyze_raw_request", "detect", "parse_raw_request"]

MAX_REQUEST_BYTES = 16 * 1024 * 1024
_FLOW = FlowKey(client="0.0.0.0", client_port=0, server="0.0.0.0", server_port=0)
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_FRAMING_HEADER = re.compile(rb"^(?:content-length|transfer-encoding)\s*:", re.IGNORECASE | re.MULTILINE)


class RawRequestError(ValueError):
    """The input holds no HTTP request."""


def parse_raw_request(data: bytes) -> HttpRequest:
    """The first HTTP/1.x request in `data`, parsed by the same parser as live traffic.

    A request pasted by hand often lacks its Content-Length: the bytes after the head are
    then taken as the body, as the user meant.
    """
    data = _with_content_length(data.lstrip(b"\r\n"))
    parser = HttpRequestParser(_FLOW)
    parser.receive_data(data, 0.0)
    event = parser.next_event()
    if isinstance(event, HttpRequest):
        return event
    closing = parser.close()
    if closing is not None:
        return closing
    shown = data[:60] + (b"..." if len(data) > 60 else b"")
    raise RawRequestError(f"no HTTP request found in the input (starts {shown!r})")


def analyze_raw_request(data: bytes, engine: RequestAnalyzer) -> list[AttackHit]:
    return engine.analyze(parse_raw_request(data))


@click.command()
@click.argument("source", default="-", type=click.File("rb"))
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table for people, json (one array) for programs.",
)
@config_option
def detect(source: BinaryIO, output_format: str, config_path: Path | None) -> None:
    """Analyze one raw HTTP request from SOURCE (a file, or - for stdin) and print its hits.

    The request is read as sent on the wire (request line, headers, blank line, body); a
    body pasted without its Content-Length is taken whole. Hits are printed one per attack
    type with the point, the rule and the payload that matched. With --config, the request
    is judged as the sensor would: detection policy, applications (a route with mode off
    prints no hit), allowed hosts.
    """
    engine = build_engine(sensor_config(config_path))  # before reading: a bad file is refused at once
    data = source.read(MAX_REQUEST_BYTES + 1)
    if len(data) > MAX_REQUEST_BYTES:
        raise click.ClickException(f"the request is larger than {MAX_REQUEST_BYTES} bytes")
    try:
        hits = analyze_raw_request(data, engine)
    except RawRequestError as exc:
        raise click.ClickException(str(exc)) from exc
    for reason in engine.counters:  # the config says not to judge it: say why, not "no attack"
        click.echo(f"not judged: {reason.replace('_', ' ')}", err=True)
    _print_hits(hits, output_format)


def _print_hits(hits: list[AttackHit], output_format: str) -> None:
    if output_format == "json":
        records = [
            {"type": h.attack_type, "point": h.point, "payload": h.payload, "rule": h.rule, "reason": h.reason}
            for h in hits
        ]
        click.echo(json.dumps(records, indent=2, ensure_ascii=False))
        return
    if not hits:
        click.echo("no attack found")
        return
    columns = [("TYPE", 14), ("POINT", 20), ("RULE", 22), ("PAYLOAD", 20)]
    click.echo(render_table(columns, [(h.attack_type, h.point, h.rule, h.payload) for h in hits]))
    for hit in hits:
        click.echo(f"{hit.rule}: {hit.reason}")


def _with_content_length(data: bytes) -> bytes:
    end = _HEAD_END.search(data)
    if end is None or end.end() == len(data):
        return data
    head, body = data[: end.start()], data[end.end() :]
    if _FRAMING_HEADER.search(head):
        return data
    newline = b"\r\n" if b"\r\n" in head else b"\n"
    return head + newline + b"Content-Length: " + str(len(body)).encode() + newline + newline + body
