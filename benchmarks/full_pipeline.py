"""The full pipeline (decode, reassembly, detection, storage into SQLite) on a large generated
capture of realistic HTTP/1.1 traffic, against tshark on the same file in the same run.

    python benchmarks/full_pipeline.py [--connections 12000] [--attack-share 0.03] [--workers N]
    python benchmarks/full_pipeline.py --connections 60000       # a bigger capture
    python benchmarks/full_pipeline.py --keep DIR                # keep the capture, truth and hits.db
    python benchmarks/full_pipeline.py --runs 3                  # three timed runs, interleaved

The capture (written with `reassembly_generate.Connection`): keep-alive connections in both
directions, each request answered (HTML or JSON, Content-Length or chunked). Benign requests
are generated (GET with queries, form and JSON POSTs, PUT, PATCH, DELETE, HEAD, cookies, bearer
tokens, names with apostrophes, free text) plus the corpus's benign look-alikes (`false-pos`,
../shared/corpus); about `--attack-share` of the requests are the corpus's attacks, each last on
its connection, after zero to two benign requests by the same client. `FILE.truth.jsonl` says,
per request, its connection, method, target and label.

Then `oob-analyzer replay FILE --db sqlite:///...` runs as a real process (with `--workers N`
when given and when `replay` has that option), and on the same file `tshark -n -r FILE -Y
http.request` (the peer; -n so that no DNS lookup is timed) and the lighter `... -T fields -e
frame.number`; all are timed (wall, and CPU of the child processes). The hits are read back from
the database: a request counts as flagged when a hit has its client address and port, method
and target. Prints the times, the ratio (target: ours at least 5x faster), the share of the
generated attacks found (target >= 95 %) and of the benign requests flagged (target <= 0.5 %).
Exits 1 when a target is missed. On a shared machine wall times are noisy: the CPU ratio and
repeated runs say more.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.benign_traffic import make_benign_request, make_benign_response
from benchmarks.detection_corpus import LabelledRequest, load_corpus
from benchmarks.reassembly_generate import Connection, Impairments, merged, start_of, write_pcap
from oob_analyzer.workers import choose_workers
from storage import AttackStore, HitFilter, HitQueries

RequestKey = tuple[str, int, str, str]  # client, client port, method, target


@dataclass(frozen=True, slots=True)
class Planned:
    """One request planned for a connection: generated benign, or a corpus request."""

    corpus: LabelledRequest | None = None

    def make(self, rng: random.Random, index: int) -> tuple[bytes, str, str, int]:
        if self.corpus is None:
            return make_benign_request(rng, index)
        return self.corpus.as_wire(), self.corpus.method, self.corpus.target, len(self.corpus.body)


def plan_connection(
    rng: random.Random, attacks: list[LabelledRequest], lookalikes: list[LabelledRequest], attack_share: float
) -> list[Planned]:
    """The requests of one connection. A corpus request always comes last: some say
    `Connection: close`, and each connection holds at most one, so (client, port, method,
    target) names one request."""
    # An attack connection holds one attack in 2 requests on average, a benign one 4: with a
    # share `a` of attack connections, attacks are a / (2a + 4(1 - a)) of all requests.
    attack_connection_share = 4 * attack_share / (1 + 2 * attack_share)
    if rng.random() < attack_connection_share:
        return [Planned()] * rng.randrange(0, 3) + [Planned(rng.choice(attacks))]
    benign = [Planned()] * rng.randrange(1, 8)  # mean 4
    if rng.random() < 0.02:  # a look-alike instead of the last generated request
        benign[-1] = Planned(rng.choice(lookalikes))
    return benign


def generate(
    pcap: Path, truth_path: Path, *, connections: int, attack_share: float, seed: int
) -> tuple[int, list[dict[str, object]]]:
    rng = random.Random(seed)
    corpus = list(load_corpus())
    attacks = [request for request in corpus if request.malicious]
    lookalikes = [request for request in corpus if not request.malicious]
    truth: list[dict[str, object]] = []
    no_impairments = Impairments(0.0, 0.0, 0.0)

    def connections_with_truth() -> Iterator[Connection]:
        for number in range(connections):
            plan = plan_connection(rng, attacks, lookalikes, attack_share)
            made = iter(plan)
            connection = Connection(
                number,
                start_of(number),
                len(plan),
                no_impairments,
                rng,
                request_maker=lambda r, i, made=made: next(made).make(r, i),  # type: ignore[misc]
                response_maker=make_benign_response,
            )
            for record, planned in zip(connection.truth, plan, strict=True):
                label = planned.corpus
                record["label"] = "attack" if label is not None and label.malicious else "benign"
                record["origin"] = "generated" if label is None else f"corpus:{label.set_name}"
                record["category"] = "" if label is None else label.category
                truth.append(record)
            yield connection

    count = write_pcap(pcap, merged(connections_with_truth()))
    with truth_path.open("w") as out:
        for record in truth:
            out.write(json.dumps(record) + "\n")
    return count, truth


def replay_has_workers(command: str) -> bool:
    result = subprocess.run([command, "replay", "--help"], capture_output=True, text=True, check=True)
    return "--workers" in result.stdout


def run_replay(pcap: Path, database: Path, workers: str | None) -> tuple[float, float, str]:
    """Wall and CPU seconds of `oob-analyzer replay` (children's CPU: every worker counts), and
    its summary line."""
    command = str(Path(sys.executable).with_name("oob-analyzer"))
    args = [command, "replay", str(pcap), "--db", f"sqlite:///{database}"]
    if workers is not None:
        if not replay_has_workers(command):
            raise SystemExit("this replay has no --workers option: leave --workers out")
        args += ["--workers", workers]
    before = _children_cpu()
    started = time.perf_counter()
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"replay failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return wall, _children_cpu() - before, result.stdout.strip()


# The peer as the issue names it, with -n: name resolution would time DNS, not dissection.
# The second, lighter form prints one field instead of a summary line per request.
TSHARK_COMMANDS = (
    ("tshark -n -r FILE -Y http.request", ("-n", "-r", "{pcap}", "-Y", "http.request")),
    (
        "  ... -T fields -e frame.number",
        ("-n", "-r", "{pcap}", "-Y", "http.request", "-T", "fields", "-e", "frame.number"),
    ),
)


def run_tshark(pcap: Path, args: tuple[str, ...]) -> tuple[float, float, str]:
    """Wall and CPU seconds of one tshark run, and how many requests it listed."""
    command = ["tshark", *(arg.format(pcap=pcap) for arg in args)]
    before = _children_cpu()
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    return wall, _children_cpu() - before, f"{len(result.stdout.splitlines())} requests"


def _children_cpu() -> float:
    import resource  # noqa: PLC0415 - POSIX only, as the benchmark is

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def flagged_requests(database: Path) -> dict[RequestKey, list[str]]:
    """(client, port, method, target) of every request with a hit -> its hits as
    `type point rule payload`."""
    store = AttackStore.open(f"sqlite:///{database}")
    try:
        flagged: dict[RequestKey, list[str]] = {}
        for hit in HitQueries(store.engine).list_hits(HitFilter(), limit=None):
            described = f"{hit.type} {hit.rule} at {hit.point}, e.g. {hit.payload[:50]!r}"
            flagged.setdefault((hit.src_ip, hit.src_port, hit.method, hit.target), []).append(described)
        return flagged
    finally:
        store.close()


@dataclass(frozen=True, slots=True)
class Score:
    attacks: int
    attacks_found: int
    benign: int
    benign_flagged: int
    generated_benign: int
    generated_flagged: int
    missed_by_category: Counter[str]
    benign_hits: Counter[str]  # benign requests flagged, by `type rule at point`

    @property
    def found_share(self) -> float:
        return self.attacks_found / self.attacks if self.attacks else 0.0

    @property
    def flagged_share(self) -> float:
        return self.benign_flagged / self.benign if self.benign else 0.0


def score(truth: list[dict[str, object]], flagged: dict[RequestKey, list[str]]) -> Score:
    attacks = found = benign = benign_flagged = generated = generated_flagged = 0
    missed: Counter[str] = Counter()
    benign_hits: Counter[str] = Counter()
    for record in truth:
        key = (str(record["client"]), int(str(record["sport"])), str(record["method"]), str(record["target"]))
        hit = key in flagged
        if record["label"] == "attack":
            attacks += 1
            found += hit
            if not hit:
                missed[str(record["category"])] += 1
        else:
            benign += 1
            benign_flagged += hit
            benign_hits.update({hit.split(", e.g. ")[0] for hit in flagged.get(key, ())})
            if record["origin"] == "generated":
                generated += 1
                generated_flagged += hit
    return Score(attacks, found, benign, benign_flagged, generated, generated_flagged, missed, benign_hits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=12000, help="connections to generate (mean 4 requests)")
    parser.add_argument("--attack-share", type=float, default=0.03, help="share of requests that are attacks")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", help="passed to `replay --workers` (when replay has that option)")
    parser.add_argument("--runs", type=int, default=1, help="timed runs, ours and tshark's interleaved (default 1)")
    parser.add_argument(
        "--keep", type=Path, help="write the capture, its truth and the hits database here and keep them"
    )
    args = parser.parse_args()
    if shutil.which("tshark") is None:
        raise SystemExit("tshark is needed: it is the peer this benchmark measures against")
    with tempfile.TemporaryDirectory(prefix="oob-full-") as scratch:
        where = args.keep or Path(scratch)
        where.mkdir(parents=True, exist_ok=True)
        pcap, truth_path = where / "full.pcap", where / "full.truth.jsonl"
        count, truth = generate(
            pcap, truth_path, connections=args.connections, attack_share=args.attack_share, seed=args.seed
        )
        print(f"generated {pcap}: {count} packets, {pcap.stat().st_size / 2**20:.0f} MiB, {len(truth)} requests")
        database = where / "hits.db"
        compile_sources()
        runs: list[Run] = []
        for _ in range(max(1, args.runs)):
            database.unlink(missing_ok=True)
            ours = run_replay(pcap, database, args.workers)
            runs.append(Run(ours, [(label, run_tshark(pcap, args_)) for label, args_ in TSHARK_COMMANDS]))
        first = where / "first-packets.pcap"
        copy_first_records(pcap, first, START_UP_PACKETS)
        # The same mode as the timed runs: auto gives a small capture one worker, a large one more.
        workers = args.workers or str(choose_workers(None, [pcap]))
        start_up = measure_start_up(first, where / "start-up.db", workers)
        flagged = flagged_requests(database)
    result = score(truth, flagged)
    report(
        args,
        runs=runs,
        start_up=start_up,
        result=result,
        by_type=Counter(hit.split(" ", 1)[0] for hits in flagged.values() for hit in hits),
    )
    met = median(run.ratio for run in runs) >= 5 and result.found_share >= 0.95 and result.flagged_share <= 0.005
    sys.exit(0 if met else 1)


START_UP_PACKETS = 100
PACKAGES = ("oob_analyzer", "capture", "reassembly", "storage")


def compile_sources() -> None:
    """Byte-compile the project's modules before anything is timed, as `pip install` does for
    an installed package and as Python does on a first import: where PYTHONDONTWRITEBYTECODE is
    set (this workplace sets it), an editable install would otherwise compile every module
    from source in every run, and in every worker's fork server (about 0.1 s of CPU each)."""
    root = Path(__file__).resolve().parents[1]
    environment = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", *(str(root / package) for package in PACKAGES)],
        check=True,
        env=environment,
    )


