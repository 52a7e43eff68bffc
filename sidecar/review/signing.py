"""HMAC-signed button contexts and reason-dialog states, and the book of single-use nonces.

Keys come from `review.hmac_keys_file`: random keys of at least 32 bytes, each with an id. The first key
signs; every key verifies, so a new key can be put first while buttons signed with the old one still work,
and the old key removed once those have expired. The keys are independent of the Mattermost token (a MAC key
derived from the bot token would let anyone holding the token forge clicks).

A button context is what Mattermost stores with the post and sends back, unchanged and never shown to any
client, on every click (`integration.context`). It is a flat map of strings (Go decodes JSON numbers as
float64, so numbers are kept as text):

    v    format version, "1"          ch   channel id the post went to
    kid  id of the signing key        pid  post id, "" when signed before the post existed
    rid  access request id            iat  issued at, unix seconds
    act  "approve" or "deny"          exp  expires at, unix seconds
    n    random nonce                 sig  HMAC-SHA256 of the fields above, base64url without padding

A dialog state (the reason form's `state`, which the client echoes back and could change) has the same fields
plus `uid`, the Mattermost user verified at click time, and is a JSON string. It is single-use: `NonceBook`
remembers consumed nonces until they expire.

The MAC covers a purpose tag (so a context never passes as a state or the reverse) and each field as
`<name>=<byte length>:<value>` in a fixed order, so no two different maps encode alike. MACs are compared in
constant time, and nothing in a map is trusted before its MAC verifies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import hmac
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from sidecar.domain.errors import ClickRefused
from sidecar.domain.secret import Secret
from sidecar.review.texts import (
    BUTTON_EXPIRED,
    DIALOG_INVALID,
    DIALOG_REPLAYED,
    IN_TELEPORT,
    INVALID_BUTTON,
    WRONG_PLACE,
    Outcome,
    refused,
    shown,
)

__all__ = [
    "ACTIONS",
    "MIN_KEY_BYTES",
    "ActionContext",
    "DialogState",
    "KeyRing",
    "NonceBook",
    "decode_key",
    "replayed_state",
    "sign_action",
    "sign_dialog_state",
    "verify_action",
    "verify_dialog_state",
]

ACTIONS: Final = ("approve", "deny")
MIN_KEY_BYTES: Final = 32
MAX_KEY_BYTES: Final = 1024
VERSION: Final = "1"
KEY_ID: Final = re.compile(r"[A-Za-z0-9._-]{1,64}")

_ACTION_TAG: Final = b"teleport-mattermost review action context\n"
_STATE_TAG: Final = b"teleport-mattermost review dialog state\n"
_ACTION_FIELDS: Final = ("v", "kid", "rid", "act", "ch", "pid", "iat", "exp", "n")
_STATE_FIELDS: Final = ("v", "kid", "rid", "act", "ch", "pid", "uid", "exp", "n")
_MAX_FIELD: Final = 256  # every field is an id, a number or a nonce; anything longer is not ours
_MAX_STATE: Final = 4096
_DIGITS: Final = re.compile(r"[0-9]{1,12}")


def decode_key(text: str) -> bytes:
    """A key written as standard or URL-safe base64 (padding optional); raises ValueError without quoting it."""
    cleaned = text.strip()
    padded = cleaned + "=" * (-len(cleaned) % 4)
    alphabet = padded.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(alphabet, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the key is not base64") from None


class KeyRing:
    """The HMAC keys by id, in file order: the first signs, all verify. Its repr names only the key ids."""

    __slots__ = ("_keys", "_order")

    def __init__(self, keys: Sequence[tuple[str, Secret]]) -> None:
        if not keys:
            raise ValueError("a key ring needs at least one key")
        self._order = tuple(kid for kid, _ in keys)
        if len(set(self._order)) != len(self._order):
            raise ValueError("key ids must be unique")
        self._keys: dict[str, Secret] = {}
        for kid, secret in keys:
            if not KEY_ID.fullmatch(kid):
                raise ValueError("a key id is 1 to 64 letters, digits, '.', '_' or '-'")
            if not MIN_KEY_BYTES <= len(decode_key(secret.reveal())) <= MAX_KEY_BYTES:
                raise ValueError(f"a key must be {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes")
            self._keys[kid] = secret

    @property
    def signing_kid(self) -> str:
        """The id of the key that signs."""
        return self._order[0]

    @property
    def kids(self) -> tuple[str, ...]:
        """Every key id, the signing one first."""
        return self._order

    def mac(self, kid: str, message: bytes) -> bytes | None:
        """HMAC-SHA256 of `message` under key `kid`, or None for an unknown key id."""
        secret = self._keys.get(kid)
        if secret is None:
            return None
        return hmac.new(decode_key(secret.reveal()), message, hashlib.sha256).digest()

    def __repr__(self) -> str:
        return f"KeyRing(kids={list(self._order)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, KeyRing):
            return NotImplemented
        return self._order == other._order and all(self._keys[k] == other._keys[k] for k in self._order)

    def __hash__(self) -> int:
        return hash(self._order)


# --- encoding --------------------------------------------------------------------------------------


def _canonical(tag: bytes, fields: Sequence[str], values: Mapping[str, str]) -> bytes:
    parts = [tag]
    for name in fields:
        value = values[name].encode("utf-8")
        parts.append(f"{name}={len(value)}:".encode() + value + b"\n")
    return b"".join(parts)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def _seal(keys: KeyRing, tag: bytes, fields: Sequence[str], values: dict[str, str]) -> dict[str, str]:
    mac = keys.mac(values["kid"], _canonical(tag, fields, values))
    if mac is None:  # pragma: no cover - the signing kid is always in the ring
        raise ValueError("unknown signing key")
    return {**values, "sig": _b64(mac)}


def _open(keys: KeyRing, tag: bytes, fields: Sequence[str], raw: object) -> dict[str, str] | Outcome:
    """The verified fields of a signed map, or the outcome that refuses it."""
    if not isinstance(raw, Mapping):
        return Outcome.MALFORMED
    values: dict[str, str] = {}
    for name in (*fields, "sig"):
        value = raw.get(name)
        if not isinstance(value, str) or len(value) > _MAX_FIELD:
            return Outcome.MALFORMED
        values[name] = value
    if values["v"] != VERSION:
        return Outcome.MALFORMED
    expected = keys.mac(values["kid"], _canonical(tag, fields, values))
    if expected is None:
        return Outcome.UNKNOWN_KEY
    given = _unb64(values["sig"])
    if given is None or not hmac.compare_digest(expected, given):
        return Outcome.FORGED
    return values


def _seconds(value: str) -> int | None:
    return int(value) if _DIGITS.fullmatch(value) else None


# --- button contexts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionContext:
    """A verified button context."""

    request_id: str
    action: str
    channel_id: str
    post_id: str
    issued_at: int
    expires_at: int
    nonce: str
    kid: str


def sign_action(
    keys: KeyRing,
    *,
    request_id: str,
    action: str,
    channel_id: str,
    expires_at: int,
    now: int,
    post_id: str = "",
    nonce: str | None = None,
) -> dict[str, str]:
    """The signed context for one button (`integration.context`)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown review action {action!r}")
    values = {
        "v": VERSION,
        "kid": keys.signing_kid,
        "rid": request_id,
        "act": action,
        "ch": channel_id,
        "pid": post_id,
        "iat": str(now),
        "exp": str(expires_at),
        "n": nonce if nonce is not None else secrets.token_urlsafe(12),
    }
    return _seal(keys, _ACTION_TAG, _ACTION_FIELDS, values)


