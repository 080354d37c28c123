"""Where the test material lives, by path from the project root."""

from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
SAMPLES = PROJECT / "samples"
SHARED = PROJECT.parent / "shared"
