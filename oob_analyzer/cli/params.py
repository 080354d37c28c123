"""click parameter types: times, durations, address blocks and addresses to listen on.

Each validates at the edge and raises `BadParameter` with the accepted forms, so a typo is
a usage error (exit 2) that says how to fix it, never a traceback or an empty result.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime, timedelta

import click

__all__ = [
    "DURATION",
    "NETWORK",
    "POINT_IN_TIME",
    "DurationType",
    "ListenAddressType",
    "NetworkType",
    "PointInTimeType",
]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d{1,9})([smhdw])")


def parse_duration(text: str) -> timedelta | None:
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        return None
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


class DurationType(click.ParamType[timedelta]):
    """A length of time: `30s`, `15m`, `1h`, `7d`, `2w`."""

    name = "duration"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> timedelta:
        if isinstance(value, timedelta):
            return value
        duration = parse_duration(str(value))
        if duration is None or duration <= timedelta(0):
            self.fail(f"{value!r} is not a duration: use a number and a unit, e.g. 30s, 15m, 1h, 7d, 2w", param, ctx)
        return duration


class PointInTimeType(click.ParamType[datetime]):
    """An absolute time (ISO 8601; UTC unless it says otherwise) or one relative to now (`1h` = an hour ago)."""

    name = "time"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        duration = parse_duration(text)
        if duration is not None:
            return datetime.now(UTC) - duration
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
        except ValueError:
            self.fail(
                f"{value!r} is not a time: use ISO 8601 (2026-11-02, 2026-11-02T10:00, ...+02:00) "
                "or an age such as 30m, 1h, 7d",
                param,
                ctx,
            )
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class NetworkType(click.ParamType[ipaddress.IPv4Network | ipaddress.IPv6Network]):
    """An IPv4/IPv6 address or CIDR block."""

    name = "ip-or-cidr"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
            return value
        try:
            return ipaddress.ip_network(str(value).strip(), strict=False)
        except ValueError:
            self.fail(
                f"{value!r} is not an IP address or CIDR block (e.g. 192.0.2.7, 192.0.2.0/24, 2001:db8::/32)",
                param,
                ctx,
            )


class ListenAddressType(click.ParamType[tuple[str, int]]):
    """Where to listen: `ADDR:PORT`, `[IPv6]:PORT` or `:PORT` (every IPv4 address); port 0 picks a free one.

    `port_alone` accepts a bare `PORT` too; `ip_only` wants ADDR as an IP address (otherwise a
    host name, which the socket resolves, will do).
    """

    def __init__(self, *, port_alone: bool, ip_only: bool) -> None:
        self.port_alone = port_alone
        self.ip_only = ip_only
        self.name = "[ADDR:]PORT" if port_alone else "ADDR:PORT"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, int]:
        if isinstance(value, tuple):
            return value
        text = str(value)
        host, colon, port_text = text.rpartition(":")
        # isascii: str.isdigit() is true of "²", which int() refuses.
        if (
            not (colon or self.port_alone)
            or not (port_text.isascii() and port_text.isdigit())
            or int(port_text) > 65535
        ):
            self.fail(
                f"{text!r} is not {self.name} with PORT from 0 to 65535 (e.g. 0.0.0.0:8445 or [::]:8445)", param, ctx
            )
        host = host.removeprefix("[").removesuffix("]") or "0.0.0.0"
        if self.ip_only:
            try:
                ipaddress.ip_address(host)
            except ValueError:
                self.fail(f"{host!r} is not an IP address to listen on", param, ctx)
        return host, int(port_text)


DURATION = DurationType()
POINT_IN_TIME = PointInTimeType()
NETWORK = NetworkType()
