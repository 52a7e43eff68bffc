"""Trigger ids: minted and verified as the real server does, the key published in the client config."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from fakes.mattermost.errors import ApiError
from fakes.mattermost.seed import default_seed, parse_seed
from fakes.mattermost.server import FakeMattermost
from fakes.mattermost.trigger import TriggerSigner, go_duration
from tests.fakes.mattermost.conftest import Client
from tests.fakes.mattermost.integration_side import verify_trigger

NOW = 1_700_000_000_000
USER = "u" * 26


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_a_minted_trigger_verifies_with_the_published_key() -> None:
    signer = TriggerSigner.random()
    trigger = signer.mint(USER, NOW)
    assert len(trigger.client_trigger_id) == 26
    assert verify_trigger(signer.public_key_b64(), trigger.trigger_id) == (trigger.client_trigger_id, USER, NOW)
    assert signer.verify(trigger.trigger_id, NOW + 30_000, 30) == (trigger.client_trigger_id, USER)


def test_the_key_is_stable_per_seed() -> None:
    first = TriggerSigner.from_seed(default_seed().source)
    again = TriggerSigner.from_seed(default_seed().source)
    other = TriggerSigner.from_seed(parse_seed('[admin]\nusername="a"\nemail="a@x.y"\ntoken="t"\n').source)
    assert first.public_key_b64() == again.public_key_b64() != other.public_key_b64()
    assert isinstance(first.public_key.curve, ec.SECP256R1)


@pytest.mark.parametrize(
    ("trigger_id", "error"),
    [
        ("junk!", "base64_decode_failed"),
        ("", "missing_data"),
        (_b64("junk!"), "missing_data"),
        (_b64("a:b:c:d:e"), "missing_data"),
        (_b64(f"t:{USER}:1234567890:junk"), "expired"),
        (_b64(f"t:{USER}:not-a-number:junk"), "expired"),
        (_b64(f"t:{USER}:{NOW}:junk!"), "base64_decode_failed_signature"),
        (_b64(f"t:{USER}:{NOW}:junk"), "signature_decode_failed"),
    ],
)
def test_malformed_triggers_fail_in_the_servers_order(trigger_id: str, error: str) -> None:
    with pytest.raises(ApiError) as caught:
        TriggerSigner.random().verify(trigger_id, NOW, 30)
    assert caught.value.status == 400
    assert caught.value.error_id == f"interactive_message.decode_trigger_id.{error}"


def test_expiry_and_foreign_keys() -> None:
    signer = TriggerSigner.random()
    trigger = signer.mint(USER, NOW)
    with pytest.raises(ApiError) as expired:
        signer.verify(trigger.trigger_id, NOW + 30_001, 30)
    assert expired.value.message == (
        "Trigger ID for interactive dialog is expired. Trigger IDs live for a maximum of 30s."
    )
    with pytest.raises(ApiError) as foreign:
        TriggerSigner.random().verify(trigger.trigger_id, NOW, 30)
    assert foreign.value.error_id == "interactive_message.decode_trigger_id.verify_signature_failed"
    client_part, _, stamp, signature = base64.b64decode(trigger.trigger_id).decode().split(":")
    other_user = _b64(f"{client_part}:{'v' * 26}:{stamp}:{signature}")
    with pytest.raises(ApiError) as swapped:
        signer.verify(other_user, NOW, 30)
    assert swapped.value.error_id == "interactive_message.decode_trigger_id.verify_signature_failed"


def test_go_durations() -> None:
    assert [go_duration(s) for s in (0, 1, 30, 60, 90, 3600, 3661)] == ["0s", "1s", "30s", "1m0s", "1m30s",
                                                                         "1h0m0s", "1h1m1s"]


async def test_rotation_publishes_a_new_key(api: Client, mm: FakeMattermost) -> None:
    before = (await api.call("GET", "/api/v4/config/client?format=old")).body["AsymmetricSigningPublicKey"]
    rotated = (await api.call("POST", "/fake/signing-key/rotate", "admin-token")).body["AsymmetricSigningPublicKey"]
    after = (await api.call("GET", "/api/v4/config/client?format=old")).body["AsymmetricSigningPublicKey"]
    assert before != rotated == after
    await api.call("POST", "/fake/reset", "admin-token")  # a reset keeps the key, like a restart
    kept = (await api.call("GET", "/api/v4/config/client?format=old")).body["AsymmetricSigningPublicKey"]
    assert kept == after


async def test_the_test_face_mints_backdated_triggers(api: Client, mm: FakeMattermost) -> None:
    key = (await api.call("GET", "/api/v4/config/client?format=old")).body["AsymmetricSigningPublicKey"]
    reply = await api.call("POST", "/fake/triggers", "admin-token", {"username": "reviewer", "minted_at": 5})
    assert reply.status == 200
    _, user_id, minted_at = verify_trigger(key, reply.body["trigger_id"])
    assert (user_id, minted_at) == (mm.control.user_id("reviewer"), 5)
    assert (await api.call("POST", "/fake/triggers", "admin-token", {"username": "ghost"})).status == 404
