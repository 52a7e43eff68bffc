"""Reviews submitted by a plugin for people (in-chat-review.md §1.4 and §5.5), ListUsers with the trait filter,
the admin-action MFA switch, the legacy Auth switch and the review audit log.

Over gRPC with the default seed (`access-plugin-with-review` has Teleport's preset grants, `submit_for_users:
["*"]`), and against AuthState with small seeds for the matching rules. Every refusal is checked for Teleport's
status code and exact text, and for leaving no review and no audit entry behind.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import aiohttp
import grpc
import pytest

from fakes.teleport_auth.errors import AccessDenied, BadParameter, Unimplemented
from fakes.teleport_auth.rbac import Caller, caller_from_pem
from fakes.teleport_auth.seed import parse_seed
from fakes.teleport_auth.server import FakeAuthServer
from fakes.teleport_auth.state import AuthState
from sidecar.teleport.wire import authservice_pb2, types_pb2, users_service_pb2

from .conftest import CLUSTER, Stubs
from .test_grpc import expect_code, new_request

Connect = Callable[..., Stubs]
PLUGIN = "access-plugin-with-review"
MFA_TEXT = "admin-level API request requires MFA verification"


def on_behalf(
    request_id: str, author: str, state: Any = types_pb2.APPROVED, reason: str = "", submitted_by: str = ""
) -> types_pb2.AccessReviewSubmission:
    """A plugin's submission for `author` (field 12 set; SubmittedBy only when a test forges it)."""
    sub = types_pb2.AccessReviewSubmission(RequestID=request_id)
    review = sub.Review
    review.Author, review.ProposedState, review.Reason = author, state, reason
    review.submitted_on_behalf_of_author = True
    review.SubmittedBy = submitted_by
    return sub


async def admin_get(server: FakeAuthServer, path: str) -> Any:
    async with aiohttp.ClientSession(f"http://{server.admin_addr}") as http, http.get(path) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def admin_post(server: FakeAuthServer, path: str, body: Any, method: str = "POST") -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession(f"http://{server.admin_addr}") as http,
        http.request(method, path, json=body) as resp,
    ):
        return resp.status, await resp.json()


async def create_editor_request(connect: Connect, roles: tuple[str, ...] = ("editor",)) -> str:
    created = await connect("requester@example.com").auth.CreateAccessRequestV2(new_request(roles))
    return str(created.Metadata.Name)


async def refused(
    server: FakeAuthServer, call: Any, code: grpc.StatusCode, text: str, request_id: str
) -> None:
    """The call fails with exactly this status and text, and the request gained no review or audit entry."""
    error = await expect_code(code, call)
    assert error.details() == text
    assert not server.state.get_request(request_id).Spec.Reviews
    assert await admin_get(server, f"/audit/reviews?request={request_id}") == []


# ----------------------------------------------------------------------------------------------- the happy path


async def test_a_plugin_reviews_for_a_person_and_is_named_as_submitter(
    server: FakeAuthServer, connect: Connect
) -> None:
    rid = await create_editor_request(connect)
    reviewed = await connect(PLUGIN).auth.SubmitAccessReview(on_behalf(rid, "reviewer@example.com", reason="ok"))
    assert reviewed.Spec.State == types_pb2.APPROVED and reviewed.Spec.ResolveReason == "ok"
    [review] = reviewed.Spec.Reviews
    assert (review.Author, review.SubmittedBy, review.submitted_on_behalf_of_author) == (
        "reviewer@example.com", PLUGIN, True,
    )
    assert server.state.get_request(rid).Spec.Reviews[0].SubmittedBy == PLUGIN
    [entry] = await admin_get(server, "/audit/reviews")
    assert entry["time"].endswith("Z")
    del entry["time"]
    assert entry == {
        "event": "access_request.review", "code": "T5002I", "id": rid, "reviewer": "reviewer@example.com",
        "submitted_by": PLUGIN, "proposed_state": "APPROVED", "state": "APPROVED", "reason": "ok",
    }
    assert await admin_get(server, "/audit/reviews?request=other") == []


