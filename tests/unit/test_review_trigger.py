"""Mattermost's signed trigger ids, checked against a real ECDSA P-256 key made for each test."""

from __future__ import annotations

import asyncio
import base64

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sidecar.domain.errors import ClickRefused, TransientError
from sidecar.review.trigger import TriggerVerifier, VerifiedTrigger, load_signing_key
from tests.unit.test_review_kit import ALICE, MALLORY, NOW, Clock, FakeSigningKey, MattermostKey


@pytest.fixture
def server() -> MattermostKey:
    return MattermostKey()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def source(server: MattermostKey) -> FakeSigningKey:
    return FakeSigningKey(server.published())


@pytest.fixture
def verifier(source: FakeSigningKey, clock: Clock) -> TriggerVerifier:
    return TriggerVerifier(source, clock=clock)


async def outcome(verifier: TriggerVerifier, trigger: object, user_id: str = ALICE) -> str:
    with pytest.raises(ClickRefused) as caught:
        await verifier.verify(trigger, user_id)
    return caught.value.outcome


def reencode(trigger: str, change: dict[int, str]) -> str:
    parts = base64.b64decode(trigger).decode().split(":")
    for index, value in change.items():
        parts[index] = value
    return base64.b64encode(":".join(parts).encode()).decode()


async def test_a_genuine_trigger_verifies(server: MattermostKey, verifier: TriggerVerifier) -> None:
    trigger = server.trigger(ALICE, NOW - 2, client_id="clientid1")
    assert await verifier.verify(trigger, ALICE) == VerifiedTrigger("clientid1", ALICE, int((NOW - 2) * 1000))


async def test_the_format_is_exactly_mattermosts(server: MattermostKey, verifier: TriggerVerifier) -> None:
    # base64std("<client>:<user>:<millis>:" + base64std(DER signature over SHA-256 of the part with the colon))
    signed = f"abc:{ALICE}:{int(NOW * 1000)}:"
    signature = server.key.sign(signed.encode(), ec.ECDSA(hashes.SHA256()))
    trigger = base64.b64encode((signed + base64.b64encode(signature).decode()).encode()).decode()
    assert (await verifier.verify(trigger, ALICE)).client_trigger_id == "abc"
    # the same signature over the text without the trailing colon does not verify
    unsigned = f"abc:{ALICE}:{int(NOW * 1000)}"
    bad_sig = server.key.sign(unsigned.encode(), ec.ECDSA(hashes.SHA256()))
    bad = base64.b64encode((signed + base64.b64encode(bad_sig).decode()).encode()).decode()
    assert await outcome(verifier, bad) == "trigger_invalid"


@pytest.mark.parametrize(
    "trigger",
    [
        "",
        None,
        42,
        "not base64!",
        base64.b64encode(b"only:three:parts").decode(),
        base64.b64encode(b"a:b:c:d:e").decode(),
        base64.b64encode(f"a:{ALICE}:notanumber:AAAA".encode()).decode(),
        base64.b64encode(f"a:{ALICE}:123:not base64".encode()).decode(),
        base64.b64encode(f":{ALICE}:123:AAAA".encode()).decode(),
        base64.b64encode(b"\xff\xfe:x:1:AAAA").decode(),
        "A" * 2000,
    ],
)
async def test_malformed_triggers_are_refused(
    verifier: TriggerVerifier, source: FakeSigningKey, trigger: object
) -> None:
    assert await outcome(verifier, trigger) in ("trigger_missing", "trigger_invalid")
    assert source.fetches == 0  # nothing is fetched for a trigger that cannot even be parsed


async def test_a_trigger_naming_another_user(server: MattermostKey, verifier: TriggerVerifier) -> None:
    assert await outcome(verifier, server.trigger(MALLORY, NOW), ALICE) == "trigger_user_mismatch"


async def test_a_trigger_with_its_user_swapped(server: MattermostKey, verifier: TriggerVerifier) -> None:
    assert await outcome(verifier, reencode(server.trigger(MALLORY, NOW), {1: ALICE})) == "trigger_invalid"