def verify_action(keys: KeyRing, raw: object, *, channel_id: str, post_id: str, now: float) -> ActionContext:
    """The context of a click, verified: MAC, action, expiry, and that it was signed for this channel and post.

    Raises ClickRefused (MALFORMED, UNKNOWN_KEY, FORGED, EXPIRED, WRONG_CHANNEL or WRONG_POST).
    """
    opened = _open(keys, _ACTION_TAG, _ACTION_FIELDS, raw)
    if isinstance(opened, Outcome):
        raise refused(opened, INVALID_BUTTON)
    issued, expires = _seconds(opened["iat"]), _seconds(opened["exp"])
    if opened["act"] not in ACTIONS or issued is None or expires is None or not opened["rid"]:
        raise refused(Outcome.MALFORMED, INVALID_BUTTON)
    context = ActionContext(
        request_id=opened["rid"],
        action=opened["act"],
        channel_id=opened["ch"],
        post_id=opened["pid"],
        issued_at=issued,
        expires_at=expires,
        nonce=opened["n"],
        kid=opened["kid"],
    )
    if now >= expires:
        how = f"{IN_TELEPORT} (request {shown(context.request_id)})"
        raise refused(Outcome.EXPIRED, BUTTON_EXPIRED.format(how=how))
    if not hmac.compare_digest(context.channel_id.encode(), channel_id.encode()):
        raise refused(Outcome.WRONG_CHANNEL, WRONG_PLACE)
    if context.post_id and not hmac.compare_digest(context.post_id.encode(), post_id.encode()):
        raise refused(Outcome.WRONG_POST, WRONG_PLACE)
    return context


