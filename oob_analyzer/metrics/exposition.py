"""The Prometheus text exposition format, version 0.0.4, of a `MetricsSample`.

https://prometheus.io/docs/instrumenting/exposition_formats/: a `# HELP` and a `# TYPE`
line per family, then one line per series; counters end in `_total`; in label values a
backslash, a double quote and a line feed are escaped; in HELP text a backslash and a line
feed. The capture-loss ratio is derived here, from the summed counters, so that samples of
several workers add up before it is computed.
"""

from __future__ import annotations

import math

from oob_analyzer.metrics.sample import FAMILIES, Labels, MetricsSample

__all__ = ["CONTENT_TYPE", "PREFIX", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "oob_analyzer_"
_RATIO_HELP = "Share of acknowledged bytes the capture never saw (capture_loss_gap_bytes / capture_loss_acked_bytes)."


def render(sample: MetricsSample) -> str:
    """Every family, in catalogue order; an unlabelled family without a value shows 0."""
    series: dict[str, list[tuple[Labels, float]]] = {}
    for (name, labels), value in sample:
        series.setdefault(name, []).append((labels, value))
    lines: list[str] = []
    for family in FAMILIES.values():
        exposed = PREFIX + family.name + ("_total" if family.kind == "counter" else "")
        lines.append(f"# HELP {exposed} {_escape_help(family.help)}")
        lines.append(f"# TYPE {exposed} {family.kind}")
        default = [] if family.label else [((), 0.0)]
        for labels, value in sorted(series.get(family.name) or default):
            lines.append(f"{exposed}{_labels(labels)} {_number(value)}")
    acked = sample.total("capture_loss_acked_bytes")
    ratio = sample.total("capture_loss_gap_bytes") / acked if acked else 0.0
    lines += [
        f"# HELP {PREFIX}capture_loss_ratio {_RATIO_HELP}",
        f"# TYPE {PREFIX}capture_loss_ratio gauge",
        f"{PREFIX}capture_loss_ratio {_number(ratio)}",
    ]
    return "\n".join(lines) + "\n"


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{name}="{_escape_label(value)}"' for name, value in labels) + "}"


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if value == int(value) and abs(value) < 1 << 53 else repr(value)
