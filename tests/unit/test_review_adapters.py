"""The adapters in-chat review is wired with: MattermostReviewApi over the client's `get_json`/`post_json`
(against the fake Mattermost on loopback), and the `check` permissions reader over GetRole."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import cast

import pytest

from fakes.mattermost.server import FakeMattermost
from sidecar.check.review import TeleportReviewPermissions
from sidecar.domain.errors import NotFound, Rejected
from sidecar.mattermost.client import MattermostClient
from sidecar.review.mattermost_api import MattermostReviewApi
from sidecar.review.trigger import load_signing_key
from sidecar.teleport.client import TeleportClient
from sidecar.teleport.wire import types_pb2


@pytest.fixture
async def fake() -> AsyncIterator[FakeMattermost]:
    async with FakeMattermost() as server:
        yield server


@pytest.fixture
async def api(fake: FakeMattermost) -> AsyncIterator[MattermostReviewApi]:
    async with MattermostClient(fake.url, fake.bot_token, trust_env=False) as client:
        yield MattermostReviewApi(client)


async def test_the_clicker_is_read_as_the_bot_sees_them(fake: FakeMattermost, api: MattermostReviewApi) -> None:
    reviewer = fake.control.user_id("reviewer")
    user = await api.chat_user(reviewer)
    assert (user.id, user.username, user.is_bot, user.deleted) == (reviewer, "reviewer", False, False)
    fake.control.set_active("reviewer", False)
    assert (await api.chat_user(reviewer)).deleted
    assert (await api.chat_user(fake.control.user_id("teleport"))).is_bot
    with pytest.raises(NotFound):
        await api.chat_user("a" * 26)


async def test_the_signing_key_and_dialogs(fake: FakeMattermost, api: MattermostReviewApi) -> None:
    load_signing_key(await api.signing_public_key())  # a usable ECDSA P-256 key
    trigger = fake.control.mint_trigger("reviewer")
    dialog = {"callback_id": "c", "title": "Approve", "elements": [], "state": "s"}
    await api.open_dialog(trigger.trigger_id, "http://127.0.0.1:9/review/v1/dialog", dialog)
    [opened] = fake.control.dialogs("reviewer")
    assert opened.url == "http://127.0.0.1:9/review/v1/dialog"
    with pytest.raises(Rejected):
        await api.open_dialog("not-a-trigger", "http://127.0.0.1:9/review/v1/dialog", dialog)


class _Roles:
    """GetRole answers by name."""

    def __init__(self, roles: dict[str, types_pb2.RoleV6]) -> None:
        self.roles = roles

    async def get_role(self, name: str) -> types_pb2.RoleV6:
        return self.roles[name]


def _role(allow: list[str], deny: tuple[str, ...] = ()) -> types_pb2.RoleV6:
    role = types_pb2.RoleV6(Kind="role", Version="v7")
    role.Spec.Allow.ReviewRequests.SubmitForUsers.extend(allow)
    role.Spec.Deny.ReviewRequests.SubmitForUsers.extend(deny)
    return role


async def test_submit_for_users_is_the_union_of_the_identitys_roles() -> None:
    client = _Roles({"plugin": _role(["*"]), "narrow": _role(["alice", "*"], ("root",)), "none": _role([])})
    permissions = TeleportReviewPermissions(cast(TeleportClient, client), ["plugin", "narrow", "none"])
    grant = await permissions.submit_for_users()
    assert (grant.allow, grant.deny) == (("*", "alice"), ("root",))
