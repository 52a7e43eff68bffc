"""Mattermost-style 26-character ids: base32 of 16 bytes with Mattermost's alphabet."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets

ALPHABET = "ybndrfg8ejkmcpqxot1uwisza345h769"
_STD_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_TO_MM = str.maketrans(_STD_ALPHABET, ALPHABET)
_VALID_ID = re.compile(r"^[a-z0-9]{26}$")


def encode_id(raw: bytes) -> str:
    """Encode 16 bytes as a 26-character id, exactly as `model.NewId` does with a UUID."""
    if len(raw) != 16:
        raise ValueError(f"an id needs 16 bytes, got {len(raw)}")
    return base64.b32encode(raw).decode("ascii").rstrip("=").translate(_TO_MM)


def random_id() -> str:
    """A fresh random id (request ids, trigger ids): not reproducible on purpose."""
    return encode_id(secrets.token_bytes(16))


def is_valid_id(value: str) -> bool:
    """Mattermost's `IsValidId`: 26 lowercase letters or digits."""
    return bool(_VALID_ID.match(value))


class IdGenerator:
    """Deterministic ids: the n-th id of a generator depends only on its seed and n.

    The same seed content therefore yields the same user, channel and post ids on every run,
    which keeps test failures reproducible.
    """

    def __init__(self, seed: bytes) -> None:
        self._seed = hashlib.sha256(seed).digest()
        self._counter = 0

    def next_id(self) -> str:
        """Return the next id of the sequence."""
        self._counter += 1
        digest = hashlib.sha256(self._seed + self._counter.to_bytes(8, "big")).digest()
        return encode_id(digest[:16])
