"""Options the commands that read packets share: where packets come from, how to decode them.

Capture sources (files, directories, `-`), the tunnel ports, and `--stats`, which prints
the counters every run keeps: why packets were passed over, what was odd but decoded.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from capture import DEFAULT_GENEVE_PORT, DEFAULT_VXLAN_PORT, PacketDecoder
from oob_analyzer.pipeline import RunSummary

__all__ = ["decoder_options", "echo_stats", "given_sources", "make_decoder", "sources_argument", "stats_option"]

F = TypeVar("F", bound=Callable[..., Any])
_PORT = click.IntRange(1, 65535)


def sources_argument(function: F) -> F:
    return click.argument(
        "sources",
        nargs=-1,
        type=click.Path(path_type=Path, allow_dash=True),
        metavar="[SOURCE]...",
    )(function)


def given_sources(sources: tuple[Path, ...], configured: tuple[Path, ...]) -> tuple[Path, ...]:
    """The SOURCEs on the command line, else the config file's `sources.files`."""
    if sources or configured:
        return sources or configured
    raise click.UsageError("give at least one SOURCE (or sources.files in the --config file)")


def decoder_options(function: F) -> F:
    function = click.option(
        "--geneve-port",
        "geneve_ports",
        type=_PORT,
        multiple=True,
        default=[DEFAULT_GENEVE_PORT],
        show_default=True,
        help="UDP port of GENEVE mirror traffic (repeat for several).",
    )(function)
    return click.option(
        "--vxlan-port",
        "vxlan_ports",
        type=_PORT,
        multiple=True,
        default=[DEFAULT_VXLAN_PORT],
        show_default=True,
        help="UDP port of VXLAN mirror traffic (repeat for several).",
    )(function)


def stats_option(function: F) -> F:
    return click.option(
        "--stats", is_flag=True, help="Print, on stderr, why packets were passed over and what was odd."
    )(function)


def make_decoder(vxlan_ports: tuple[int, ...], geneve_ports: tuple[int, ...]) -> PacketDecoder:
    return PacketDecoder(vxlan_ports=vxlan_ports, geneve_ports=geneve_ports)


def echo_stats(summary: RunSummary) -> None:
    _echo_counters("counters (frames passed over, by reason; connections; datagrams)", summary.drops)
    _echo_counters("anomalies (odd but decoded)", summary.decode_anomalies)


def _echo_counters(title: str, counters: Counter[str]) -> None:
    click.echo(f"{title}:", err=True)
    if not counters:
        click.echo("  (none)", err=True)
    for name, count in sorted(counters.items(), key=lambda item: (-item[1], item[0])):
        click.echo(f"  {name:<40} {count:>10}", err=True)
