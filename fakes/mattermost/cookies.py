"""Post action cookies (`PostActionCookie`): the sealed copy of an action a client may send back with a click.

The server seals them with AES-256-GCM under its `PostActionCookieSecret` (base64 of nonce + ciphertext) and
hands them out only with posts it does not store (ephemeral posts). On a click a cookie is opened and its
channel checked for read access; it is used only when the post is not in the database, and then only for the
post it was made for.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fakes.mattermost import gojson

_NONCE_BYTES = 12


class BadCookie(ValueError):
    """The cookie does not open or does not decode."""


@dataclass(frozen=True)
class ActionCookie:
    """The fields of a `PostActionCookie` the click uses."""

    type: str
    post_id: str
    root_post_id: str
    channel_id: str
    data_source: str
    integration: dict[str, Any] | None
    retain_props: dict[str, Any]
    remove_props: list[str]


def secret_from_seed(seed: bytes) -> bytes:
    """A 32-byte secret derived from the seed (stable across restarts, like the real server's stored one)."""
    return hashlib.sha256(b"fake-mattermost post action cookie secret\0" + seed).digest()


def seal(cookie: dict[str, Any], secret: bytes) -> str:
    """Encrypt a cookie object as `encryptPostActionCookie` does."""
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(secret).encrypt(nonce, gojson.marshal(cookie), None)
    return base64.b64encode(nonce + sealed).decode("ascii")


def open_cookie(encoded: str, secret: bytes) -> ActionCookie:
    """`DecryptPostActionCookie` then JSON into `PostActionCookie`; BadCookie when either fails."""
    try:
        combined = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadCookie("not base64") from exc
    if len(combined) < _NONCE_BYTES:
        raise BadCookie("cookie too short")
    try:
        plain = AESGCM(secret).decrypt(combined[:_NONCE_BYTES], combined[_NONCE_BYTES:], None)
        doc = json.loads(plain)
    except (InvalidTag, ValueError) as exc:
        raise BadCookie("does not open") from exc
    if not isinstance(doc, dict):
        raise BadCookie("not an object")
    strings = {name: doc.get(name) or "" for name in ("type", "post_id", "root_post_id", "channel_id", "data_source")}
    integration = doc.get("integration")
    retain = doc.get("retain_props") or {}
    remove = doc.get("remove_props") or []
    if not all(isinstance(v, str) for v in strings.values()):
        raise BadCookie("wrong field type")
    if integration is not None and not (
        isinstance(integration, dict)
        and isinstance(integration.get("url", ""), str)
        and isinstance(integration.get("context") or {}, dict)
    ):
        raise BadCookie("wrong integration type")
    if not isinstance(retain, dict) or not isinstance(remove, list) or not all(isinstance(k, str) for k in remove):
        raise BadCookie("wrong props type")
    return ActionCookie(integration=integration, retain_props=retain, remove_props=remove, **strings)
