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
from oob_analyzer.cli.config_options import config_option, from_config, recording_settings, sensor_config
from oob_analyzer.cli.monitoring import metrics_option, serving_metrics
from oob_analyzer.cli.options import db_option
from oob_analyzer.cli.params import ListenAddressType
from oob_analyzer.cli.recording import recording_run, writer_options
from oob_analyzer.cli.sources import decoder_options, echo_stats, make_decoder, stats_option
from oob_analyzer.cli.workers_option import analyze, engine_for, preparing_run, worker_count, workers_option
from oob_analyzer.config import ConfigReloader, SensorConfig
from oob_analyzer.config.reload import reload_on_sighup
from oob_analyzer.metrics import PipelineMetrics
from oob_analyzer.pipeline import RequestStream, RunSummary

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
        if packet is not None:
            summary.packets += 1
            summary.bytes += len(packet.data)
        yield packet


def reloading(packets: Iterable[RawPacket | None], reloader: ConfigReloader) -> Iterator[RawPacket | None]:
    """The packets; between two of them (or idle waits), a reload SIGHUP asked for is done."""
    for packet in packets:
        reloader.poll()
        yield packet


def run_live(
    source: UdpMirrorSource | InterfaceSource,
    decoder: PacketDecoder,
    *,
    config: SensorConfig,
    workers: int | None,
    banner: str,
    stats: bool,
    recording: Recording,
    metrics_address: tuple[str, int] | None = None,
) -> None:
    """Analyze the source until SIGINT or SIGTERM, record through the writer, print the summary.

    `workers`, `recording` and `metrics_address` are the options as given: where not given,
    the config file's values apply. SIGHUP reloads the config file (`ConfigReloader`).
    """
    workers_count = worker_count(workers, config, live=True)
    recording = recording_settings(config, **recording)
    metrics_address = from_config("metrics_address", metrics_address, config.metrics)
    engine = engine_for(workers_count, config)  # None with workers: each builds its own
    reloader = ConfigReloader(
        config,
        say=lambda message: click.echo(message, err=True),
        listeners=[engine.apply] if engine is not None else [],  # the pool adds itself when started
    )
    stream = RequestStream(decoder, config.reassembly)
    try:
        with (
            preparing_run(workers_count) as analysis_started,
            recording_run(source=banner, **recording) as run,
            stop_on_signals() as stop,
            reload_on_sighup(reloader),
        ):
            metrics = PipelineMetrics(summary=run.summary, stream=stream, writer=run.writer, source_stats=source.stats)
            with serving_metrics(metrics_address, metrics) as health:

                def started() -> None:
                    # After the handlers (a signal from now on stops cleanly) and once workers have
                    # built their engines: until then packets wait in the kernel, so the banner
                    # says that the analysis runs.
                    analysis_started()
                    click.echo(banner, err=True)
                    health.source_opened()

                try:
                    with health.running():
                        packets = reloading(counted(source.packets(stop.is_set), run.summary), reloader)
                        analyze(
                            packets,
                            workers=workers_count,
                            config=config,
                            engine=engine,
                            stream=stream,
                            sink=run.writer,
                            summary=run.summary,
                            live=True,
                            metrics=metrics,
                            reloader=reloader,
                            started=started,
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
@click.option(
    "--vxlan", "vxlan_address", type=_LISTEN_ADDRESS, help="Receive VXLAN datagrams here (default: sources.vxlan)."
)
@click.option(
    "--geneve", "geneve_address", type=_LISTEN_ADDRESS, help="Receive GENEVE datagrams here (default: sources.geneve)."
)
@click.option(
    "--vni",
    "vnis",
    type=click.IntRange(0, (1 << 24) - 1),
    multiple=True,
    help="Keep only this VNI (repeatable; default: sources.vni, else every VNI).",
)
@click.option(
    "--reuse-port",
    is_flag=True,
    help="Share the port with other listen processes (SO_REUSEPORT): Linux gives each outer "
    "flow (source and destination address and port) to one of them. See docs/scale-out.md.",
)
@db_option
@writer_options
@config_option
@stats_option
@metrics_option
@workers_option(files=False)
def listen(
    *,
    vxlan_address: tuple[str, int] | None,
    geneve_address: tuple[str, int] | None,
    vnis: tuple[int, ...],
    reuse_port: bool,
    config_path: Path | None,
    stats: bool,
    metrics_address: tuple[str, int] | None,
    workers: int | None,
    **recording: Unpack[Recording],
) -> None:
    """Receive mirrored traffic as VXLAN or GENEVE datagrams and record the attacks in it.

    Give --vxlan [ADDR:]PORT (AWS VPC Traffic Mirroring and Azure vTAP send to 4789) or
    --geneve [ADDR:]PORT (AWS Gateway Load Balancer sends to 6081). An ordinary UDP socket:
    no capture privilege is needed, and datagrams up to 64 KiB (jumbo frames) are read whole.
    Without either, the --config file's sources.vxlan or sources.geneve. Runs until
    interrupted (Ctrl-C, SIGTERM), then records what was found and exits 0; SIGHUP reloads
    the config file.
    """
    config = sensor_config(config_path)  # a bad config file is refused before the socket opens
    if vxlan_address is None and geneve_address is None:
        vxlan_address, geneve_address = config.sources.vxlan, config.sources.geneve
    vnis = vnis or config.sources.vnis
    if (vxlan_address is None) == (geneve_address is None):
        raise click.UsageError("give exactly one of --vxlan [ADDR:]PORT and --geneve [ADDR:]PORT")
    kind = "vxlan" if vxlan_address is not None else "geneve"
    host_port = vxlan_address or geneve_address
    assert host_port is not None
    address = MirrorListenAddress(host=host_port[0], port=host_port[1])
    try:
        source = UdpMirrorSource.open(address, vnis=frozenset(vnis), reuse_port=reuse_port)
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
        config=config,
        workers=workers,
        banner=banner,
        stats=stats,
        recording=recording,
        metrics_address=metrics_address,
    )


