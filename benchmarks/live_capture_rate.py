"""The highest rate at which `oob-analyzer capture` drops nothing, measured over a veth pair.

    sudo .venv/bin/python benchmarks/live_capture_rate.py [--connections 300] [--start 1000] [--max 64000]
    sudo .venv/bin/python benchmarks/live_capture_rate.py --unit mbps --start 10 --max 400

Creates two network namespaces joined by a veth pair (nothing touches the host's own
interfaces; both are deleted at the end, whatever happens), generates a capture of realistic
HTTP/1.1 traffic with a few percent attacks (`full_pipeline.generate`), and replays it once
offline (`replay --stats`) for the reference counters. Then, rate after rate, runs `capture
--interface` (with `--bpf tcp --stats`) in one namespace and `tcpreplay --pps R` (or
`--mbps R`) in the other, the file looped with `--unique-ip` (each loop's connections get
new addresses, so no two loops share a connection) for about `--seconds` seconds. A rate
passes when:
- the kernel dropped nothing (`kernel_drops`, from PACKET_STATISTICS),
- every frame sent was captured and every request of every loop was parsed,
- every reassembly counter equals the offline run's times the loops (no gap, no eviction,
  nothing picked up midway: our own drops).
The rate doubles until one fails, then two bisection steps narrow the edge. Prints a table
and the highest passing rate, as asked and as tcpreplay achieved it. `behind` is how long
the capture still worked after the last frame was sent (stopping included, about a
second): the capture's 32 MiB receive buffer absorbs a burst, so a rate can pass for
`--seconds` while the capture falls behind; a large `behind` says so, and a longer
`--seconds` finds the sustained rate. The machine is shared:
tcpreplay and the capture compete for the same cores as everything else, so the edge moves
from run to run; repeat it before quoting it.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.full_pipeline import generate

OOB_ANALYZER = str(Path(sys.executable).with_name("oob-analyzer"))
# Counters that say what was seen, not what was lost; they are compared separately.
_SEEN = {"frames", "kernel_drops"}


@dataclass(frozen=True, slots=True)
class VethPair:
    capture_namespace: str
    capture_interface: str
    replay_namespace: str
    replay_interface: str


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=20)


@contextmanager
def veth_pair() -> Iterator[VethPair]:
    """Two namespaces of our own and a veth between them; deleted on the way out."""
    tag = secrets.token_hex(3)
    pair = VethPair(f"oobrate-c-{tag}", f"oobc{tag}", f"oobrate-r-{tag}", f"oobr{tag}")
    try:
        _ip("netns", "add", pair.capture_namespace)
        _ip("netns", "add", pair.replay_namespace)
        _ip("link", "add", pair.capture_interface, "type", "veth", "peer", "name", pair.replay_interface)
        _ip("link", "set", pair.capture_interface, "netns", pair.capture_namespace)
        _ip("link", "set", pair.replay_interface, "netns", pair.replay_namespace)
        _ip("-n", pair.capture_namespace, "link", "set", pair.capture_interface, "up")
        _ip("-n", pair.replay_namespace, "link", "set", pair.replay_interface, "up")
        yield pair
    finally:  # deleting a namespace deletes the veth end in it, and with it the pair
        for namespace in (pair.capture_namespace, pair.replay_namespace):
            subprocess.run(["ip", "netns", "del", namespace], check=False, capture_output=True, timeout=20)


@dataclass(frozen=True, slots=True)
class Reference:
    """What one offline replay of the file saw."""

    packets: int
    requests: int
    hits: int
    counters: Counter[str]


_SUMMARY = re.compile(r"(\d+) packets, (\d+) requests, (\d+) hits")
_COUNTER = re.compile(r"^  (\S+)\s+(\d+)$")


def parse_run(stdout: str, stderr: str) -> tuple[int, int, int, Counter[str]]:
    """Packets, requests, hits (the summary line) and the `--stats` counters."""
    match = _SUMMARY.search(stdout)
    if match is None:
        raise SystemExit(f"no summary line in {stdout!r}; stderr: {stderr[-2000:]}")
    counters: Counter[str] = Counter()
    in_counters = False
    for line in stderr.splitlines():
        if line.startswith("counters"):
            in_counters = True
        elif line.startswith("anomalies"):
            in_counters = False
        elif in_counters and (counter := _COUNTER.match(line)):
            counters[counter.group(1)] = int(counter.group(2))
    packets, requests, hits = (int(group) for group in match.groups())
    return packets, requests, hits, counters


def offline_reference(pcap: Path, scratch: Path) -> Reference:
    database = scratch / "reference.db"
    command = [OOB_ANALYZER, "replay", str(pcap), "--stats", "--db", f"sqlite:///{database}"]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return Reference(*parse_run(result.stdout, result.stderr))


@dataclass(slots=True)
class Step:
    rate: float
    loops: int
    sent: int = 0
    failed: int = 0
    actual_pps: float = 0.0
    actual_mbps: float = 0.0
    packets: int = 0
    requests: int = 0
    expected_requests: int = 0
    hits: int = 0
    kernel_drops: int = 0
    our_drops: dict[str, int] = field(default_factory=dict)
    behind: float = 0.0  # seconds the capture still worked after the last frame was sent

    @property
    def passed(self) -> bool:
        return (
            self.kernel_drops == 0
            and not self.our_drops
            and self.failed == 0
            and self.packets == self.sent
            and self.requests == self.expected_requests
        )


_ACTUAL = re.compile(r"Actual: (\d+) packets")
_RATED = re.compile(r"Rated: [\d.]+ Bps, ([\d.]+) Mbps, ([\d.]+) pps")
_FAILED = re.compile(r"Failed packets:\s+(\d+)")


def run_step(pair: VethPair, pcap: Path, reference: Reference, *, rate: float, unit: str, seconds: float) -> Step:
    per_second = rate if unit == "pps" else rate * 1e6 / 8 / (pcap.stat().st_size / reference.packets)
    loops = max(1, math.ceil(per_second * seconds / reference.packets))
    step = Step(rate=rate, loops=loops, expected_requests=loops * reference.requests)
    with tempfile.TemporaryDirectory(prefix="oobrate-step-") as scratch:
        capture = subprocess.Popen(
            [
                *("ip", "netns", "exec", pair.capture_namespace, OOB_ANALYZER, "capture"),
                *("--interface", pair.capture_interface, "--bpf", "tcp", "--stats"),
                *("--db", f"sqlite:///{scratch}/live.db", "--journal", f"{scratch}/journal"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert capture.stderr is not None
            banner = capture.stderr.readline()
            if not banner.startswith("capturing on"):
                raise SystemExit(f"capture did not start: {banner}{capture.stderr.read()[-2000:]}")
            replay = subprocess.run(
                [
                    *("ip", "netns", "exec", pair.replay_namespace, "tcpreplay", "--preload-pcap"),
                    *("-i", pair.replay_interface, f"--{unit}", f"{rate:g}", "--loop", str(loops), "--unique-ip"),
                    str(pcap),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            sent_at = time.monotonic()
            time.sleep(0.5)  # the last frames cross the pair
            capture.send_signal(signal.SIGINT)  # stops, then reads what the kernel queued
            stdout, stderr = capture.communicate(timeout=600)
            step.behind = time.monotonic() - sent_at
        finally:
            if capture.poll() is None:
                capture.kill()
                capture.wait()
    _read_tcpreplay(step, replay.stdout + replay.stderr)
    step.packets, step.requests, step.hits, counters = parse_run(stdout, stderr)
    step.kernel_drops = counters["kernel_drops"]
    for name in (set(counters) | set(reference.counters)) - _SEEN:
        expected = loops * reference.counters[name]
        if counters[name] != expected:
            step.our_drops[name] = counters[name] - expected
    return step


def _read_tcpreplay(step: Step, output: str) -> None:
    actual, rated, failed = _ACTUAL.search(output), _RATED.search(output), _FAILED.search(output)
    if actual is None or rated is None:
        raise SystemExit(f"cannot read tcpreplay's report: {output[-2000:]}")
    step.sent = int(actual.group(1))
    step.actual_mbps, step.actual_pps = float(rated.group(1)), float(rated.group(2))
    step.failed = int(failed.group(1)) if failed else 0


def print_step(step: Step, unit: str) -> None:
    verdict = "pass" if step.passed else "FAIL"
    ours = ", ".join(f"{name} {delta:+d}" for name, delta in sorted(step.our_drops.items())) or "-"
    print(
        f"{step.rate:>9g} {unit:4} {step.actual_pps:>9.0f} {step.actual_mbps:>8.1f} {step.loops:>5} "
        f"{step.sent:>8} {step.packets:>8} {step.kernel_drops:>7} {step.requests:>7}/{step.expected_requests:<7} "
        f"{step.behind:>6.1f} {verdict}  {ours}",
        flush=True,
    )


def search(pair: VethPair, pcap: Path, reference: Reference, args: argparse.Namespace) -> list[Step]:
    """Double the rate until a step fails, then bisect twice between the last pass and it."""
    steps: list[Step] = []
    rate, best, worst = args.start, None, None
    while rate <= args.max:
        step = run_step(pair, pcap, reference, rate=rate, unit=args.unit, seconds=args.seconds)
        print_step(step, args.unit)
        steps.append(step)
        if not step.passed:
            worst = rate
            break
        best, rate = rate, rate * 2
    if best is None or worst is None:
        return steps
    for _ in range(args.bisect):
        middle = round((best + worst) / 2, 1)
        step = run_step(pair, pcap, reference, rate=middle, unit=args.unit, seconds=args.seconds)
        print_step(step, args.unit)
        steps.append(step)
        best, worst = (middle, worst) if step.passed else (best, middle)
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=300, help="connections in the generated file")
    parser.add_argument("--unit", choices=("pps", "mbps"), default="pps")
    parser.add_argument("--start", type=float, default=1000, help="first rate (pps or Mbps)")
    parser.add_argument("--max", type=float, default=64000, help="stop doubling past this rate")
    parser.add_argument("--seconds", type=float, default=15, help="about how long each rate is sent")
    parser.add_argument("--bisect", type=int, default=2, help="bisection steps after the first failure")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root: network namespaces, a veth pair, AF_PACKET")
    for tool in ("ip", "tcpreplay"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed")
    with tempfile.TemporaryDirectory(prefix="oobrate-") as scratch_name:
        scratch = Path(scratch_name)
        pcap = scratch / "live.pcap"
        generate(pcap, scratch / "live.truth.jsonl", connections=args.connections, attack_share=0.03, seed=args.seed)
        reference = offline_reference(pcap, scratch)
        print(
            f"generated {pcap.name}: {reference.packets} packets, {pcap.stat().st_size / 2**20:.1f} MiB, "
            f"{reference.requests} requests, {reference.hits} hits (offline replay); ~{args.seconds:g} s per rate"
        )
        print(
            f"{'asked':>14} {'sent pps':>9} {'Mbps':>8} {'loops':>5} {'sent':>8} {'captured':>8} "
            f"{'k.drops':>7} {'requests':>15} {'behind':>6} verdict  our drops (counter: difference)"
        )
        with veth_pair() as pair:
            steps = search(pair, pcap, reference, args)
    passed = [step for step in steps if step.passed]
    if not passed:
        print(f"no rate passed; the lowest tried was {args.start:g} {args.unit}")
        sys.exit(1)
    best = max(passed, key=lambda step: step.rate)
    print(
        f"highest rate with zero drops: {best.rate:g} {args.unit} asked, {best.actual_pps:.0f} pps / "
        f"{best.actual_mbps:.1f} Mbps sent by tcpreplay ({best.sent} frames, {best.requests} requests)"
    )
    if all(step.passed for step in steps):
        print(f"(every rate up to --max passed: the edge is above {best.rate:g} {args.unit})")


if __name__ == "__main__":
    main()
