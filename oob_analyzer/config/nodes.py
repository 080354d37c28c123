"""The one strict reader of the YAML config file: walks yaml nodes so every error has a line.

`yaml.compose` keeps each value's position (`start_mark`); `NodeReader` turns nodes into
Python values and raises `ConfigError("FILE:LINE: what was expected")` for anything else.
Every section of the file (`oob_analyzer.config.loader`, `oob_analyzer.config.detection`) is
read through it, so errors read the same everywhere.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterable

import yaml

__all__ = ["ConfigError", "IpNetwork", "NodeReader", "compose"]

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_TRUE = frozenset({"true", "yes", "on"})
_FALSE = frozenset({"false", "no", "off"})


class ConfigError(ValueError):
    """The config file is not valid; the message starts with `FILE:LINE: `."""


def compose(text: str, source: str) -> yaml.Node | None:
    """The node tree of `text`; a YAML syntax error becomes a `ConfigError` with its line.

    Several documents or a duplicate key are refused: both mean the file does not say one
    thing (PyYAML would keep the last value without a word).
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError(f"{source}:{line}: not valid YAML: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}:1: not valid YAML: {exc}") from exc
    return root


class NodeReader:
    """Reads values out of yaml nodes; each method names what it expected when it refuses."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, node: yaml.Node, message: str) -> ConfigError:
        return ConfigError(f"{self.source}:{node.start_mark.line + 1}: {message}")

    def mapping(self, node: yaml.Node, what: str) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{what} must be a mapping of keys to values")
        result: dict[str, yaml.Node] = {}
        for key, value in node.value:
            name = str(key.value)
            if name in result:
                raise self.fail(key, f"duplicate key {name!r} in {what}")
            result[name] = value
        return result

    def fields(self, node: yaml.Node, what: str, allowed: Iterable[str]) -> dict[str, yaml.Node]:
        """A mapping whose keys must all be in `allowed`."""
        allowed = set(allowed)
        result = self.mapping(node, what)
        for key_node, _ in node.value:
            if key_node.value not in allowed:
                known = ", ".join(sorted(allowed))
                raise self.fail(key_node, f"unknown key {key_node.value!r} in {what} (expected one of: {known})")
        return result

    def sequence(self, node: yaml.Node, what: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, f"{what} must be a list")
        return list(node.value)

    def scalar(self, node: yaml.Node, what: str, kind: str) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, f"{what} must be {kind}, not a {_shape(node)}")
        return str(node.value)

    def text(self, node: yaml.Node, what: str) -> str:
        value = self.scalar(node, what, "a non-empty string")
        if not value.strip():
            raise self.fail(node, f"{what} must be a non-empty string")
        return value

    def texts(self, node: yaml.Node, what: str) -> tuple[str, ...]:
        return tuple(self.text(item, f"each entry of {what}") for item in self.sequence(node, what))

    def boolean(self, node: yaml.Node, what: str) -> bool:
        value = self.scalar(node, what, "true or false").lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise self.fail(node, f"{what} must be true or false, not {value!r}")

    def integer(self, node: yaml.Node, what: str, *, minimum: int = 0, maximum: int | None = None) -> int:
        value = self.scalar(node, what, "a whole number").strip().replace("_", "")
        if not (value.isascii() and value.lstrip("-").isdigit()):
            raise self.fail(node, f"{what} must be a whole number, not {value!r}")
        number = int(value)
        if number < minimum or (maximum is not None and number > maximum):
            upper = f" and at most {maximum}" if maximum is not None else ""
            raise self.fail(node, f"{what} must be at least {minimum}{upper}, not {number}")
        return number

    def number(self, node: yaml.Node, what: str, *, above: float = 0.0) -> float:
        value = self.scalar(node, what, "a number").strip()
        try:
            number = float(value)
        except ValueError:
            raise self.fail(node, f"{what} must be a number, not {value!r}") from None
        if not math.isfinite(number) or number <= above:
            raise self.fail(node, f"{what} must be a number above {above:g}, not {value}")
        return number

    def choice(self, node: yaml.Node, what: str, choices: Iterable[str]) -> str:
        options = tuple(choices)
        value = self.scalar(node, what, "one of " + ", ".join(options))
        if value not in options:
            raise self.fail(node, f"{what} must be one of {', '.join(options)}, not {value!r}")
        return value

    def pattern(self, node: yaml.Node, what: str, flags: int = 0) -> re.Pattern[str]:
        text = self.text(node, what)
        try:
            return re.compile(text, flags)
        except re.error as exc:
            raise self.fail(node, f"{what} is not a valid regular expression: {exc}") from exc

    def network(self, node: yaml.Node, what: str) -> IpNetwork:
        text = self.text(node, what).strip()
        try:
            return ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise self.fail(
                node, f"{what}: {text!r} is not an IP address or CIDR block (e.g. 192.0.2.7, 10.0.0.0/8, 2001:db8::/32)"
            ) from None

    def listen_address(self, node: yaml.Node, what: str) -> tuple[str, int]:
        """`ADDR:PORT`, `[IPv6]:PORT`, `:PORT` or a bare `PORT` (every IPv4 address)."""
        text = self.scalar(node, what, "[ADDR:]PORT").strip()
        host, _, port_text = text.rpartition(":")
        if not (port_text.isascii() and port_text.isdigit()) or int(port_text) > 65535:
            raise self.fail(node, f"{what}: {text!r} is not [ADDR:]PORT with PORT from 0 to 65535 (e.g. 0.0.0.0:4789)")
        return host.removeprefix("[").removesuffix("]") or "0.0.0.0", int(port_text)


def _shape(node: yaml.Node) -> str:
    return "list" if isinstance(node, yaml.SequenceNode) else "mapping"
