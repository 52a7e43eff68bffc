"""The Mattermost ports of review over the client's two JSON calls: paths, bodies and the JSON they read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from sidecar.domain.errors import MalformedResponse, NotFound
from sidecar.review.mattermost_api import MattermostReviewApi, chat_user_from_json, signing_key_from_config
from sidecar.review.ports import ChatUser
from tests.unit.test_review_kit import ALICE


class FakeJson:
    def __init__(self, answers: dict[str, object]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, str, Any, dict[str, str]]] = []

    async def get_json(self, template: str, *, query: Mapping[str, str] | None = None, **path_args: str) -> object:
        self.calls.append(("GET", template, dict(query or {}), path_args))
        if template not in self.answers:
            raise NotFound(f"GET {template}: 404")
        return self.answers[template]

    async def post_json(self, template: str, body: object, **path_args: str) -> object:
        self.calls.append(("POST", template, body, path_args))
        return {}


USER_JSON = {
    "id": ALICE,
    "username": "alice",
    "email": "alice@example.com",
    "email_verified": True,
    "auth_service": "gitlab",
    "is_bot": False,
    "delete_at": 0,
    "roles": "system_user",
}


async def test_the_three_ports_make_the_documented_calls() -> None:
    api = FakeJson({"/api/v4/users/{user_id}": USER_JSON, "/api/v4/config/client": {"AsymmetricSigningPublicKey": "k"}})
    adapter = MattermostReviewApi(api)
    assert await adapter.chat_user(ALICE) == ChatUser(
        ALICE, "alice", "alice@example.com", email_verified=True, auth_service="gitlab"
    )
    assert await adapter.signing_public_key() == "k"
    await adapter.open_dialog("trig", "https://x/review/v1/dialog", {"title": "t"})
    assert api.calls == [
        ("GET", "/api/v4/users/{user_id}", {}, {"user_id": ALICE}),
        ("GET", "/api/v4/config/client", {"format": "old"}, {}),
        ("POST", "/api/v4/actions/dialogs/open",
         {"trigger_id": "trig", "url": "https://x/review/v1/dialog", "dialog": {"title": "t"}}, {}),
    ]


async def test_an_unknown_user_stays_not_found() -> None:
    with pytest.raises(NotFound):
        await MattermostReviewApi(FakeJson({})).chat_user(ALICE)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"delete_at": 1700000000000}, {"deleted": True}),
        ({"delete_at": "0"}, {"deleted": True}),
        ({"delete_at": None}, {"deleted": True}),
        ({"is_bot": True}, {"is_bot": True}),
        ({"is_bot": "true"}, {"is_bot": False}),
        ({"email": None, "email_verified": "yes"}, {"email": "", "email_verified": False}),
    ],
)
def test_user_fields_are_read_strictly(changes: dict[str, object], expected: dict[str, object]) -> None:
    user = chat_user_from_json({**USER_JSON, **changes})
    for key, value in expected.items():
        assert getattr(user, key) == value


def test_a_user_without_delete_at_is_active_and_one_without_id_is_malformed() -> None:
    assert chat_user_from_json({"id": ALICE, "username": "a"}).deleted is False
    bad_users: list[object] = [{"username": "a"}, {"id": "", "username": "a"}, [], {"id": ALICE}]
    for bad in bad_users:
        with pytest.raises(MalformedResponse):
            chat_user_from_json(bad)


def test_the_signing_key_is_read_from_the_client_config() -> None:
    assert signing_key_from_config({"AsymmetricSigningPublicKey": "abc", "Version": "11.6.0"}) == "abc"
    assert signing_key_from_config({"Version": "5.0.0"}) == ""
    with pytest.raises(MalformedResponse):
        signing_key_from_config("nope")
