"""The labelled corpus as `HttpRequest`s, shared by the detection benchmarks."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from reassembly.events import FlowKey, HttpRequest

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "gotestwaf.jsonl"


@dataclass(frozen=True)
class LabelledRequest:
    set_name: str
    category: str
    malicious: bool
    placeholder: str
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def as_wire(self) -> bytes:
        head = f"{self.method} {self.target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in self.headers)
        return head.encode("latin-1", "replace") + b"\r\n" + self.body

    def as_request(self) -> HttpRequest:
        flow = FlowKey(client="192.0.2.1", client_port=40000, server="198.51.100.1", server_port=80)
        return HttpRequest(
            ts=0.0,
            flow=flow,
            method=self.method,
            target=self.target,
            version="HTTP/1.1",
            headers=self.headers,
            body=self.body,
            body_length=len(self.body),
        )


def load_corpus(path: Path = CORPUS) -> Iterator[LabelledRequest]:
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            request = record["request"]
            yield LabelledRequest(
                set_name=record["set"],
                category=record["category"],
                malicious=record["malicious"],
                placeholder=record["placeholder"],
                method=request["method"],
                target=request["target"],
                headers=tuple((name, value) for name, value in request["headers"]),
                body=base64.b64decode(request["body_b64"]),
            )