def copy_first_records(pcap: Path, out: Path, records: int) -> None:
    """The first `records` records of a classic pcap (as `write_pcap` writes them) into `out`."""
    data = pcap.read_bytes()
    offset = 24
    for _ in range(records):
        if offset + 16 > len(data):
            break
        (captured,) = struct.unpack_from("<I", data, offset + 8)
        offset += 16 + captured
    out.write_bytes(data[:offset])


def measure_start_up(first: Path, database: Path, workers: str | None) -> tuple[float, float]:
    """Wall seconds of ours and of tshark on a capture of a few packets: the fixed cost of a
    run, the best of three each (what is left of a run after it is start-up, not traffic)."""
    ours = tshark = float("inf")
    for _ in range(3):
        database.unlink(missing_ok=True)
        ours = min(ours, run_replay(first, database, workers)[0])
        tshark = min(tshark, run_tshark(first, TSHARK_COMMANDS[0][1])[0])
    return ours, tshark


Timing = tuple[float, float, str]  # wall s, CPU s, what it printed


@dataclass(frozen=True, slots=True)
class Run:
    """One timed run: ours, then each tshark form on the same file."""

    ours: Timing
    peers: list[tuple[str, Timing]]

    @property
    def ratio(self) -> float:
        """How many times faster than the first tshark line, in wall time."""
        return self.peers[0][1][0] / self.ours[0]


