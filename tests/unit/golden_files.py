"""Access to the byte-exact golden texts under tests/unit/golden/."""

from __future__ import annotations

from pathlib import Path

GOLDEN_DIR = Path(__file__).parent / "golden"


def golden(name: str) -> str:
    """The golden text `name`, decoded from UTF-8 without any newline translation."""
    return (GOLDEN_DIR / name).read_bytes().decode("utf-8")