async def test_one_plugin_identity_meets_a_two_approval_threshold_for_two_people(
    server: FakeAuthServer, connect: Connect
) -> None:
    rid = await create_editor_request(connect, ("dba",))
    plugin = connect(PLUGIN)
    first = await plugin.auth.SubmitAccessReview(on_behalf(rid, "reviewer@example.com", reason="one"))
    assert first.Spec.State == types_pb2.PENDING
    second = await plugin.auth.SubmitAccessReview(on_behalf(rid, "reviewer2@example.com", reason="two"))
    assert second.Spec.State == types_pb2.APPROVED and second.Spec.ResolveReason == "two"
    audit = await admin_get(server, f"/audit/reviews?request={rid}")
    assert [(e["reviewer"], e["submitted_by"], e["state"]) for e in audit] == [
        ("reviewer@example.com", PLUGIN, "PENDING"), ("reviewer2@example.com", PLUGIN, "APPROVED"),
    ]


async def test_one_denial_resolves_a_request_that_needs_two_approvals(connect: Connect) -> None:
    rid = await create_editor_request(connect, ("dba",))
    denied = await connect(PLUGIN).auth.SubmitAccessReview(
        on_behalf(rid, "reviewer@example.com", types_pb2.DENIED, "no")
    )
    assert denied.Spec.State == types_pb2.DENIED and denied.Spec.ResolveReason == "no"


# ----------------------------------------------------------------------------------------------- SubmittedBy


async def test_submitted_by_is_always_the_caller(server: FakeAuthServer, connect: Connect) -> None:
    rid = await create_editor_request(connect)
    plugin = connect(PLUGIN)
    await refused(
        server,
        plugin.auth.SubmitAccessReview(on_behalf(rid, "reviewer@example.com", submitted_by="access-plugin")),
        grpc.StatusCode.PERMISSION_DENIED,
        'user "access-plugin-with-review" cannot submit reviews on behalf of "access-plugin"',
        rid,
    )
    # Naming itself is allowed (the server would have filled in the same name).
    ok = await plugin.auth.SubmitAccessReview(on_behalf(rid, "reviewer@example.com", submitted_by=PLUGIN))
    assert ok.Spec.Reviews[0].SubmittedBy == PLUGIN


async def test_an_ordinary_review_cannot_claim_a_submitter(connect: Connect) -> None:
    rid = await create_editor_request(connect)
    forged = types_pb2.AccessReviewSubmission(RequestID=rid)
    forged.Review.ProposedState, forged.Review.SubmittedBy = types_pb2.APPROVED, PLUGIN
    reviewed = await connect("reviewer@example.com").auth.SubmitAccessReview(forged)
    [review] = reviewed.Spec.Reviews
    assert (review.Author, review.SubmittedBy) == ("reviewer@example.com", "")


# ----------------------------------------------------------------------------------------------- refusals


async def test_the_plugin_needs_submit_for_users_and_a_known_reviewer(
    server: FakeAuthServer, connect: Connect
) -> None:
    rid = await create_editor_request(connect)
    plugin = connect(PLUGIN)
    cases = [
        (connect("access-plugin"), "reviewer@example.com", grpc.StatusCode.PERMISSION_DENIED,
         'user "access-plugin" cannot submit reviews for "reviewer@example.com"'),
        (connect("access-plugin", ("access-plugin-base",)), "reviewer@example.com", grpc.StatusCode.PERMISSION_DENIED,
         'access denied to perform action "read" on "user"'),
        (plugin, "ghost", grpc.StatusCode.PERMISSION_DENIED,
         'user "access-plugin-with-review" cannot submit reviews for "ghost", user could not be fetched from local '
         "store"),
        (plugin, "myuser", grpc.StatusCode.PERMISSION_DENIED, 'user "myuser" cannot submit reviews'),
        (plugin, "bot-mattermost", grpc.StatusCode.PERMISSION_DENIED, 'user "bot-mattermost" cannot submit reviews'),
        (plugin, "requester@example.com", grpc.StatusCode.PERMISSION_DENIED,
         'user "requester@example.com" cannot submit reviews'),
    ]
    for caller, author, code, text in cases:
        await refused(server, caller.auth.SubmitAccessReview(on_behalf(rid, author)), code, text, rid)
    await refused(
        server,
        plugin.auth.SubmitAccessReview(on_behalf("missing", "reviewer@example.com")),
        grpc.StatusCode.NOT_FOUND,
        'cannot apply review to access request "missing" (not found)',
        rid,
    )


