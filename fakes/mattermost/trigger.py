"""Trigger ids: the server's ECDSA P-256 signed proof that it minted an interaction for a user, recently.

Format (`model.GenerateTriggerId` / `DecodeAndVerifyTriggerId`):
``base64std("<clientTriggerId>:<userId>:<unixMillis>:" + base64std(DER ECDSA signature))``, where the
signature covers SHA-256 of ``"<clientTriggerId>:<userId>:<unixMillis>:"`` (trailing colon included). The
public key is published as `AsymmetricSigningPublicKey` (base64 of the DER SubjectPublicKeyInfo) in
`GET /api/v4/config/client?format=old`. The client gets only the client trigger id back.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from fakes.mattermost.errors import ApiError
from fakes.mattermost.ids import random_id

#: The order of the P-256 group: a private scalar lies in [1, n - 1].
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_GO_INT = re.compile(r"^[+-]?[0-9]+$")
_INT64 = 2**63


@dataclass(frozen=True)
class Trigger:
    """A freshly minted trigger: the part the clicking client gets and the signed id the integration gets."""

    client_trigger_id: str
    trigger_id: str


class TriggerSigner:
    """The server's `AsymmetricSigningKey`: mints and verifies trigger ids."""

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(key.curve, ec.SECP256R1):
            raise ValueError("the trigger signing key must be on P-256")
        self._key = key

    @classmethod
    def from_seed(cls, seed: bytes) -> TriggerSigner:
        """A key derived from the seed: the same seed gives the same key across restarts, as the real server
        keeps its key in the database."""
        digest = hashlib.sha256(b"fake-mattermost asymmetric signing key\0" + seed).digest()
        scalar = int.from_bytes(digest, "big") % (_P256_ORDER - 1) + 1
        return cls(ec.derive_private_key(scalar, ec.SECP256R1()))

    @classmethod
    def random(cls) -> TriggerSigner:
        """A fresh random key (key rotation in tests)."""
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The verifying key."""
        return self._key.public_key()

    def public_key_b64(self) -> str:
        """`AsymmetricSigningPublicKey`: base64 (standard, padded) of the DER SubjectPublicKeyInfo."""
        der = self.public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(der).decode("ascii")

    def mint(self, user_id: str, now_ms: int) -> Trigger:
        """`GenerateTriggerId`: a new client trigger id, and the signed trigger id for the integration."""
        client_trigger_id = random_id()
        data = f"{client_trigger_id}:{user_id}:{now_ms}:"
        signature = self._key.sign(data.encode("utf-8"), ec.ECDSA(hashes.SHA256()))  # DER, as Go's Sign
        signed = data + base64.b64encode(signature).decode("ascii")
        return Trigger(client_trigger_id, base64.b64encode(signed.encode("utf-8")).decode("ascii"))

    def verify(self, trigger_id: str, now_ms: int, timeout_seconds: int) -> tuple[str, str]:
        """`DecodeAndVerifyTriggerId`: (client trigger id, user id), or the server's 400 for what is wrong.

        The checks run in the server's order: base64, four fields, age (an unparsable timestamp reads as 0,
        so it is expired), the signature's base64, its ASN.1, the signature itself.
        """
        try:
            decoded = _b64decode(trigger_id).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError) as exc:
            raise _trigger_error(
                "base64_decode_failed", "Failed to decode base64 for trigger ID for interactive dialog."
            ) from exc
        parts = decoded.split(":")
        if len(parts) != 4:
            raise _trigger_error("missing_data", "Trigger ID missing required data for interactive dialog.")
        client_trigger_id, user_id, stamp, encoded_signature = parts
        minted = int(stamp) if _GO_INT.match(stamp) and -_INT64 <= int(stamp) < _INT64 else 0
        if now_ms - minted > timeout_seconds * 1000:
            raise _trigger_error(
                "expired",
                "Trigger ID for interactive dialog is expired. "
                f"Trigger IDs live for a maximum of {go_duration(timeout_seconds)}.",
            )
        try:
            signature = _b64decode(encoded_signature)
        except (binascii.Error, ValueError) as exc:
            raise _trigger_error(
                "base64_decode_failed_signature",
                "Failed to decode base64 signature of trigger ID for interactive dialog.",
            ) from exc
        try:
            r, s = decode_dss_signature(signature)
        except ValueError as exc:
            raise _trigger_error(
                "signature_decode_failed", "Failed to decode base64 signature of trigger ID for interactive dialog."
            ) from exc
        data = f"{client_trigger_id}:{user_id}:{stamp}:".encode()
        try:
            if r <= 0 or s <= 0:
                raise InvalidSignature
            self.public_key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature as exc:
            raise _trigger_error(
                "verify_signature_failed", "Signature verification failed of trigger ID for interactive dialog."
            ) from exc
        return client_trigger_id, user_id


def go_duration(seconds: int) -> str:
    """Go's `time.Duration.String` for a whole number of seconds: `30s`, `2m0s`, `1h0m0s`."""
    if seconds == 0:
        return "0s"
    sign = "-" if seconds < 0 else ""
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{sign}{minutes}m{secs}s"
    return f"{sign}{secs}s"


def _b64decode(text: str) -> bytes:
    # Go's StdEncoding decoder skips CR and LF and otherwise insists on the padded standard alphabet.
    return base64.b64decode(text.replace("\r", "").replace("\n", ""), validate=True)


def _trigger_error(suffix: str, message: str) -> ApiError:
    return ApiError(400, f"interactive_message.decode_trigger_id.{suffix}", message)
