"""The capture-loss estimate against ground truth, on a generated capture with loss.

    python benchmarks/capture_loss_estimate.py [--connections 3000] [--loss 0.01]
    python benchmarks/capture_loss_estimate.py --pcap FILE --truth FILE.truth.jsonl

`reassembly_generate.py` drops data segments from the capture while the endpoints'
acknowledgements go on covering them: exactly what a lossy mirror does. Prints the bytes it
dropped beside the bytes the estimate (`ConnectionTracker.capture_loss`) counts.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.reassembly_generate import Impairments, packets, write_pcap
from capture import read_captures
from oob_analyzer.pipeline import RequestStream


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pcap", type=Path)
    parser.add_argument("--truth", type=Path)
    parser.add_argument("--connections", type=int, default=3000)
    parser.add_argument("--loss", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="oob-loss-") as scratch:
        pcap, truth = args.pcap, args.truth
        if pcap is None or truth is None:
            pcap, truth = Path(scratch) / "loss.pcap", Path(scratch) / "loss.truth.jsonl"
            write_pcap(pcap, packets(args.connections, 5, Impairments(args.loss, 0.02, 0.02), args.seed, truth))
        dropped = sum(
            record["request_lost_bytes"] + record["response_lost_bytes"]
            for record in map(json.loads, truth.read_text().splitlines())
        )
        stream = RequestStream()
        for packet in read_captures([pcap], on_error=lambda exc: print(f"warning: {exc}")):
            stream.feed(packet)
        stream.finish()
    loss = stream.tracker.capture_loss
    print(f"dropped from the capture (ground truth): {dropped:>12,} bytes")
    print(f"estimated from acknowledgements:         {loss.gap_bytes:>12,} bytes in {loss.gap_events:,} gaps")
    print(f"acknowledged bytes: {loss.ack_bytes:,} in {loss.ack_events:,} ACKs; estimated loss ratio {loss.ratio:.3%}")
    print(f"(reassembly's own gap count, holes it gave up on: {stream.tracker.stats['bytes_lost_in_gaps']:,} bytes)")


if __name__ == "__main__":
    main()