async def test_duplicates_resolved_requests_and_promotions_are_refused(
    server: FakeAuthServer, connect: Connect
) -> None:
    rid = await create_editor_request(connect, ("dba",))
    plugin = connect(PLUGIN)
    await plugin.auth.SubmitAccessReview(on_behalf(rid, "reviewer@example.com"))
    duplicate = await expect_code(
        grpc.StatusCode.ALREADY_EXISTS, plugin.auth.SubmitAccessReview(on_behalf(rid, "reviewer@example.com"))
    )
    assert duplicate.details() == 'user "reviewer@example.com" has already reviewed this request'
    promoted = await expect_code(
        grpc.StatusCode.INVALID_ARGUMENT,
        plugin.auth.SubmitAccessReview(on_behalf(rid, "reviewer2@example.com", types_pb2.PROMOTED)),
    )
    assert promoted.details() == "state promoted can be only set when promoting to access list"
    await plugin.auth.SubmitAccessReview(on_behalf(rid, "reviewer2@example.com", types_pb2.DENIED))
    late = await expect_code(
        grpc.StatusCode.PERMISSION_DENIED, plugin.auth.SubmitAccessReview(on_behalf(rid, "admin"))
    )
    assert late.details() == "the access request has been already denied"
    # A duplicate is reported before the resolution, as Teleport checks them.
    again = await expect_code(
        grpc.StatusCode.ALREADY_EXISTS, plugin.auth.SubmitAccessReview(on_behalf(rid, "reviewer@example.com"))
    )
    assert "already reviewed" in again.details()
    assert len(await admin_get(server, f"/audit/reviews?request={rid}")) == 2


async def test_promoted_requests_take_no_more_reviews(server: FakeAuthServer, connect: Connect) -> None:
    rid = await create_editor_request(connect)
    server.state._lookup(rid).Spec.State = types_pb2.PROMOTED  # only Enterprise access lists can promote
    await refused(
        server,
        connect(PLUGIN).auth.SubmitAccessReview(on_behalf(rid, "reviewer@example.com")),
        grpc.StatusCode.PERMISSION_DENIED,
        "the access request has been already promoted",
        rid,
    )


# ----------------------------------------------------------------------------------------------- MFA switch


async def test_admin_action_mfa_lets_only_bots_through(server: FakeAuthServer, connect: Connect) -> None:
    status, settings = await admin_post(server, "/settings/admin-action-mfa", {"enabled": True})
    assert status == 200 and settings == {"admin_action_mfa": True, "legacy_review_api": False}
    assert await admin_get(server, "/settings") == settings
    rid = await create_editor_request(connect, ("dba",))
    plugin, admin = connect(PLUGIN), connect("admin")
    for call in (
        plugin.auth.SubmitAccessReview(on_behalf(rid, "reviewer@example.com")),
        connect("reviewer@example.com").auth.SubmitAccessReview(
            types_pb2.AccessReviewSubmission(
                RequestID=rid, Review=types_pb2.AccessReview(ProposedState=types_pb2.APPROVED)
            )
        ),
        admin.auth.SetAccessRequestState(authservice_pb2.RequestStateSetter(ID=rid, State=types_pb2.APPROVED)),
        admin.auth.DeleteAccessRequest(authservice_pb2.RequestID(ID=rid)),
    ):
        error = await expect_code(grpc.StatusCode.PERMISSION_DENIED, call)
        assert error.details() == MFA_TEXT
    bot = connect("bot-mattermost", bot="mattermost")
    assert (await bot.auth.SubmitAccessReview(on_behalf(rid, "reviewer@example.com"))).Spec.Reviews[0].SubmittedBy == (
        "bot-mattermost"
    )
    # A tbot identity of the plugin's user (impersonated by a bot) is a bot identity too.
    impersonated = connect(PLUGIN, bot="mattermost")
    await impersonated.auth.SubmitAccessReview(on_behalf(rid, "reviewer2@example.com"))
    await admin_post(server, "/settings/admin-action-mfa", {"enabled": False})
    await admin.auth.DeleteAccessRequest(authservice_pb2.RequestID(ID=rid))