def report(
    args: argparse.Namespace,
    *,
    runs: list[Run],
    start_up: tuple[float, float],
    result: Score,
    by_type: Counter[str],
) -> None:
    workers = f" --workers {args.workers}" if args.workers else ""
    for number, run in enumerate(runs, 1):
        ours = run.ours
        print(f"{f'run {number}':40s}   wall s    cpu s")
        print(f"{'oob-analyzer replay' + workers + ' (into SQLite)':40s} {ours[0]:8.2f} {ours[1]:8.2f}   {ours[2]}")
        for label, (wall, cpu, listed) in run.peers:
            print(
                f"{label:40s} {wall:8.2f} {cpu:8.2f}   {listed}; ours faster by {wall / ours[0]:.2f}x wall, "
                f"{cpu / ours[1]:.2f}x cpu"
            )
    if args.workers != "1":
        print(
            "note: with worker processes (replay's default on a large capture, or --workers N) the cpu column "
            "counts the replay process only: its workers are children of multiprocessing's fork server, whose "
            "time is not collected; compare wall times, or run with --workers 1"
        )
    ratios = sorted(run.ratio for run in runs)
    print(
        f"ours faster than `{TSHARK_COMMANDS[0][0]}` by {median(ratios):.2f}x wall (median of {len(runs)} "
        f"run{'s' if len(runs) > 1 else ''}: " + ", ".join(f"{ratio:.2f}x" for ratio in ratios) + "); target 5x"
    )
    ours_fixed, tshark_fixed = start_up
    ours_wall = median(run.ours[0] for run in runs)
    tshark_wall = median(run.peers[0][1][0] for run in runs)
    beyond = (tshark_wall - tshark_fixed) / (ours_wall - ours_fixed)
    print(
        f"fixed cost (the first {START_UP_PACKETS} packets alone, same workers, best of 3): ours {ours_fixed:.2f} s, "
        f"tshark {tshark_fixed:.2f} s; beyond it, ours faster by {beyond:.2f}x"
    )
    print(
        f"attacks found:   {result.attacks_found}/{result.attacks} ({100 * result.found_share:.2f} %, target >= 95 %)"
    )
    print(
        f"benign flagged:  {result.benign_flagged}/{result.benign} ({100 * result.flagged_share:.3f} %, "
        f"target <= 0.5 %); of the generated benign: {result.generated_flagged}/{result.generated_benign}; "
        f"of the corpus look-alikes: {result.benign_flagged - result.generated_flagged}"
        f"/{result.benign - result.generated_benign}"
    )
    if result.missed_by_category:
        print(
            "attacks missed by category: " + ", ".join(f"{k} {v}" for k, v in result.missed_by_category.most_common())
        )
    print("hits by type: " + ", ".join(f"{k} {v}" for k, v in by_type.most_common()))
    for described, count in result.benign_hits.most_common(10):
        print(f"  benign requests flagged by {described}: {count}")


if __name__ == "__main__":
    main()
