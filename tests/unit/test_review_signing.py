"""Signed button contexts and dialog states: round trips, every refusal, key rotation, single use."""

from __future__ import annotations

import json

import pytest

from sidecar.domain.errors import ClickRefused
from sidecar.domain.secret import Secret
from sidecar.review.signing import (
    KeyRing,
    NonceBook,
    decode_key,
    sign_action,
    sign_dialog_state,
    verify_action,
    verify_dialog_state,
)
from tests.unit.test_review_kit import ALICE, BOB, CH1, CH2, KEY_A, KEY_B, P1, P2, R1, mm_id, ring

NOW = 1_900_000_000


def context(keys: KeyRing, **overrides: object) -> dict[str, str]:
    values: dict[str, object] = {
        "request_id": R1,
        "action": "approve",
        "channel_id": CH1,
        "expires_at": NOW + 600,
        "now": NOW,
    }
    values.update(overrides)
    return sign_action(keys, **values)  # type: ignore[arg-type]


def outcome_of(keys: KeyRing, raw: object, channel_id: str = CH1, post_id: str = P1, now: float = NOW) -> str:
    with pytest.raises(ClickRefused) as caught:
        verify_action(keys, raw, channel_id=channel_id, post_id=post_id, now=now)
    return caught.value.outcome


def test_a_context_round_trips_and_holds_only_strings() -> None:
    keys = ring()
    signed = context(keys, post_id=P1, nonce="n0")
    assert all(isinstance(v, str) for v in signed.values())
    assert set(signed) == {"v", "kid", "rid", "act", "ch", "pid", "iat", "exp", "n", "sig"}
    verified = verify_action(keys, signed, channel_id=CH1, post_id=P1, now=NOW + 1)
    assert (verified.request_id, verified.action, verified.channel_id, verified.post_id) == (R1, "approve", CH1, P1)
    assert (verified.issued_at, verified.expires_at, verified.nonce, verified.kid) == (NOW, NOW + 600, "n0", "k1")


def test_a_context_survives_mattermosts_json_round_trip_and_extra_keys() -> None:
    keys = ring()
    signed = json.loads(json.dumps(context(keys)))
    signed["selected_option"] = "ignored"  # Mattermost adds this for selects
    assert verify_action(keys, signed, channel_id=CH1, post_id=P1, now=NOW).request_id == R1


def test_nonces_differ_between_contexts() -> None:
    keys = ring()
    assert context(keys)["n"] != context(keys)["n"]


@pytest.mark.parametrize("field", ["v", "kid", "rid", "act", "ch", "pid", "iat", "exp", "n"])
def test_changing_any_field_breaks_the_signature(field: str) -> None:
    keys = ring(("k1", KEY_A), ("k2", KEY_B))
    signed = context(keys)
    changed = {**signed, field: signed[field] + "0" if field != "kid" else "k2"}
    assert outcome_of(keys, changed) in ("forged", "malformed")


@pytest.mark.parametrize(
    ("raw", "outcome"),
    [
        (None, "malformed"),
        ("text", "malformed"),
        ({}, "malformed"),
        ({"v": 1}, "malformed"),
    ],
)
def test_malformed_contexts(raw: object, outcome: str) -> None:
    assert outcome_of(ring(), raw) == outcome


def test_a_missing_or_overlong_field_is_malformed() -> None:
    keys = ring()
    signed = context(keys)
    assert outcome_of(keys, {k: v for k, v in signed.items() if k != "n"}) == "malformed"
    assert outcome_of(keys, {**signed, "rid": "x" * 300}) == "malformed"
    assert outcome_of(keys, {**signed, "v": "2"}) == "malformed"
    assert outcome_of(keys, {**signed, "sig": "!!!"}) == "forged"


def test_a_signed_but_nonsensical_context_is_malformed() -> None:
    keys = ring()
    assert outcome_of(keys, context(keys, request_id="")) == "malformed"
    # sign_action refuses unknown actions itself
    with pytest.raises(ValueError):
        context(keys, action="promote")


def test_expiry_channel_and_post_are_checked() -> None:
    keys = ring()
    assert outcome_of(keys, context(keys), now=NOW + 600) == "expired"
    assert outcome_of(keys, context(keys), channel_id=CH2) == "wrong_channel"
    assert outcome_of(keys, context(keys, post_id=P2)) == "wrong_post"
    # a context signed before the post existed is bound to the channel only
    assert verify_action(keys, context(keys), channel_id=CH1, post_id=P2, now=NOW).post_id == ""


def test_an_unknown_key_id_is_refused() -> None:
    signed = context(ring(("old", KEY_B)))
    assert outcome_of(ring(("k1", KEY_A)), signed) == "unknown_key"


def test_rotation_the_first_key_signs_and_every_key_verifies() -> None:
    old = ring(("2026-01", KEY_A))
    rotated = ring(("2026-07", KEY_B), ("2026-01", KEY_A))
    from_old = context(old)
    from_new = context(rotated)
    assert from_new["kid"] == "2026-07"
    assert verify_action(rotated, from_old, channel_id=CH1, post_id=P1, now=NOW).kid == "2026-01"
    assert verify_action(rotated, from_new, channel_id=CH1, post_id=P1, now=NOW).kid == "2026-07"
    retired = ring(("2026-07", KEY_B))
    assert outcome_of(retired, from_old) == "unknown_key"


