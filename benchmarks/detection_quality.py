"""Detection quality through the real pipeline, scored as GoTestWAF scores a WAF.

Writes every labelled request of the corpus as its own TCP conversation (handshake, data in
MSS-sized segments, FIN) into a classic pcap, runs `oob-analyzer replay` on it into a
temporary SQLite database, reads the hits back and scores them: an attack counts as found
when at least one hit was recorded for its connection, a benign request as passed when none
was. Prints per-set and per-category tables, with ModSecurity + CRS measured on the same file
(from ../shared/corpus/README.md) beside ours.

    .venv/bin/python benchmarks/detection_quality.py [CORPUS.jsonl]
"""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.detection_corpus import CORPUS, LabelledRequest, load_corpus
from storage import AttackStore, HitFilter, HitQueries

SERVER = "198.51.100.80"
MSS = 1460
MODSECURITY = (
    ("ModSecurity + CRS 3.3.4, paranoia 1", 267, 109, 46.0),
    ("ModSecurity + CRS 3.3.4, paranoia 2", 323, 89, 61.0),
    ("ModSecurity + CRS 4.x, paranoia 1", 324, 128, 62.5),
    ("ModSecurity + CRS 4.x, paranoia 2", 364, 93, 68.8),
)


def client_of(index: int) -> tuple[str, int]:
    """A distinct client address and port per request, so hits map back to requests."""
    return f"10.{index // 50000 % 250}.{index // 250 % 200}.{index % 250 + 1}", 10000 + index % 50000


def write_capture(requests: Sequence[LabelledRequest], path: Path) -> None:
    with path.open("wb") as capture:
        capture.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        ts = 1_700_000_000.0
        for index, request in enumerate(requests):
            client, port = client_of(index)
            for frame in _conversation(client, port, request.as_wire()):
                ts += 0.0001
                capture.write(struct.pack("<IIII", int(ts), int(ts % 1 * 1e6), len(frame), len(frame)) + frame)


def _conversation(client: str, port: int, data: bytes) -> Iterable[bytes]:
    c_seq, s_seq = 1000, 5000
    yield _frame(client, SERVER, port, 80, seq=c_seq, ack=0, flags=0x02, payload=b"")
    yield _frame(SERVER, client, 80, port, seq=s_seq, ack=c_seq + 1, flags=0x12, payload=b"")
    yield _frame(client, SERVER, port, 80, seq=c_seq + 1, ack=s_seq + 1, flags=0x10, payload=b"")
    offset = 0
    while offset < len(data):
        chunk = data[offset : offset + MSS]
        yield _frame(client, SERVER, port, 80, seq=c_seq + 1 + offset, ack=s_seq + 1, flags=0x18, payload=chunk)
        offset += len(chunk)
    yield _frame(client, SERVER, port, 80, seq=c_seq + 1 + len(data), ack=s_seq + 1, flags=0x11, payload=b"")


def _frame(src: str, dst: str, sport: int, dport: int, *, seq: int, ack: int, flags: int, payload: bytes) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, socket.inet_aton(src), socket.inet_aton(dst)
    )
    return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + tcp


def replay_and_collect(capture: Path, database: Path) -> set[tuple[str, int]]:
    command = [
        str(Path(sys.executable).with_name("oob-analyzer")),
        "replay",
        str(capture),
        "--db",
        f"sqlite:///{database}",
    ]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"replay failed ({completed.returncode}): {completed.stderr.strip()}")
    print(f"replay: {completed.stdout.strip()}")
    store = AttackStore.open(f"sqlite:///{database}")
    try:
        return {(hit.src_ip, hit.src_port) for hit in HitQueries(store.engine).list_hits(HitFilter(), limit=None)}
    finally:
        store.close()


def score(requests: Sequence[LabelledRequest], flagged: set[tuple[str, int]]) -> None:
    found: Counter[tuple[str, str]] = Counter()
    total: Counter[tuple[str, str]] = Counter()
    for index, request in enumerate(requests):
        key = (request.set_name, request.category)
        total[key] += 1
        hit = client_of(index) in flagged
        found[key] += hit if request.malicious else not hit
    _table("per set", _group(total, found, lambda key: key[0]))
    _table("per category (benign: 'passed' counts)", _group(total, found, lambda key: key[1]))
    attacks = sum(n for (s, _), n in total.items() if s != "false-pos")
    attacks_found = sum(n for (s, _), n in found.items() if s != "false-pos")
    benign = sum(n for (s, _), n in total.items() if s == "false-pos")
    benign_passed = sum(n for (s, _), n in found.items() if s == "false-pos")

    def rate(sets: set[str]) -> float:
        wanted = sum(n for (s, _), n in total.items() if s in sets)
        return 100.0 * sum(n for (s, _), n in found.items() if s in sets) / wanted if wanted else 0.0

    app_score = (rate({"owasp", "community"}) + rate({"false-pos"})) / 2
    api_score = rate({"owasp-api"})
    print("\nengine                                   attacks found        benign passed        overall")
    print(
        f"{'oob-analyzer':40} {attacks_found:4}/{attacks} ({100 * attacks_found / attacks:5.1f} %)"
        f"   {benign_passed:4}/{benign} ({100 * benign_passed / benign:5.1f} %)   {(app_score + api_score) / 2:5.1f}"
    )
    for name, mod_found, mod_passed, overall in MODSECURITY:
        print(
            f"{name:40} {mod_found:4}/679 ({100 * mod_found / 679:5.1f} %)"
            f"   {mod_passed:4}/141 ({100 * mod_passed / 141:5.1f} %)   {overall:5.1f}"
        )


def _group(total: Counter[tuple[str, str]], found: Counter[tuple[str, str]], by: object) -> dict[str, tuple[int, int]]:
    grouped: dict[str, tuple[int, int]] = {}
    for key, count in total.items():
        name = by(key)  # type: ignore[operator]
        seen, all_ = grouped.get(name, (0, 0))
        grouped[name] = (seen + found[key], all_ + count)
    return grouped


def _table(title: str, rows: dict[str, tuple[int, int]]) -> None:
    print(f"\n{title}\n{'':2}{'name':20} {'ok':>6} {'of':>6} {'rate':>8}")
    for name, (ok, count) in sorted(rows.items()):
        print(f"  {name:20} {ok:6} {count:6} {100 * ok / count:7.1f}%")


def main(argv: Sequence[str]) -> None:
    corpus = Path(argv[1]) if len(argv) > 1 else CORPUS
    requests = list(load_corpus(corpus))
    with tempfile.TemporaryDirectory(prefix="oob5-quality-") as workdir:
        capture = Path(workdir) / "corpus.pcap"
        write_capture(requests, capture)
        flagged = replay_and_collect(capture, Path(workdir) / "hits.db")
    print(f"corpus: {corpus} ({len(requests)} requests)")
    score(requests, flagged)


if __name__ == "__main__":
    main(sys.argv)
