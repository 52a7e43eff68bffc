"""Reviews submitted for people and the trait lookup (sidecar/teleport/reviews.py) against the fake Auth: success,
every refusal sorted for the clicker, the MFA switch, and a legacy Auth failing closed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from fakes.teleport_auth.server import FakeAuthServer, ServeConfig
from fakes.teleport_harness import HarnessClient
from sidecar.domain.errors import (
    AccessDenied,
    AlreadyExists,
    NotFound,
    PermanentError,
    Rejected,
    SidecarError,
    TransientError,
    Unimplemented,
)
from sidecar.domain.model import RequestState
from sidecar.teleport import reviews as reviews_module
from sidecar.teleport.client import TeleportClient
from sidecar.teleport.reviews import ReviewRefusal, TeleportReviews, refusal_of

CLUSTER = "fake.example.com"
PLUGIN = "access-plugin-with-review"
WHEN = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


@pytest.fixture
async def fake(tmp_path: Path) -> AsyncIterator[FakeAuthServer]:
    config = ServeConfig(
        state_dir=tmp_path / "state", listen="127.0.0.1:0", proxy_listen="127.0.0.1:0", admin_listen="127.0.0.1:0",
        cluster_name=CLUSTER,
    )
    async with FakeAuthServer(config) as running:
        yield running


async def connect(fake: FakeAuthServer, tmp_path: Path, user: str, roles: list[str], bot: str = "") -> TeleportClient:
    path = tmp_path / f"{user}-{'-'.join(roles)}-{bot}.identity"
    fake.ca.issue_user(user, roles, timedelta(hours=1), bot_name=bot).write_identity_file(path)
    return await TeleportClient.connect(fake.auth_addr, identity_file=path, timeout=5)


async def new_request(fake: FakeAuthServer, tmp_path: Path, roles: tuple[str, ...] = ("editor",)) -> str:
    async with await connect(fake, tmp_path, "requester@example.com", ["editor-requester", "dba-requester"]) as c:
        return str((await HarnessClient(c).create(list(roles))).Metadata.Name)


async def test_a_review_for_a_person_is_recorded_with_the_plugin_as_submitter(
    fake: FakeAuthServer, tmp_path: Path
) -> None:
    rid = await new_request(fake, tmp_path, ("dba",))
    async with await connect(fake, tmp_path, PLUGIN, [PLUGIN]) as client:
        reviews = TeleportReviews(client, clock=lambda: WHEN)
        first = await reviews.submit_review_on_behalf(rid, "reviewer@example.com", RequestState.APPROVED, "fine")
        assert first.state is RequestState.PENDING and first.approvals_required == 2
        assert [(r.author, r.proposed_state, r.reason, r.created) for r in first.reviews] == [
            ("reviewer@example.com", RequestState.APPROVED, "fine", WHEN)
        ]
        second = await reviews.submit_review_on_behalf(rid, "reviewer2@example.com", RequestState.APPROVED)
        assert second.state is RequestState.APPROVED
    stored = fake.state.get_request(rid).Spec.Reviews
    assert [(r.Author, r.SubmittedBy) for r in stored] == [
        ("reviewer@example.com", PLUGIN), ("reviewer2@example.com", PLUGIN),
    ]
    assert [(e.reviewer, e.submitted_by) for e in fake.state.reviews.audit] == [
        ("reviewer@example.com", PLUGIN), ("reviewer2@example.com", PLUGIN),
    ]


async def test_refusals_are_sorted_for_the_clicker(fake: FakeAuthServer, tmp_path: Path) -> None:
    rid = await new_request(fake, tmp_path)
    async with (
        await connect(fake, tmp_path, PLUGIN, [PLUGIN]) as client,
        await connect(fake, tmp_path, "access-plugin", ["access-plugin"]) as plain,
    ):
        reviews = TeleportReviews(client)

        async def refusal(author: str, request_id: str = rid, via: TeleportReviews = reviews) -> SidecarError:
            with pytest.raises(SidecarError) as info:
                await via.submit_review_on_behalf(request_id, author, RequestState.DENIED)
            return info.value

        not_allowed = await refusal("myuser")
        assert isinstance(not_allowed, AccessDenied) and refusal_of(not_allowed) is ReviewRefusal.NOT_ALLOWED
        assert str(not_allowed) == 'SubmitAccessReview: PERMISSION_DENIED: user "myuser" cannot submit reviews'
        assert refusal_of(await refusal("reviewer@example.com", via=TeleportReviews(plain))) is (
            ReviewRefusal.NOT_ALLOWED
        )
        self_review = await refusal("requester@example.com")
        assert refusal_of(self_review) is ReviewRefusal.NOT_ALLOWED
        unknown = await refusal("ghost")
        assert refusal_of(unknown) is ReviewRefusal.UNKNOWN_USER
        gone = await refusal("reviewer@example.com", "no-such-request")
        assert isinstance(gone, NotFound) and refusal_of(gone) is ReviewRefusal.NOT_FOUND

        await reviews.submit_review_on_behalf(rid, "reviewer@example.com", RequestState.DENIED)
        again = await refusal("reviewer@example.com")
        assert isinstance(again, AlreadyExists) and refusal_of(again) is ReviewRefusal.ALREADY_REVIEWED
        resolved = await refusal("reviewer2@example.com")
        assert refusal_of(resolved) is ReviewRefusal.ALREADY_RESOLVED
        assert str(resolved).endswith("the access request has been already denied")


async def test_admin_action_mfa_refuses_plain_identities_but_not_bots(fake: FakeAuthServer, tmp_path: Path) -> None:
    rid = await new_request(fake, tmp_path, ("dba",))
    fake.state.reviews.admin_action_mfa = True
    async with (
        await connect(fake, tmp_path, PLUGIN, [PLUGIN]) as plain,
        await connect(fake, tmp_path, "bot-mattermost", [PLUGIN], bot="mattermost") as bot,
    ):
        with pytest.raises(AccessDenied) as info:
            await TeleportReviews(plain).submit_review_on_behalf(rid, "reviewer@example.com", RequestState.APPROVED)
        assert refusal_of(info.value) is ReviewRefusal.MFA_REQUIRED
        done = await TeleportReviews(bot).submit_review_on_behalf(rid, "reviewer@example.com", RequestState.APPROVED)
        assert [r.author for r in done.reviews] == ["reviewer@example.com"]
    assert fake.state.get_request(rid).Spec.Reviews[0].SubmittedBy == "bot-mattermost"


async def test_a_legacy_auth_fails_closed(fake: FakeAuthServer, tmp_path: Path) -> None:
    rid = await new_request(fake, tmp_path, ("dba",))
    fake.state.reviews.legacy = True
    async with await connect(fake, tmp_path, PLUGIN, [PLUGIN]) as client:
        with pytest.raises(Unimplemented, match="does not accept reviews submitted for others") as info:
            await TeleportReviews(client).submit_review_on_behalf(rid, "reviewer@example.com", RequestState.APPROVED)
        assert refusal_of(info.value) is ReviewRefusal.SERVER_TOO_OLD
    assert not fake.state.get_request(rid).Spec.Reviews
    # An old Auth's builtin Admin may review in another's name; the review comes back without a submitter.
    async with await connect(fake, tmp_path, "admin", ["admin"]) as admin:
        with pytest.raises(Unimplemented, match="without who submitted it") as info:
            await TeleportReviews(admin).submit_review_on_behalf(rid, "reviewer@example.com", RequestState.APPROVED)
        assert refusal_of(info.value) is ReviewRefusal.SERVER_TOO_OLD


async def test_transient_failures_and_bad_arguments(fake: FakeAuthServer, tmp_path: Path) -> None:
    rid = await new_request(fake, tmp_path)
    async with await connect(fake, tmp_path, PLUGIN, [PLUGIN]) as client:
        reviews = TeleportReviews(client)
        fake.faults.fail_next("SubmitAccessReview", 1, grpc.StatusCode.UNAVAILABLE, "restarting")
        with pytest.raises(TransientError) as info:
            await reviews.submit_review_on_behalf(rid, "reviewer@example.com", RequestState.APPROVED)
        assert refusal_of(info.value) is ReviewRefusal.UNAVAILABLE
        with pytest.raises(ValueError, match="APPROVED or DENIED"):
            await reviews.submit_review_on_behalf(rid, "reviewer@example.com", RequestState.PROMOTED)
        with pytest.raises(ValueError, match="author"):
            await reviews.submit_review_on_behalf(rid, "", RequestState.APPROVED)


def test_refusal_of_reads_older_servers_texts_too() -> None:
    assert refusal_of(AccessDenied('x: user "a" has already reviewed this request')) is ReviewRefusal.ALREADY_REVIEWED
    assert refusal_of(Rejected("x: INVALID_ARGUMENT: bad")) is ReviewRefusal.OTHER
    assert refusal_of(PermanentError("x: UNKNOWN")) is ReviewRefusal.OTHER


# ----------------------------------------------------------------------------------------------- users by trait


async def test_users_are_found_by_trait_and_checked_again(fake: FakeAuthServer, tmp_path: Path) -> None:
    users = fake.state.users
    users.set_traits("reviewer@example.com", {"mattermost_user_id": ["u1"]})
    users.set_traits("reviewer2@example.com", {"mattermost_user_id": ["u2", "u3"]})
    users.set_traits("myuser", {"mattermost_user_id": ["u3"], "logins": ["myuser"]})
    async with await connect(fake, tmp_path, PLUGIN, [PLUGIN]) as client:
        reviews = TeleportReviews(client)
        assert await reviews.find_users_by_trait("mattermost_user_id", "u1") == ["reviewer@example.com"]
        assert await reviews.find_users_by_trait("mattermost_user_id", "u3") == ["myuser", "reviewer2@example.com"]
        assert await reviews.find_users_by_trait("mattermost_user_id", "nobody") == []
        # An Auth that ignores the filter returns every user: none of them binds unless the trait really matches.
        fake.state.reviews.legacy = True
        assert await reviews.find_users_by_trait("mattermost_user_id", "u1") == ["reviewer@example.com"]
        assert await reviews.find_users_by_trait("mattermost_user_id", "nobody") == []
        with pytest.raises(ValueError, match="trait"):
            await reviews.find_users_by_trait("", "u1")


async def test_every_page_of_users_is_read(
    fake: FakeAuthServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reviews_module, "USERS_PAGE_SIZE", 2)
    for name in fake.seed.users:
        fake.state.users.set_traits(name, {"team": ["all"]})
    async with await connect(fake, tmp_path, PLUGIN, [PLUGIN]) as client:
        assert await TeleportReviews(client).find_users_by_trait("team", "all") == sorted(fake.seed.users)


async def test_the_trait_lookup_needs_user_list(fake: FakeAuthServer, tmp_path: Path) -> None:
    async with await connect(fake, tmp_path, "access-plugin", ["access-plugin"]) as client:
        with pytest.raises(AccessDenied, match='action "list" on "user"'):
            await TeleportReviews(client).find_users_by_trait("mattermost_user_id", "u1")


async def test_one_request_is_read_by_id(fake: FakeAuthServer, tmp_path: Path) -> None:
    rid = await new_request(fake, tmp_path, ("dba",))
    async with await connect(fake, tmp_path, PLUGIN, [PLUGIN]) as client:
        reviews = TeleportReviews(client)
        found = await reviews.access_request(rid)
        assert found is not None and found.id == rid and found.state is RequestState.PENDING
        assert found.approvals_required == 2 and not found.long_term
        assert await reviews.access_request("no-such-request") is None
        assert await reviews.access_request("") is None