# --- dialog states ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DialogState:
    """A verified reason-dialog state: what the click decided, for the user it was verified as."""

    request_id: str
    action: str
    channel_id: str
    post_id: str
    user_id: str
    expires_at: int
    nonce: str


def sign_dialog_state(
    keys: KeyRing,
    *,
    request_id: str,
    action: str,
    channel_id: str,
    post_id: str,
    user_id: str,
    expires_at: int,
    nonce: str | None = None,
) -> str:
    """The signed `state` of a reason dialog, as a compact JSON string."""
    if action not in ACTIONS:
        raise ValueError(f"unknown review action {action!r}")
    values = {
        "v": VERSION,
        "kid": keys.signing_kid,
        "rid": request_id,
        "act": action,
        "ch": channel_id,
        "pid": post_id,
        "uid": user_id,
        "exp": str(expires_at),
        "n": nonce if nonce is not None else secrets.token_urlsafe(16),
    }
    return json.dumps(_seal(keys, _STATE_TAG, _STATE_FIELDS, values), separators=(",", ":"), sort_keys=True)


def verify_dialog_state(keys: KeyRing, state: object, *, user_id: str, channel_id: str, now: float) -> DialogState:
    """A dialog submission's state, verified: MAC, expiry, the submitting user and the channel.

    Single use is the caller's job (`NonceBook.consume`), done only when the review is about to be submitted,
    so a form answered with a field error can be sent again. Raises ClickRefused.
    """
    if not isinstance(state, str) or len(state) > _MAX_STATE:
        raise refused(Outcome.MALFORMED, DIALOG_INVALID)
    try:
        raw = json.loads(state)
    except ValueError:
        raise refused(Outcome.MALFORMED, DIALOG_INVALID) from None
    opened = _open(keys, _STATE_TAG, _STATE_FIELDS, raw)
    if isinstance(opened, Outcome):
        raise refused(opened, DIALOG_INVALID)
    expires = _seconds(opened["exp"])
    if opened["act"] not in ACTIONS or expires is None or not opened["rid"]:
        raise refused(Outcome.MALFORMED, DIALOG_INVALID)
    if now >= expires:
        raise refused(Outcome.EXPIRED, DIALOG_INVALID)
    if not hmac.compare_digest(opened["uid"].encode(), user_id.encode()):
        raise refused(Outcome.WRONG_USER, DIALOG_INVALID)
    if not hmac.compare_digest(opened["ch"].encode(), channel_id.encode()):
        raise refused(Outcome.WRONG_CHANNEL, DIALOG_INVALID)
    return DialogState(
        request_id=opened["rid"],
        action=opened["act"],
        channel_id=opened["ch"],
        post_id=opened["pid"],
        user_id=opened["uid"],
        expires_at=expires,
        nonce=opened["n"],
    )


def replayed_state() -> ClickRefused:
    """The refusal for a dialog state whose nonce was already consumed."""
    return refused(Outcome.REPLAYED, DIALOG_REPLAYED)


# --- single use ------------------------------------------------------------------------------------


class NonceBook:
    """Nonces consumed and not yet expired. Bounded: when full of live nonces it refuses new ones (fails closed).

    In-process memory: with several replicas behind one `public_url`, a replay sent to another replica is not
    caught here, and Teleport's one-review-per-user rule is what stops a second review.
    """

    def __init__(self, capacity: int = 100_000) -> None:
        self._capacity = capacity
        self._expiry: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._expiry)

    def consume(self, nonce: str, expires_at: float, now: float) -> bool:
        """Mark `nonce` used until `expires_at`; False when it was already used, or the book is full."""
        self._prune(now)
        if nonce in self._expiry or len(self._expiry) >= self._capacity:
            return False
        self._expiry[nonce] = expires_at
        heapq.heappush(self._heap, (expires_at, nonce))
        return True

    def release(self, nonce: str) -> None:
        """Forget `nonce`, so it can be used again (after a failure that submitted nothing)."""
        self._expiry.pop(nonce, None)

    def _prune(self, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            expires_at, nonce = heapq.heappop(self._heap)
            if self._expiry.get(nonce) == expires_at:
                del self._expiry[nonce]
