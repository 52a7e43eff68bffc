"""Secrets that cannot be printed by accident, and the registry the log filter masks.

`Secret` wraps a token from the moment the config is parsed; only the code that builds the
`Authorization` header calls `.reveal()`. `repr`, `str`, f-strings and `%s` all give `***`.

The registry is a second line of defence: every secret value registered here is replaced by
`***` in log output even when some code path revealed it and formatted it into a message.
"""

from __future__ import annotations

import hmac
import threading
from typing import Final, final

__all__ = ["MASK", "Secret", "mask_secrets", "register_secret", "registered_secrets", "unregister_secret"]

MASK: Final = "***"

_lock = threading.Lock()
_registered: set[str] = set()


@final
class Secret:
    """An opaque secret string. Compare two `Secret`s with `==`; a plain `str` never equals one."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"Secret wraps a str, got {type(value).__name__}")
        self._value = value

    def reveal(self) -> str:
        """The secret value itself: only for building credentials, never for messages."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, format_spec: str) -> str:
        return format(MASK, format_spec)

    def __eq__(self, other: object) -> bool:
        # Comparing with a plain str is almost always a bug (a token check that can never pass,
        # or one that leaks the value through a timing side channel); refuse it.
        if isinstance(other, Secret):
            return _constant_time_equal(self._value, other._value)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling would write the value in clear; nothing in the sidecar needs it.
        raise TypeError("Secret values cannot be pickled")


def register_secret(value: str | Secret) -> None:
    """Mask `value` in every log line from now on. Empty values are ignored."""
    raw = value.reveal() if isinstance(value, Secret) else value
    if raw:
        with _lock:
            _registered.add(raw)


def unregister_secret(value: str | Secret) -> None:
    """Stop masking `value` (used when a token is replaced, and by tests)."""
    raw = value.reveal() if isinstance(value, Secret) else value
    with _lock:
        _registered.discard(raw)


def registered_secrets() -> frozenset[str]:
    """A snapshot of the registered values."""
    with _lock:
        return frozenset(_registered)


def mask_secrets(text: str) -> str:
    """Replace every registered secret in `text` by `***`."""
    secrets = registered_secrets()
    if not secrets:
        return text
    # Longest first, so a secret that contains another is masked whole.
    for value in sorted(secrets, key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    return text


def _constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