async def test_a_trigger_with_its_time_changed(server: MattermostKey, verifier: TriggerVerifier) -> None:
    assert await outcome(verifier, reencode(server.trigger(ALICE, NOW - 600), {2: str(int(NOW * 1000))})) == (
        "trigger_invalid"
    )


async def test_age_and_clock_skew(server: MattermostKey, verifier: TriggerVerifier) -> None:
    assert await outcome(verifier, server.trigger(ALICE, NOW - 61)) == "trigger_expired"
    assert await outcome(verifier, server.trigger(ALICE, NOW + 6)) == "trigger_invalid"
    await verifier.verify(server.trigger(ALICE, NOW - 59), ALICE)
    await verifier.verify(server.trigger(ALICE, NOW + 4), ALICE)


async def test_a_trigger_is_used_once(server: MattermostKey, verifier: TriggerVerifier, clock: Clock) -> None:
    trigger = server.trigger(ALICE, NOW)
    await verifier.verify(trigger, ALICE)
    assert await outcome(verifier, trigger) == "replayed"
    clock.now += 70
    assert await outcome(verifier, trigger) == "trigger_expired"


async def test_the_key_is_cached(server: MattermostKey, verifier: TriggerVerifier, source: FakeSigningKey) -> None:
    for offset in range(3):
        await verifier.verify(server.trigger(ALICE, NOW - offset), ALICE)
    assert source.fetches == 1


async def test_a_rotated_key_is_fetched_once_on_the_first_failure(
    verifier: TriggerVerifier, source: FakeSigningKey, clock: Clock, server: MattermostKey
) -> None:
    await verifier.verify(server.trigger(ALICE, NOW), ALICE)
    rotated = MattermostKey()
    source.published = rotated.published()
    clock.now += 11  # the last fetch is older than refetch_after
    await verifier.verify(rotated.trigger(ALICE, clock.now), ALICE)
    assert source.fetches == 2
    # a bad signature now fails after one more fetch, and a burst of them does not fetch again
    assert await outcome(verifier, server.trigger(ALICE, clock.now)) == "trigger_invalid"
    clock.now += 11
    for _ in range(5):
        assert await outcome(verifier, server.trigger(ALICE, clock.now)) == "trigger_invalid"
    assert source.fetches == 3


async def test_concurrent_failures_share_one_refetch(
    verifier: TriggerVerifier, source: FakeSigningKey, clock: Clock, server: MattermostKey
) -> None:
    await verifier.verify(server.trigger(ALICE, NOW), ALICE)
    rotated = MattermostKey()
    source.published = rotated.published()
    clock.now += 11
    await asyncio.gather(*(verifier.verify(rotated.trigger(ALICE, clock.now), ALICE) for _ in range(4)))
    assert source.fetches == 2


async def test_no_key_or_an_unusable_key_fails_closed(
    source: FakeSigningKey, clock: Clock, server: MattermostKey
) -> None:
    trigger = server.trigger(ALICE, NOW)
    source.published = ""
    assert await outcome(TriggerVerifier(source, clock=clock), trigger) == "trigger_key_missing"
    source.published = "bm90IGEga2V5"
    assert await outcome(TriggerVerifier(source, clock=clock), trigger) == "trigger_key_missing"
    rsa_der = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    source.published = base64.b64encode(rsa_der).decode()
    assert await outcome(TriggerVerifier(source, clock=clock), trigger) == "trigger_key_missing"
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    source.published = base64.b64encode(p384).decode()
    assert await outcome(TriggerVerifier(source, clock=clock), trigger) == "trigger_key_missing"


async def test_an_unreachable_mattermost_fails_closed_and_is_asked_again(
    source: FakeSigningKey, clock: Clock, server: MattermostKey
) -> None:
    verifier = TriggerVerifier(source, clock=clock)
    source.error = TransientError("GET /api/v4/config/client: 503")
    assert await outcome(verifier, server.trigger(ALICE, NOW)) == "trigger_key_unavailable"
    source.error = None
    await verifier.verify(server.trigger(ALICE, NOW), ALICE)
    assert source.fetches == 2


def test_load_signing_key_accepts_only_p256(server: MattermostKey) -> None:
    assert isinstance(load_signing_key(server.published()).curve, ec.SECP256R1)
    with pytest.raises(ValueError):
        load_signing_key("%%%")
