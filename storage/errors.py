"""The storage package's errors: what `AttackStore` and the rows it writes raise."""

from __future__ import annotations

__all__ = ["StorageError", "StorageUnavailableError"]


class StorageError(Exception):
    """The database could not be opened, read or written."""


class StorageUnavailableError(StorageError):
    """The database cannot be reached now; the same write may succeed later."""
