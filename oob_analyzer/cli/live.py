"""`oob-analyzer listen` and `oob-analyzer capture`: analyze live mirror traffic.

`listen` receives VXLAN or GENEVE mirror datagrams (AWS VPC Traffic Mirroring, Gateway
Load Balancer, Azure vTAP) on a UDP socket; `capture` reads an interface (a SPAN port, a
tap). Both record hits like `replay`, run until SIGINT or SIGTERM, then record everything
detected so far and exit 0 with a summary.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TypedDict, Unpack

import click

from capture import (
    DEFAULT_GENEVE_PORT,
    DEFAULT_VXLAN_PORT,
    CaptureError,
    InterfaceSource,
    MirrorListenAddress,
    PacketDecoder,
    RawPacket,
    UdpMirrorSource,
)
from oob_analyzer.cli.detection_options import config_option
from oob_analyzer.cli.options import db_option
from oob_analyzer.cli.params import ListenAddressType
from oob_analyzer.cli.recording import recording_run, writer_options
from oob_analyzer.cli.sources import decoder_options, echo_stats, make_decoder, stats_option
from oob_analyzer.cli.workers_option import analyze, engine_for, workers_option
from oob_analyzer.detection import DetectionEngine
from oob_analyzer.pipeline import RunSummary
from oob_analyzer.workers import choose_workers

__all__ = ["capture", "listen"]

# A mirror target usually listens on every address: a bare port will do; so will a host name.
_LISTEN_ADDRESS = ListenAddressType(port_alone=True, ip_only=False)


class Recording(TypedDict):
    """What `recording_run` needs besides the source: the database and the writer's options."""

    db_url: str
    journal: Path | None
    sample_identical: int | None
    flush_interval: float


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM, with the previous handlers restored afterwards."""
    stop = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def counted(packets: Iterable[RawPacket | None], summary: RunSummary) -> Iterator[RawPacket | None]:
    for packet in packets:
        summary.packets += packet is not None
        yield packet


def run_live(
    source: UdpMirrorSource | InterfaceSource,
    decoder: PacketDecoder,
    *,
    engine: DetectionEngine | None,
    workers: int,
    config_path: Path | None,
    banner: str,
    stats: bool,
    recording: Recording,
) -> None:
    """Analyze the source until SIGINT or SIGTERM, record through the writer, print the summary."""
    try:
        with recording_run(source=banner, **recording) as run, stop_on_signals() as stop:
            click.echo(banner, err=True)  # after the handlers: a signal from now on stops cleanly
            packets = counted(source.packets(stop.is_set), run.summary)
            try:
                analyze(
                    packets,
                    workers=workers,
                    engine=engine,
                    config_path=config_path,
                    sink=run.writer,
                    summary=run.summary,
                    decoder=decoder,
                    live=True,
                )
            finally:
                run.summary.drops += source.stats
    finally:
        source.close()
    if stats:
        echo_stats(run.summary)


def _host_port(address: MirrorListenAddress) -> str:
    host = f"[{address.host}]" if ":" in address.host else address.host
    return f"{host}:{address.port}"


@click.command()
@click.option("--vxlan", "vxlan_address", type=_LISTEN_ADDRESS, help="Receive VXLAN datagrams here.")
@click.option("--geneve", "geneve_address", type=_LISTEN_ADDRESS, help="Receive GENEVE datagrams here.")
@click.option(
    "--vni", "vnis", type=click.IntRange(0, (1 << 24) - 1), multiple=True, help="Keep only this VNI (repeatable)."
)
@db_option
@writer_options
@config_option
@stats_option
@workers_option(files=False)
def listen(
    *,
    vxlan_address: tuple[str, int] | None,
    geneve_address: tuple[str, int] | None,
    vnis: tuple[int, ...],
    config_path: Path | None,
    stats: bool,
    workers: int | None,
    **recording: Unpack[Recording],
) -> None:
    """Receive mirrored traffic as VXLAN or GENEVE datagrams and record the attacks in it.

    Give --vxlan [ADDR:]PORT (AWS VPC Traffic Mirroring and Azure vTAP send to 4789) or
    --geneve [ADDR:]PORT (AWS Gateway Load Balancer sends to 6081). An ordinary UDP socket:
    no capture privilege is needed, and datagrams up to 64 KiB (jumbo frames) are read whole.
    Runs until interrupted (Ctrl-C, SIGTERM), then records what was found and exits 0.
    """
    if (vxlan_address is None) == (geneve_address is None):
        raise click.UsageError("give exactly one of --vxlan [ADDR:]PORT and --geneve [ADDR:]PORT")
    kind = "vxlan" if vxlan_address is not None else "geneve"
    host_port = vxlan_address or geneve_address
    assert host_port is not None
    address = MirrorListenAddress(host=host_port[0], port=host_port[1])
    count = choose_workers(workers, live=True)
    engine = engine_for(count, config_path)  # a bad config file is refused before the socket opens
    try:
        source = UdpMirrorSource.open(address, vnis=frozenset(vnis))
    except CaptureError as exc:
        raise click.ClickException(str(exc)) from exc
    bound = source.address
    # The decoder knows the tunnel by the port the datagram was sent to: this one.
    vxlan_ports = (bound.port,) if kind == "vxlan" else (DEFAULT_VXLAN_PORT,)
    geneve_ports = (bound.port,) if kind == "geneve" else (DEFAULT_GENEVE_PORT,)
    decoder = PacketDecoder(vxlan_ports=vxlan_ports, geneve_ports=geneve_ports)
    banner = f"listening for {kind} on {_host_port(bound)}"
    run_live(
        source,
        decoder,
        engine=engine,
        workers=count,
        config_path=config_path,
        banner=banner,
        stats=stats,
        recording=recording,
    )


@click.command()
@click.option("--interface", "-i", required=True, metavar="IF", help="Network interface to capture on.")
@click.option("--bpf", metavar="FILTER", help="Capture filter in tcpdump syntax, e.g. 'tcp port 80'.")
@decoder_options
@db_option
@writer_options
@config_option
@stats_option
@workers_option(files=False)
def capture(
    *,
    interface: str,
    bpf: str | None,
    vxlan_ports: tuple[int, ...],
    geneve_ports: tuple[int, ...],
    config_path: Path | None,
    stats: bool,
    workers: int | None,
    **recording: Unpack[Recording],
) -> None:
    """Capture on a network interface (promiscuous) and record the attacks seen.

    Needs root or CAP_NET_RAW. Mirror tunnels arriving on the interface are unwrapped.
    Runs until interrupted (Ctrl-C, SIGTERM), then records what was found and exits 0.
    """
    count = choose_workers(workers, live=True)
    engine = engine_for(count, config_path)  # a bad config file is refused before capture starts
    try:
        source = InterfaceSource.open(interface, bpf=bpf)
    except CaptureError as exc:
        raise click.ClickException(str(exc)) from exc
    decoder = make_decoder(vxlan_ports, geneve_ports)
    run_live(
        source,
        decoder,
        engine=engine,
        workers=count,
        config_path=config_path,
        banner=f"capturing on {interface}",
        stats=stats,
        recording=recording,
    )