def test_admin_action_mfa_from_the_seed() -> None:
    seed = parse_seed(DEFAULT_LIKE + "[settings]\nadmin_action_mfa = true\n", "mfa.toml")
    state = AuthState(seed)
    rid = state.create_request(Caller("r", ("req",), CLUSTER), new_request()).Metadata.Name
    with pytest.raises(AccessDenied, match=re.escape(MFA_TEXT)):
        state.submit_review(Caller("p", ("plugin",), CLUSTER), on_behalf(rid, "a"))
    out = state.submit_review(Caller("p", ("plugin",), CLUSTER, bot="p"), on_behalf(rid, "a"))
    assert out.Spec.Reviews[0].SubmittedBy == "p"


# ----------------------------------------------------------------------------------------------- legacy Auth


async def test_a_legacy_auth_ignores_fields_11_12_and_the_trait_filter(
    server: FakeAuthServer, connect: Connect
) -> None:
    status, settings = await admin_post(server, "/settings/legacy-review-api", {"enabled": True})
    assert status == 200 and settings == {"admin_action_mfa": False, "legacy_review_api": True}
    rid = await create_editor_request(connect, ("dba",))
    plugin = connect(PLUGIN)
    await refused(
        server,
        plugin.auth.SubmitAccessReview(on_behalf(rid, "reviewer@example.com")),
        grpc.StatusCode.PERMISSION_DENIED,
        'user "access-plugin-with-review" cannot submit reviews on behalf of "reviewer@example.com"',
        rid,
    )
    # Its builtin Admin may still review in another's name, and the review keeps no submitter.
    reviewed = await connect("admin").auth.SubmitAccessReview(on_behalf(rid, "reviewer@example.com"))
    assert reviewed.Spec.Reviews[0].SubmittedBy == "" and not reviewed.Spec.Reviews[0].submitted_on_behalf_of_author
    [entry] = await admin_get(server, "/audit/reviews")
    assert (entry["reviewer"], entry["submitted_by"]) == ("reviewer@example.com", "")

    await admin_post(server, "/users/reviewer@example.com/traits", {"traits": {"mm": ["x"]}}, method="PUT")
    every = await plugin.users.ListUsers(users_service_pb2.ListUsersRequest(filter=trait_filter("mm", "x")))
    assert len(every.users) == len(server.seed.users)  # the filter is ignored: every user comes back
    role = await plugin.auth.GetRole(authservice_pb2.GetRoleRequest(Name=PLUGIN))
    assert list(role.Spec.Allow.ReviewRequests.SubmitForUsers) == []

    await admin_post(server, "/settings/legacy-review-api", {"enabled": False})
    filtered = await plugin.users.ListUsers(users_service_pb2.ListUsersRequest(filter=trait_filter("mm", "x")))
    assert [u.Metadata.Name for u in filtered.users] == ["reviewer@example.com"]
    ok = await plugin.auth.SubmitAccessReview(on_behalf(rid, "reviewer2@example.com"))
    assert ok.Spec.State == types_pb2.APPROVED and ok.Spec.Reviews[1].SubmittedBy == PLUGIN


# ----------------------------------------------------------------------------------------------- ListUsers, users


def trait_filter(key: str, *values: str) -> types_pb2.UserFilter:
    flt = types_pb2.UserFilter()
    flt.Traits.Values[key].Values.extend(values)
    return flt


