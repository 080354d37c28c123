"""The capture stage's errors: one base type, so callers can tell our failures from bugs."""

from __future__ import annotations

__all__ = ["CaptureError", "CaptureFormatError", "CaptureTruncatedError"]


class CaptureError(Exception):
    """A capture source could not be read."""


class CaptureFormatError(CaptureError):
    """The input is not a capture format we read (garbage, or an unknown format)."""


class CaptureTruncatedError(CaptureError):
    """The capture ends in the middle of a record: everything before it was read."""
