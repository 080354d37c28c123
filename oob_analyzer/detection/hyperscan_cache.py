"""A disk cache of compiled hyperscan databases, so that each run and each worker loads one.

Compiling the signature rules costs hyperscan about 0.3-0.7 s of CPU, paid by every engine
built: once per run, and again in every worker process. Loading the serialized database
(`hyperscan.dumpb` / `loadb`) costs well under a millisecond.

An entry is named by a SHA-256 key over everything that shapes the database: the patterns,
their ids and flags, the mode, and the versions of the hyperscan binding and library. Its file
holds a header (magic, that key, the SHA-256 of the payload) and the serialized database, so
a renamed, truncated or damaged file never loads as a wrong database: it is compiled again
and rewritten. Entries are written to a temporary file and renamed into place, so concurrent
workers never read half a file. A cache that cannot be read or written costs a compile and a
debug log line, nothing more.

The cache lives in `$OOB_ANALYZER_CACHE_DIR` if set, else `$XDG_CACHE_HOME/oob-analyzer`, else
`~/.cache/oob-analyzer`; without any of them (no HOME and no passwd entry, as for a
container's arbitrary uid) every engine compiles.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["CacheOutcome", "default_cache_dir", "load_or_compile"]

_LOG = logging.getLogger(__name__)
_MAGIC = b"oob-analyzer hyperscan cache 1\n"
_DIGEST_SIZE = 32  # SHA-256
_HEADER_SIZE = len(_MAGIC) + 2 * _DIGEST_SIZE  # magic, key, payload digest


class CacheOutcome(enum.Enum):
    """How `load_or_compile` came by its database."""

    LOADED = "loaded"  # read from the cache
    COMPILED = "compiled"  # compiled, then written to the cache
    COMPILED_UNCACHED = "compiled_uncached"  # compiled; the cache could not take it


def default_cache_dir(environ: Mapping[str, str] = os.environ) -> Path | None:
    """`$OOB_ANALYZER_CACHE_DIR`, else `$XDG_CACHE_HOME/oob-analyzer`, else `~/.cache/oob-analyzer`;
    None when there is no home directory to find."""
    if environ.get("OOB_ANALYZER_CACHE_DIR"):
        return Path(environ["OOB_ANALYZER_CACHE_DIR"])
    if environ.get("XDG_CACHE_HOME"):
        return Path(environ["XDG_CACHE_HOME"]) / "oob-analyzer"
    try:
        return Path.home() / ".cache" / "oob-analyzer"
    except RuntimeError:  # HOME unset and no passwd entry for the uid
        return None


def load_or_compile(
    hyperscan: Any,
    *,
    expressions: Sequence[bytes],
    ids: Sequence[int],
    flags: Sequence[int],
    cache_dir: Path | None,
) -> tuple[Any, CacheOutcome]:
    """The block-mode database of these expressions: from `cache_dir` when it holds it, else
    compiled (and kept there; `cache_dir` None: not kept)."""
    key = _cache_key(hyperscan, expressions, ids, flags)
    path = cache_dir / f"signatures-{key.hex()[:32]}.hsdb" if cache_dir is not None else None
    database = _load(hyperscan, path, key) if path is not None else None
    if database is not None:
        return database, CacheOutcome.LOADED
    database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    database.compile(expressions=list(expressions), ids=list(ids), elements=len(expressions), flags=list(flags))
    if path is not None and _store(hyperscan, path, key, database):
        return database, CacheOutcome.COMPILED
    return database, CacheOutcome.COMPILED_UNCACHED


def _cache_key(hyperscan: Any, expressions: Sequence[bytes], ids: Sequence[int], flags: Sequence[int]) -> bytes:
    digest = hashlib.sha256()
    # The binding's version pins the library it bundles; the database's own header checks the rest
    # (library version, CPU platform) when it is loaded.
    digest.update(f"hyperscan {hyperscan.__version__} mode {hyperscan.HS_MODE_BLOCK}\n".encode())
    for expression, rule_id, flag in zip(expressions, ids, flags, strict=True):
        # Length-prefixed, so that no two different rule lists read as the same bytes.
        digest.update(f"{rule_id} {flag} {len(expression)}\n".encode())
        digest.update(expression)
    return digest.digest()


def _load(hyperscan: Any, path: Path, key: bytes) -> Any | None:
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        _LOG.debug("hyperscan cache %s unreadable (%s): compiling", path, exc)
        return None
    payload = content[_HEADER_SIZE:]
    if (
        content[: len(_MAGIC)] != _MAGIC
        or content[len(_MAGIC) : len(_MAGIC) + _DIGEST_SIZE] != key
        or content[len(_MAGIC) + _DIGEST_SIZE : _HEADER_SIZE] != hashlib.sha256(payload).digest()
    ):
        _LOG.debug("hyperscan cache %s damaged or not for these rules: compiling", path)
        return None
    try:
        database = hyperscan.loadb(payload, hyperscan.HS_MODE_BLOCK)
        # `loadb` (python-hyperscan 0.9.1) leaves the database without the scratch space that
        # `compile` allocates and `scan` uses: allocate it here, as `compile` does. (The slot
        # held a borrowed `None`, which the setter releases; `Scratch()` leaks one reference
        # to `None`, which makes up for it: tests/detection/test_hyperscan_cache.py checks.)
        database.scratch = hyperscan.Scratch(database)
    except hyperscan.error as exc:  # another library version or CPU platform
        _LOG.debug("hyperscan cache %s not loadable here (%r): compiling", path, exc)
        return None
    _LOG.debug("hyperscan database loaded from %s", path)
    return database


def _store(hyperscan: Any, path: Path, key: bytes, database: Any) -> bool:
    payload = hyperscan.dumpb(database)
    content = _MAGIC + key + hashlib.sha256(payload).digest() + payload
    temporary: str | None = None
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        with os.fdopen(handle, "wb") as file:
            file.write(content)
        os.replace(temporary, path)  # atomic: a reader sees the old entry, none, or this one whole
    except OSError as exc:
        _LOG.debug("hyperscan cache %s not writable (%s): compiled database not kept", path, exc)
        if temporary is not None:
            _remove_quietly(temporary)
        return False
    _LOG.debug("hyperscan database compiled and cached at %s", path)
    return True


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError as exc:
        _LOG.debug("left the temporary %s behind (%s)", path, exc)
