"""What an integration does with Mattermost's signed trigger ids, written independently of the fake's code."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


def verify_trigger(public_key_b64: str, trigger_id: str) -> tuple[str, str, int]:
    """(client trigger id, user id, minted at ms) if the trigger id verifies with the published key.

    Raises `cryptography.exceptions.InvalidSignature` for a bad signature, ValueError for a malformed id.
    """
    key = serialization.load_der_public_key(base64.b64decode(public_key_b64, validate=True))
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert isinstance(key.curve, ec.SECP256R1)
    fields = base64.b64decode(trigger_id, validate=True).decode("ascii").split(":")
    if len(fields) != 4:
        raise ValueError("a trigger id has four fields")
    client_trigger_id, user_id, minted_at, signature = fields
    signed = f"{client_trigger_id}:{user_id}:{minted_at}:".encode()
    key.verify(base64.b64decode(signature, validate=True), signed, ec.ECDSA(hashes.SHA256()))
    return client_trigger_id, user_id, int(minted_at)
