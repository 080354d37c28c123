"""A strict little parser of the Prometheus text format 0.0.4, for the tests to read back.

Refuses what the format does not allow (a sample before its TYPE, an unknown escape, a bad
name), so a test that parses our output also checks it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["Exposition", "parse"]

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}

Labels = tuple[tuple[str, str], ...]


@dataclass
class Exposition:
    types: dict[str, str] = field(default_factory=dict)
    helps: dict[str, str] = field(default_factory=dict)
    samples: dict[tuple[str, Labels], float] = field(default_factory=dict)

    def value(self, name: str, **labels: str) -> float:
        return self.samples[(name, tuple(sorted(labels.items())))]

    def family(self, name: str) -> dict[Labels, float]:
        return {labels: value for (sample, labels), value in self.samples.items() if sample == name}


def parse(text: str) -> Exposition:
    assert text.endswith("\n"), "the exposition ends with a line feed"
    result = Exposition()
    for number, line in enumerate(text.splitlines(), 1):
        where = f"line {number}: {line!r}"
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            assert _NAME.fullmatch(name), where
            result.helps[name] = _unescape(help_text, allowed="\\n")
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert _NAME.fullmatch(name) and kind in ("counter", "gauge", "untyped"), where
            assert name not in result.types, f"{where}: a second TYPE"
            result.types[name] = kind
        elif line.startswith("#") or not line:
            continue
        else:
            name, labels, value = _sample(line, where)
            assert name in result.types, f"{where}: a sample before its TYPE"
            if result.types[name] == "counter":
                assert name.endswith("_total"), f"{where}: a counter's name ends in _total"
            key = (name, tuple(sorted(labels)))
            assert key not in result.samples, f"{where}: the same series twice"
            result.samples[key] = value
    return result


def _sample(line: str, where: str) -> tuple[str, list[tuple[str, str]], float]:
    match = _NAME.match(line)
    assert match, where
    name, rest = match.group(), line[match.end() :]
    labels: list[tuple[str, str]] = []
    if rest.startswith("{"):
        rest = rest[1:]
        while not rest.startswith("}"):
            label = _LABEL_NAME.match(rest)
            assert label and rest[label.end() : label.end() + 2] == '="', where
            rest = rest[label.end() + 2 :]
            value, rest = _quoted(rest, where)
            labels.append((label.group(), value))
            rest = rest.removeprefix(",")
        rest = rest[1:]
    assert rest.startswith(" "), where
    return name, labels, float(rest[1:].split(" ")[0])


def _quoted(text: str, where: str) -> tuple[str, str]:
    out: list[str] = []
    index = 0
    while text[index] != '"':
        if text[index] == "\\":
            assert text[index + 1] in _ESCAPES, f"{where}: unknown escape"
            out.append(_ESCAPES[text[index + 1]])
            index += 2
        else:
            assert text[index] != "\n", where
            out.append(text[index])
            index += 1
    return "".join(out), text[index + 1 :]


def _unescape(text: str, *, allowed: str) -> str:
    out, index = [], 0
    while index < len(text):
        if text[index] == "\\":
            assert text[index + 1] in allowed, f"unknown escape in {text!r}"
            out.append(_ESCAPES[text[index + 1]])
            index += 2
        else:
            out.append(text[index])
            index += 1
    return "".join(out)