async def test_list_users_filters_by_trait_and_pages(server: FakeAuthServer, connect: Connect) -> None:
    for name, value in (("reviewer@example.com", "u1"), ("reviewer2@example.com", "u2"), ("myuser", "u1")):
        await admin_post(server, f"/users/{name}/traits", {"traits": {"mattermost_user_id": [value]}}, "PUT")
    plugin = connect(PLUGIN)
    one = await plugin.users.ListUsers(
        users_service_pb2.ListUsersRequest(filter=trait_filter("mattermost_user_id", "u2"))
    )
    assert [u.Metadata.Name for u in one.users] == ["reviewer2@example.com"] and one.next_page_token == ""
    two = await plugin.users.ListUsers(
        users_service_pb2.ListUsersRequest(filter=trait_filter("mattermost_user_id", "u1", "zzz"))
    )
    assert [u.Metadata.Name for u in two.users] == ["myuser", "reviewer@example.com"]
    none = await plugin.users.ListUsers(users_service_pb2.ListUsersRequest(filter=trait_filter("other", "u1")))
    assert list(none.users) == []

    seen, token = [], ""
    while True:
        page = await plugin.users.ListUsers(users_service_pb2.ListUsersRequest(page_size=3, page_token=token))
        assert len(page.users) <= 3
        seen += [u.Metadata.Name for u in page.users]
        token = page.next_page_token
        if not token:
            break
    assert seen == sorted(server.seed.users)
    bots = [u for u in (await plugin.users.ListUsers(users_service_pb2.ListUsersRequest())).users if u.Metadata.Labels]
    assert [(u.Metadata.Name, dict(u.Metadata.Labels)) for u in bots] == [
        ("bot-mattermost", {"teleport.internal/bot": "mattermost"})
    ]
    keyword = await plugin.users.ListUsers(
        users_service_pb2.ListUsersRequest(filter=types_pb2.UserFilter(SearchKeywords=["REVIEWER2"]))
    )
    assert [u.Metadata.Name for u in keyword.users] == ["reviewer2@example.com"]


async def test_list_users_needs_list_and_read(connect: Connect) -> None:
    plain = connect("access-plugin")
    denied = await expect_code(
        grpc.StatusCode.PERMISSION_DENIED, plain.users.ListUsers(users_service_pb2.ListUsersRequest())
    )
    assert denied.details() == 'access denied to perform action "list" on "user"'
    await expect_code(
        grpc.StatusCode.PERMISSION_DENIED,
        connect(PLUGIN).users.ListUsers(users_service_pb2.ListUsersRequest(with_secrets=True)),
    )
    assert (await connect("admin").users.ListUsers(users_service_pb2.ListUsersRequest(with_secrets=True))).users


async def test_users_added_and_deleted_through_the_admin_api(server: FakeAuthServer, connect: Connect) -> None:
    body = {"roles": ["editor-reviewer"], "traits": {"mattermost_user_id": ["c1"]}}
    status, carol = await admin_post(server, "/users/carol", body, "PUT")
    assert status == 200 and carol == {"name": "carol", **body, "bot": False}
    assert (await admin_get(server, "/users/carol")) == carol
    assert "carol" in [u["name"] for u in await admin_get(server, "/users")]
    rid = await create_editor_request(connect, ("dba",))
    plugin = connect(PLUGIN)
    await plugin.auth.SubmitAccessReview(on_behalf(rid, "carol"))
    status, _ = await admin_post(server, "/users/carol", None, "DELETE")
    assert status == 200
    error = await expect_code(
        grpc.StatusCode.PERMISSION_DENIED, plugin.auth.SubmitAccessReview(on_behalf(rid, "carol"))
    )
    assert error.details().endswith("user could not be fetched from local store")
    assert (await admin_post(server, "/users/dave", {"roles": ["ghost-role"]}, "PUT"))[0] == 404
    assert (await admin_post(server, "/users/dave", {"roles": []}, "PUT"))[0] == 400
    assert (await admin_post(server, "/users/ghost", None, "DELETE"))[0] == 404


async def test_get_role_shows_the_review_conditions(connect: Connect) -> None:
    plugin = connect(PLUGIN)
    role = await plugin.auth.GetRole(authservice_pb2.GetRoleRequest(Name=PLUGIN))
    conditions = role.Spec.Allow.ReviewRequests
    assert (list(conditions.SubmitForUsers), list(conditions.PreviewAsRoles)) == (
        ["*"], ["list-access-request-resources"],
    )
    reviewer = await plugin.auth.GetRole(authservice_pb2.GetRoleRequest(Name="editor-reviewer"))
    assert list(reviewer.Spec.Allow.ReviewRequests.Roles) == ["editor", "dba", "resource-access"]


# ----------------------------------------------------------------------------------------------- matching rules

