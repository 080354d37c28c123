"""`oob-analyzer extract`: the dissector view, one JSON object per HTTP request found."""

from __future__ import annotations

import json
from pathlib import Path

import click

from oob_analyzer.cli.exit_codes import ExitCode
from oob_analyzer.cli.sources import decoder_options, echo_stats, make_decoder, sources_argument, stats_option
from oob_analyzer.pipeline import RunSummary, extract_requests

__all__ = ["extract"]


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
@stats_option
def extract(
    sources: tuple[Path, ...],
    output_format: str,
    vxlan_ports: tuple[int, ...],
    geneve_ports: tuple[int, ...],
    stats: bool,
) -> None:
    """Print every HTTP request found in captures, without detection.

    SOURCE is what `replay` reads: pcap/pcapng files (gzipped or not), directories, -.

    Fields: ts, src, sport, dst, dport, method, host, target, version, headers (list of
    [name, value]), body_length, and tunnel (only for tunnelled traffic: a list of
    [kind, outer source>destination, VNI/key/session id], outermost first). For checking
    reassembly against other dissectors.
    """
    summary = RunSummary()
    for request in extract_requests(sources, summary, make_decoder(vxlan_ports, geneve_ports)):
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
        if request.flow.tunnel:  # the outer layers, outermost first: [kind, outer src>dst, id]
            record["tunnel"] = [list(layer) for layer in request.flow.tunnel]
        click.echo(json.dumps(record, ensure_ascii=False))
    for error in summary.errors:
        click.echo(f"warning: {error}", err=True)
    if stats:
        echo_stats(summary)
    if summary.errors:
        raise SystemExit(ExitCode.INPUT_DAMAGED)