@click.command()
@click.option("--interface", "-i", metavar="IF", help="Network interface to capture on (default: sources.interface).")
@click.option(
    "--bpf", metavar="FILTER", help="Capture filter in tcpdump syntax, e.g. 'tcp port 80' (default: sources.bpf)."
)
@decoder_options
@db_option
@writer_options
@config_option
@stats_option
@metrics_option
@workers_option(files=False)
def capture(
    *,
    interface: str | None,
    bpf: str | None,
    vxlan_ports: tuple[int, ...],
    geneve_ports: tuple[int, ...],
    config_path: Path | None,
    stats: bool,
    metrics_address: tuple[str, int] | None,
    workers: int | None,
    **recording: Unpack[Recording],
) -> None:
    """Capture on a network interface (promiscuous) and record the attacks seen.

    Needs root or CAP_NET_RAW. Mirror tunnels arriving on the interface are unwrapped.
    Runs until interrupted (Ctrl-C, SIGTERM), then records what was found and exits 0;
    SIGHUP reloads the config file.
    """
    config = sensor_config(config_path)  # a bad config file is refused before capture starts
    interface = interface or config.sources.interface
    if interface is None:
        raise click.UsageError("give --interface IF (or sources.interface in the --config file)")
    bpf = from_config("bpf", bpf, config.sources.bpf)
    try:
        source = InterfaceSource.open(interface, bpf=bpf)
    except CaptureError as exc:
        raise click.ClickException(str(exc)) from exc
    decoder = make_decoder(vxlan_ports, geneve_ports)
    banner = f"capturing on {interface}"
    run_live(
        source,
        decoder,
        config=config,
        workers=workers,
        banner=banner,
        stats=stats,
        recording=recording,
        metrics_address=metrics_address,
    )