DEFAULT_LIKE = """
[roles.editor]
[roles.other]
[roles.req]
request = ["editor"]
[roles.rev]
review = ["editor"]
[roles.rev-other]
review = ["other"]
[roles.plugin]
rules = [{ resources = ["user"], verbs = ["read"] }]
submit_for_users = ["*"]
[roles.plugin-dev]
rules = [{ resources = ["user"], verbs = ["read"] }]
submit_for_users = ["*@dev.example.com", "^ops-[0-9]+$"]
deny_submit_for_users = ["boss@dev.example.com"]
[roles.plugin-blind]
submit_for_users = ["*"]
[users.r]
roles = ["req"]
[users.a]
roles = ["rev"]
[users.alice]
roles = ["req", "rev"]
[users.o]
roles = ["rev-other"]
[users."x@dev.example.com"]
roles = ["rev"]
[users."boss@dev.example.com"]
roles = ["rev"]
[users."y@prod.example.com"]
roles = ["rev"]
[users.ops-7]
roles = ["rev"]
[users.ops-x]
roles = ["rev"]
"""


def test_submit_for_users_matching_and_the_authors_own_rights() -> None:
    state = AuthState(parse_seed(DEFAULT_LIKE, "matching.toml"))
    requester, alice = Caller("r", ("req",), CLUSTER), Caller("alice", ("req", "rev"), CLUSTER)
    dev = Caller("p", ("plugin-dev",), CLUSTER)
    for author, allowed in (("x@dev.example.com", True), ("boss@dev.example.com", False),
                            ("y@prod.example.com", False), ("ops-7", True), ("ops-x", False)):
        rid = state.create_request(requester, new_request()).Metadata.Name
        if allowed:
            assert state.submit_review(dev, on_behalf(rid, author)).Spec.Reviews[0].SubmittedBy == "p"
        else:
            with pytest.raises(AccessDenied, match=re.escape(f'user "p" cannot submit reviews for "{author}"')):
                state.submit_review(dev, on_behalf(rid, author))

    rid = state.create_request(alice, new_request()).Metadata.Name
    plugin = Caller("p", ("plugin",), CLUSTER)
    with pytest.raises(AccessDenied, match=re.escape(f'user "alice" cannot review request "{rid}"')):
        state.submit_review(plugin, on_behalf(rid, "alice"))  # never one's own request
    with pytest.raises(AccessDenied, match=re.escape(f'user "o" cannot review request "{rid}"')):
        state.submit_review(plugin, on_behalf(rid, "o"))  # reviews other roles only
    with pytest.raises(AccessDenied, match=re.escape('access denied to perform action "read" on "user"')):
        state.submit_review(Caller("p", ("plugin-blind",), CLUSTER), on_behalf(rid, "a"))
    assert [e.reviewer for e in state.reviews.audit] == ["x@dev.example.com", "ops-7"]


def test_review_contents_teleport_does_not_support() -> None:
    state = AuthState(parse_seed(DEFAULT_LIKE, "contents.toml"))
    rid = state.create_request(Caller("r", ("req",), CLUSTER), new_request()).Metadata.Name
    plugin = Caller("p", ("plugin",), CLUSTER)
    annotated = on_behalf(rid, "a")
    annotated.Review.Annotations.Values["k"].Values.append("v")
    with pytest.raises(Unimplemented, match="annotations are not yet supported in reviews"):
        state.submit_review(plugin, annotated)
    subselected = on_behalf(rid, "a")
    subselected.Review.Roles.extend(["editor", "other"])
    with pytest.raises(Unimplemented, match="role subselection is not yet supported"):
        state.submit_review(plugin, subselected)
    stranger = on_behalf(rid, "a")
    stranger.Review.Roles.append("other")
    with pytest.raises(BadParameter, match=re.escape('role "other" is not a member of this request')):
        state.submit_review(plugin, stranger)
    named = on_behalf(rid, "a")
    named.Review.Roles.append("editor")
    assert state.submit_review(plugin, named).Spec.State == types_pb2.APPROVED


def test_bot_identities_are_read_from_the_certificate(server: FakeAuthServer) -> None:
    bot = server.ca.issue_user("bot-mattermost", (PLUGIN,), timedelta(minutes=5), bot_name="mattermost")
    person = server.ca.issue_user("alice", ("rev",), timedelta(minutes=5))
    assert caller_from_pem(bot.tls_cert_pem) == Caller("bot-mattermost", (PLUGIN,), server.cluster_name, "mattermost")
    assert caller_from_pem(person.tls_cert_pem).bot == ""
