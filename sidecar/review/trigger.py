"""Mattermost's signed `trigger_id`: the server's proof that it minted this interaction for this user, just now.

Mattermost sends no authentication with a button click, so a caller who can reach the sidecar could post a
copied context with someone else's `user_id`. The trigger id closes that gap: it is

    base64std("<clientTriggerId>:<userId>:<unixMillis>:" + base64std(signature))

where the signature is an ASN.1 DER ECDSA P-256 signature over SHA-256 of `"<clientTriggerId>:<userId>:<unixMillis>:"`
(trailing colon included), made with the server's `AsymmetricSigningKey` (`model.GenerateTriggerId`,
`DecodeAndVerifyTriggerId`). The public key is `AsymmetricSigningPublicKey` in `GET /api/v4/config/client?format=old`
(base64 of the DER SubjectPublicKeyInfo); the server keeps its key in the database, so it is stable across restarts
and nodes, and is cached here until a verification fails, then fetched again (at most once per `refetch_after`).

The signature covers neither the post, the action nor the context: those are the HMAC's job. This module checks
the signature, that the trigger names the clicking user, its age, and that it is used once.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from sidecar.domain.errors import SidecarError
from sidecar.review.ports import SigningKeySource
from sidecar.review.signing import NonceBook
from sidecar.review.texts import (
    REPLAYED,
    TRIGGER_EXPIRED,
    TRIGGER_INVALID,
    TRIGGER_KEY_MISSING,
    TRIGGER_UNAVAILABLE,
    Outcome,
    refused,
)

__all__ = ["MAX_AGE", "TriggerVerifier", "VerifiedTrigger", "load_signing_key"]

MAX_AGE: Final = 60.0  # seconds: Mattermost calls the integration right after minting the trigger
SKEW: Final = 5.0  # seconds a trigger may seem to come from the future (clocks of two hosts)
REFETCH_AFTER: Final = 10.0  # seconds between two fetches of the key forced by failed verifications
_MAX_TRIGGER: Final = 1024


@dataclass(frozen=True)
class VerifiedTrigger:
    """A trigger id whose signature, user and age were checked."""

    client_trigger_id: str
    user_id: str
    issued_ms: int


def load_signing_key(published: str) -> ec.EllipticCurvePublicKey:
    """`AsymmetricSigningPublicKey` as a key; ValueError when it is not base64 DER of an EC P-256 public key."""
    try:
        key = load_der_public_key(base64.b64decode(published, validate=True))
    except (binascii.Error, ValueError, TypeError):
        raise ValueError("the published key is not base64 DER of a public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("the published key is not an EC P-256 key")
    return key


@dataclass(frozen=True)
class _Parsed:
    client_trigger_id: str
    user_id: str
    issued_ms: int
    signed: bytes
    signature: bytes


def _parse(trigger_id: object) -> _Parsed | None:
    if not isinstance(trigger_id, str) or not trigger_id or len(trigger_id) > _MAX_TRIGGER:
        return None
    try:
        text = base64.b64decode(trigger_id, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    parts = text.split(":")
    if len(parts) != 4 or not parts[0] or not parts[1] or not parts[2].isascii() or not parts[2].isdigit():
        return None
    try:
        signature = base64.b64decode(parts[3], validate=True)
    except (binascii.Error, ValueError):
        return None
    signed = f"{parts[0]}:{parts[1]}:{parts[2]}:".encode()
    return _Parsed(parts[0], parts[1], int(parts[2]), signed, signature)


def _valid(key: ec.EllipticCurvePublicKey, parsed: _Parsed) -> bool:
    try:
        key.verify(parsed.signature, parsed.signed, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


class TriggerVerifier:
    """Verifies trigger ids against Mattermost's published key (fetched through `source`, cached)."""

    def __init__(
        self,
        source: SigningKeySource,
        *,
        max_age: float = MAX_AGE,
        skew: float = SKEW,
        refetch_after: float = REFETCH_AFTER,
        clock: Callable[[], float] = time.time,
        seen: NonceBook | None = None,
    ) -> None:
        self._source = source
        self._max_age = max_age
        self._skew = skew
        self._refetch_after = refetch_after
        self._clock = clock
        self._seen = seen if seen is not None else NonceBook()
        self._key: ec.EllipticCurvePublicKey | None = None
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def verify(self, trigger_id: object, user_id: str) -> VerifiedTrigger:
        """The trigger, verified for `user_id`; raises ClickRefused saying why not.

        Order: format, signature (refetching the key once when it fails), the user it names, its age, single use.
        """
        parsed = _parse(trigger_id)
        if parsed is None:
            outcome = Outcome.TRIGGER_MISSING if not trigger_id else Outcome.TRIGGER_INVALID
            raise refused(outcome, TRIGGER_INVALID)
        key = await self._current()
        if not _valid(key, parsed):
            fresh = await self._refetch(key)
            if fresh is None or not _valid(fresh, parsed):
                raise refused(Outcome.TRIGGER_INVALID, TRIGGER_INVALID, detail="the signature does not verify")
        if parsed.user_id != user_id:
            raise refused(Outcome.TRIGGER_USER_MISMATCH, TRIGGER_INVALID, detail="the trigger names another user")
        now = self._clock()
        age = now - parsed.issued_ms / 1000
        if age > self._max_age:
            raise refused(Outcome.TRIGGER_EXPIRED, TRIGGER_EXPIRED, detail=f"issued {age:.0f}s ago")
        if age < -self._skew:
            raise refused(Outcome.TRIGGER_INVALID, TRIGGER_INVALID, detail="issued in the future")
        until = parsed.issued_ms / 1000 + self._max_age + self._skew
        if not self._seen.consume(parsed.client_trigger_id, until, now):
            raise refused(Outcome.REPLAYED, REPLAYED, detail="trigger id seen before")
        return VerifiedTrigger(parsed.client_trigger_id, parsed.user_id, parsed.issued_ms)

    async def _current(self) -> ec.EllipticCurvePublicKey:
        async with self._lock:
            if self._key is None:
                self._key = await self._load()
            return self._key

    async def _refetch(self, failed: ec.EllipticCurvePublicKey) -> ec.EllipticCurvePublicKey | None:
        """A newer key after a failed verification, or None when it was fetched too recently to ask again."""
        async with self._lock:
            if self._key is not None and self._key is not failed:
                return self._key  # another click already fetched a newer one
            if self._fetched_at is not None and self._clock() - self._fetched_at < self._refetch_after:
                return None
            self._key = await self._load()
            return self._key

    async def _load(self) -> ec.EllipticCurvePublicKey:
        """Fetch and parse the published key (under the lock); raises ClickRefused when there is none to use."""
        try:
            published = await self._source.signing_public_key()
        except SidecarError as exc:
            raise refused(Outcome.TRIGGER_KEY_UNAVAILABLE, TRIGGER_UNAVAILABLE, detail=str(exc)) from None
        finally:
            self._fetched_at = self._clock()
        if not published:
            raise refused(Outcome.TRIGGER_KEY_MISSING, TRIGGER_KEY_MISSING, detail="Mattermost publishes no key")
        try:
            return load_signing_key(published)
        except ValueError as exc:
            raise refused(Outcome.TRIGGER_KEY_MISSING, TRIGGER_KEY_MISSING, detail=str(exc)) from None
