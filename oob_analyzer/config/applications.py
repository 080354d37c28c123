"""Which application a request is for, and whether it is monitored: hosts and NGINX locations.

Sans-I/O lookups over the `applications:` section of the config file. Hosts follow NGINX's
`server_name` (exact name, `*.example.com`, `.example.com`, `www.example.*`; an exact name
wins over the longest leading wildcard, which wins over the longest trailing one).
Locations follow NGINX's `location` (http://nginx.org/en/docs/http/ngx_http_core_module.html#location):

    "= /exact"     only this path; found first, ends the search
    "^~ /prefix"   a prefix that, when it is the longest prefix found, skips the regexes
    "/prefix"      a prefix; the longest one is remembered
    "~ regex"      case-sensitive regex, tried in file order after the prefixes
    "~* regex"     case-insensitive regex

"The first matching regex stops the search; if none matches, the longest prefix is used."
Paths are matched, as by NGINX, on the normalized URI: query cut off, %XX decoded, `.` and
`..` resolved and slashes merged, so `/static/../api/` is judged as `/api/`, not `/static/`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import unquote

__all__ = [
    "Application",
    "ApplicationMap",
    "HostPattern",
    "Location",
    "LocationKind",
    "Resolution",
    "RouteMode",
    "normalize_host",
    "normalize_path",
    "parse_host_pattern",
    "parse_location",
]


class RouteMode(StrEnum):
    MONITORING = "monitoring"  # judged, hits recorded
    OFF = "off"  # not judged; counted as requests_not_monitored


class LocationKind(StrEnum):
    EXACT = "="
    PREFERRED_PREFIX = "^~"
    PREFIX = ""
    REGEX = "~"
    REGEX_CASELESS = "~*"


@dataclass(frozen=True, slots=True, kw_only=True)
class Location:
    kind: LocationKind
    text: str  # the path or prefix; for a regex, its source
    pattern: re.Pattern[str] | None = None  # regexes only
    mode: RouteMode = RouteMode.MONITORING


def parse_location(text: str, mode: RouteMode = RouteMode.MONITORING) -> Location:
    """`"= /exact"`, `"^~ /prefix"`, `"/prefix"`, `"~ regex"` or `"~* regex"`; ValueError otherwise."""
    modifier, _, rest = text.strip().partition(" ")
    rest = rest.strip()
    if modifier in ("~", "~*"):
        if not rest:
            raise ValueError(f"{text!r} has no regular expression after {modifier!r}")
        try:
            pattern = re.compile(rest, re.IGNORECASE if modifier == "~*" else 0)
        except re.error as exc:
            raise ValueError(f"{rest!r} is not a valid regular expression: {exc}") from exc
        return Location(kind=LocationKind(modifier), text=rest, pattern=pattern, mode=mode)
    if modifier in ("=", "^~"):
        kind, path = LocationKind(modifier), rest
    else:
        kind, path = LocationKind.PREFIX, text.strip()
    if not path.startswith("/") or " " in path:
        raise ValueError(f"{text!r} is not a location: use /prefix, = /exact, ^~ /prefix, ~ regex or ~* regex")
    return Location(kind=kind, text=path, mode=mode)


@dataclass(frozen=True, slots=True, kw_only=True)
class HostPattern:
    """One `server_name`: an exact name, a `*.`/`.` leading wildcard, or a `.*` trailing one."""

    text: str
    exact: str | None = None
    suffix: str | None = None  # "*.example.com" -> ".example.com"
    also_bare: bool = False  # ".example.com" matches example.com too
    prefix: str | None = None  # "www.example.*" -> "www.example."
    any_host: bool = False  # "*"

    def matches(self, host: str) -> bool:
        if self.exact is not None:
            return host == self.exact
        if self.suffix is not None:
            return (host.endswith(self.suffix) and len(host) > len(self.suffix)) or (
                self.also_bare and host == self.suffix[1:]
            )
        if self.prefix is not None:
            return host.startswith(self.prefix) and len(host) > len(self.prefix)
        return self.any_host


def parse_host_pattern(text: str) -> HostPattern:
    host = text.strip().lower().rstrip(".")
    if host == "*":
        return HostPattern(text=host, any_host=True)
    if host.startswith("*.") and "*" not in host[2:] and len(host) > 2:
        return HostPattern(text=host, suffix=host[1:])
    if host.startswith(".") and "*" not in host and len(host) > 1:
        return HostPattern(text=host, suffix=host, also_bare=True)
    if host.endswith(".*") and "*" not in host[:-2] and len(host) > 2:
        return HostPattern(text=host, prefix=host[:-1])
    if not host or "*" in host or any(c in host for c in " /?#@"):
        raise ValueError(
            f"{text!r} is not a host name or wildcard: use example.com, *.example.com, .example.com or www.example.*"
        )
    return HostPattern(text=host, exact=host)


@dataclass(frozen=True, slots=True, kw_only=True)
class Application:
    id: str
    hosts: tuple[HostPattern, ...] = (HostPattern(text="*", any_host=True),)
    locations: tuple[Location, ...] = ()
    mode: RouteMode = RouteMode.MONITORING  # where no location matches

    def mode_for(self, path: str) -> RouteMode:
        """The mode of the location chosen for the normalized `path`."""
        location = find_location(self.locations, path)
        return location.mode if location is not None else self.mode

    def mode_of_target(self, target: str) -> RouteMode:
        """The mode for a request target as sent (normalized here when there are routes)."""
        return self.mode_for(normalize_path(target)) if self.locations else self.mode


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolution:
    application: str
    mode: RouteMode


_UNKNOWN = Resolution(application="", mode=RouteMode.MONITORING)


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplicationMap:
    """host + request target -> (application id, mode); a host no application claims: ("", monitoring)."""

    applications: tuple[Application, ...] = ()
    # Lookups built from `applications`, as NGINX builds its server_name hashes.
    _exact: dict[str, Application] = field(default_factory=dict, init=False, repr=False, compare=False)
    _suffixes: dict[str, Application] = field(default_factory=dict, init=False, repr=False, compare=False)
    _bare: dict[str, Application] = field(default_factory=dict, init=False, repr=False, compare=False)
    _prefixes: tuple[tuple[str, Application], ...] = field(default=(), init=False, repr=False, compare=False)
    _any: Application | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        prefixes: list[tuple[str, Application]] = []
        for application in self.applications:
            for pattern in application.hosts:
                if pattern.exact is not None:
                    self._exact.setdefault(pattern.exact, application)
                elif pattern.suffix is not None:
                    self._suffixes.setdefault(pattern.suffix, application)
                    if pattern.also_bare:
                        self._bare.setdefault(pattern.suffix[1:], application)
                elif pattern.prefix is not None:
                    prefixes.append((pattern.prefix, application))
                elif self._any is None:
                    object.__setattr__(self, "_any", application)
        prefixes.sort(key=lambda pair: len(pair[0]), reverse=True)
        object.__setattr__(self, "_prefixes", tuple(prefixes))

    def __bool__(self) -> bool:
        return bool(self.applications)

    def application_for(self, host: str) -> Application | None:
        """Exact name, then the longest leading wildcard, the longest trailing one, then `*`."""
        name = normalize_host(host)
        found = self._exact.get(name) or self._bare.get(name)
        if found is not None:
            return found
        if self._suffixes:
            dot = name.find(".", 1)
            while dot > 0:  # ".b.example.com", then ".example.com", ...: longest first
                found = self._suffixes.get(name[dot:])
                if found is not None:
                    return found
                dot = name.find(".", dot + 1)
        for prefix, application in self._prefixes:
            if name.startswith(prefix) and len(name) > len(prefix):
                return application
        return self._any

    def resolve(self, host: str, target: str) -> Resolution:
        application = self.application_for(host)
        if application is None:
            return _UNKNOWN
        return Resolution(application=application.id, mode=application.mode_of_target(target))


def find_location(locations: tuple[Location, ...], path: str) -> Location | None:
    """NGINX's choice among `locations` for the normalized `path`, or None."""
    longest: Location | None = None
    for location in locations:
        if location.kind is LocationKind.EXACT:
            if path == location.text:
                return location
        elif (
            location.pattern is None
            and path.startswith(location.text)
            and (longest is None or len(location.text) > len(longest.text))
        ):
            longest = location
    if longest is not None and longest.kind is LocationKind.PREFERRED_PREFIX:
        return longest
    for location in locations:
        if location.pattern is not None and location.pattern.search(path):
            return location
    return longest


def normalize_host(host: str) -> str:
    """The Host header as a name to match: lower case, without port or trailing dot."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def normalize_path(target: str) -> str:
    """The request target as NGINX matches locations against it (ngx_http_parse_complex_uri)."""
    if not target.startswith("/"):
        # absolute-form (RFC 9112 section 3.2.2): the path starts after the authority.
        scheme_end = target.find("://")
        if scheme_end >= 0:
            slash = target.find("/", scheme_end + 3)
            target = target[slash:] if slash >= 0 else "/"
    path = target.split("?", 1)[0].split("#", 1)[0]
    if "%" not in path and "/." not in path and "//" not in path:
        return path if path.startswith("/") else "/" + path  # already normal: the common case
    path = unquote(path, errors="surrogateescape")
    segments: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue  # merge_slashes on, and "/./" is "/"
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    trailing = "/" if path.endswith(("/", "/.", "/..")) and segments else ""
    return "/" + "/".join(segments) + trailing
