"""`oob-analyzer extract`: the dissector view, one JSON object per HTTP request found."""

from __future__ import annotations

import json
from pathlib import Path

import click

from oob_analyzer.cli.exit_codes import ExitCode
from oob_analyzer.pipeline import RunSummary, extract_requests

__all__ = ["extract"]


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["jsonl"]),
    default="jsonl",
    show_default=True,
    help="jsonl: one JSON object per request.",
)
def extract(files: tuple[Path, ...], output_format: str) -> None:
    """Print every HTTP request found in pcap/pcapng FILES, without detection.

    Fields: ts, src, sport, dst, dport, method, host, target, version, headers (list of
    [name, value]), body_length. For checking reassembly against other dissectors.
    """
    summary = RunSummary()
    for request in extract_requests(files, summary):
        record = {
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
        }
        click.echo(json.dumps(record, ensure_ascii=False))
    for error in summary.errors:
        click.echo(f"warning: {error}", err=True)
    if summary.errors:
        raise SystemExit(ExitCode.INPUT_DAMAGED)