def test_the_same_key_id_with_other_material_is_forged() -> None:
    signed = context(ring(("k1", KEY_A)))
    assert outcome_of(ring(("k1", KEY_B)), signed) == "forged"


def test_key_rings_never_show_their_keys() -> None:
    keys = ring(("k1", KEY_A), ("k2", KEY_B))
    assert repr(keys) == "KeyRing(kids=['k1', 'k2'])"
    assert KEY_A not in repr(keys) and KEY_A not in str(keys)
    assert keys.signing_kid == "k1" and keys.kids == ("k1", "k2")
    assert keys == ring(("k1", KEY_A), ("k2", KEY_B)) and keys != ring(("k1", KEY_B), ("k2", KEY_B))


@pytest.mark.parametrize(
    "keys",
    [
        [],
        [("k1", Secret(KEY_A)), ("k1", Secret(KEY_B))],
        [("bad id", Secret(KEY_A))],
        [("k1", Secret("c2hvcnQ="))],
    ],
    ids=["empty", "duplicate", "bad-id", "short"],
)
def test_a_key_ring_refuses_bad_keys(keys: list[tuple[str, Secret]]) -> None:
    with pytest.raises(ValueError):
        KeyRing(keys)


def test_keys_decode_from_standard_or_url_safe_base64_with_or_without_padding() -> None:
    raw = bytes(range(250, 256)) * 6
    import base64

    for text in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode().rstrip("=")):
        assert decode_key(text) == raw
    with pytest.raises(ValueError, match="not base64") as caught:
        decode_key("not*base64")
    assert "not*base64" not in str(caught.value)


# --- dialog states ------------------------------------------------------------------------------------


def state(keys: KeyRing, **overrides: object) -> str:
    values: dict[str, object] = {
        "request_id": R1,
        "action": "deny",
        "channel_id": CH1,
        "post_id": P1,
        "user_id": ALICE,
        "expires_at": NOW + 300,
    }
    values.update(overrides)
    return sign_dialog_state(keys, **values)  # type: ignore[arg-type]


def state_outcome(keys: KeyRing, raw: object, user_id: str = ALICE, channel_id: str = CH1, now: float = NOW) -> str:
    with pytest.raises(ClickRefused) as caught:
        verify_dialog_state(keys, raw, user_id=user_id, channel_id=channel_id, now=now)
    return caught.value.outcome


def test_a_dialog_state_round_trips() -> None:
    keys = ring()
    verified = verify_dialog_state(keys, state(keys, nonce="s1"), user_id=ALICE, channel_id=CH1, now=NOW)
    assert (verified.request_id, verified.action, verified.post_id, verified.user_id) == (R1, "deny", P1, ALICE)
    assert (verified.expires_at, verified.nonce) == (NOW + 300, "s1")


def test_a_dialog_state_is_bound_to_user_channel_and_time() -> None:
    keys = ring()
    assert state_outcome(keys, state(keys), user_id=BOB) == "wrong_user"
    assert state_outcome(keys, state(keys), channel_id=CH2) == "wrong_channel"
    assert state_outcome(keys, state(keys), now=NOW + 300) == "expired"


def test_a_tampered_or_foreign_dialog_state_is_refused() -> None:
    keys = ring()
    tampered = json.dumps({**json.loads(state(keys)), "uid": BOB})
    assert state_outcome(keys, tampered, user_id=BOB) == "forged"
    assert state_outcome(keys, "not json") == "malformed"
    assert state_outcome(keys, "x" * 5000) == "malformed"
    assert state_outcome(keys, None) == "malformed"
    assert state_outcome(keys, json.dumps(context(keys))) == "malformed"  # a context lacks uid
    # a context with a uid added still cannot pass: different purpose tag
    as_state = {**context(keys), "uid": ALICE}
    assert state_outcome(keys, json.dumps(as_state)) == "forged"


# --- single use -----------------------------------------------------------------------------------------


def test_a_nonce_is_used_once_until_it_expires() -> None:
    book = NonceBook()
    assert book.consume("a", NOW + 10, NOW)
    assert not book.consume("a", NOW + 10, NOW + 5)
    assert book.consume("a", NOW + 30, NOW + 10)  # expired, so forgotten
    book.release("a")
    assert book.consume("a", NOW + 30, NOW + 11)


def test_a_full_book_refuses_rather_than_forgets_live_nonces() -> None:
    book = NonceBook(capacity=2)
    assert book.consume("a", NOW + 10, NOW) and book.consume("b", NOW + 10, NOW)
    assert not book.consume("c", NOW + 10, NOW)
    assert book.consume("c", NOW + 20, NOW + 10) and len(book) == 1


def test_ids_are_mattermost_shaped() -> None:
    assert len(mm_id("x")) == 26
