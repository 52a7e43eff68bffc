"""The fake Auth's access monitoring rules against Teleport's contract (access-monitoring-rules.md §9.3, F1-F15).

Through real grpc.aio mTLS stubs on loopback, as callers with the seed's roles: `admin` (every verb), the
documented plugin role `access-plugin`, and the building blocks `access-plugin-base` (no rules, no user read),
`amr-read-only`, `amr-reader` (read, list) and `amr-editor` (Teleport's preset editor verbs).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from google.protobuf import json_format

from fakes.teleport_auth.conditions import condition_error
from fakes.teleport_auth.rbac import Caller
from fakes.teleport_auth.seed import SeedError, default_seed_text, load_seed, parse_seed
from fakes.teleport_auth.server import FakeAuthServer, ServeConfig
from fakes.teleport_auth.state import AuthState
from sidecar.teleport.wire import access_monitoring_rules_pb2 as amr_pb2
from sidecar.teleport.wire import access_monitoring_rules_service_pb2 as amr_service_pb2
from sidecar.teleport.wire import event_pb2, users_service_pb2

from .conftest import Stubs, channel_for
from .test_grpc import expect_code, new_request, next_event, open_watch, watch_request

Connect = Callable[..., Stubs]
Rule = amr_pb2.AccessMonitoringRule
KIND = "access_monitoring_rule"
BOTH_KINDS = ("access_request", KIND)


def rule(
    name: str = "mm-dev",
    *,
    subjects: tuple[str, ...] = ("access_request",),
    condition: str = 'access_request.spec.roles.contains("editor")',
    notification: str | None = "mattermost",
    recipients: tuple[str, ...] = ("team-llama/channel-llama", "reviewer@example.com"),
    review: tuple[str, str] | None = None,
) -> Rule:
    """A valid rule unless the arguments say otherwise."""
    out = Rule(kind=KIND, version="v1")
    out.metadata.name = name
    out.spec.subjects.extend(subjects)
    out.spec.condition = condition
    if notification is not None:
        out.spec.notification.name = notification
        out.spec.notification.recipients.extend(recipients)
    if review is not None:
        out.spec.automatic_review.integration, out.spec.automatic_review.decision = review
    return out


def create(stubs: Stubs, body: Rule) -> Any:
    return stubs.rules.CreateAccessMonitoringRule(amr_service_pb2.CreateAccessMonitoringRuleRequest(rule=body))


def update(stubs: Stubs, body: Rule) -> Any:
    return stubs.rules.UpdateAccessMonitoringRule(amr_service_pb2.UpdateAccessMonitoringRuleRequest(rule=body))


def upsert(stubs: Stubs, body: Rule) -> Any:
    return stubs.rules.UpsertAccessMonitoringRule(amr_service_pb2.UpsertAccessMonitoringRuleRequest(rule=body))


def get(stubs: Stubs, name: str) -> Any:
    return stubs.rules.GetAccessMonitoringRule(amr_service_pb2.GetAccessMonitoringRuleRequest(name=name))


def delete(stubs: Stubs, name: str) -> Any:
    return stubs.rules.DeleteAccessMonitoringRule(amr_service_pb2.DeleteAccessMonitoringRuleRequest(name=name))


def list_filtered(stubs: Stubs, page_size: int = 1000, page_token: str = "", **filters: Any) -> Any:
    request = amr_service_pb2.ListAccessMonitoringRulesWithFilterRequest(
        page_size=page_size, page_token=page_token, **filters
    )
    return stubs.rules.ListAccessMonitoringRulesWithFilter(request)


def list_all(stubs: Stubs, page_size: int = 0, page_token: str = "") -> Any:
    request = amr_service_pb2.ListAccessMonitoringRulesRequest(page_size=page_size, page_token=page_token)
    return stubs.rules.ListAccessMonitoringRules(request)


def names(rules: Any) -> list[str]:
    return [r.metadata.name for r in rules]


async def rule_watch(stubs: Stubs) -> Any:
    """A watch of both kinds as the Go plugin opens it; checks that INIT granted both."""
    call, init = await open_watch(stubs, watch_request(*BOTH_KINDS, partial=True))
    assert [k.Kind for k in init.WatchStatus.Spec.Kinds] == list(BOTH_KINDS)
    return call


# ----------------------------------------------------------------------------------------------- F1-F5


async def test_f1_create_returns_the_stored_rule_and_publishes_it(connect: Connect) -> None:
    admin, plugin = connect("admin"), connect("access-plugin")
    call = await rule_watch(plugin)
    sent = rule()
    created = await create(admin, sent)
    assert created.metadata.revision
    expected = Rule()
    expected.CopyFrom(sent)
    expected.metadata.revision = created.metadata.revision
    assert created == expected  # everything sent, plus the revision; the namespace is not defaulted
    assert await get(plugin, "mm-dev") == created
    event = await next_event(call)
    assert event.Type == event_pb2.PUT and event.WhichOneof("Resource") == "AccessMonitoringRule"
    assert event.AccessMonitoringRule == created
    assert (event.AccessMonitoringRule.kind, event.AccessMonitoringRule.version) == (KIND, "v1")
    call.cancel()


async def test_f2_create_of_an_existing_name_is_already_exists(connect: Connect) -> None:
    admin = connect("admin")
    await create(admin, rule())
    error = await expect_code(grpc.StatusCode.ALREADY_EXISTS, create(admin, rule(recipients=())))
    assert error.details() == 'access_monitoring_rule "mm-dev" already exists'


async def test_f3_update_of_a_missing_name_is_not_found(connect: Connect) -> None:
    admin = connect("admin")
    error = await expect_code(grpc.StatusCode.NOT_FOUND, update(admin, rule("ghost")))
    assert error.details() == 'access_monitoring_rule "ghost" doesn\'t exist'
    await expect_code(grpc.StatusCode.NOT_FOUND, get(admin, "ghost"))


async def test_f4_upsert_creates_then_replaces_with_one_put_each(connect: Connect) -> None:
    admin, plugin = connect("admin"), connect("access-plugin")
    call = await rule_watch(plugin)
    first = await upsert(admin, rule())
    second = await upsert(admin, rule(recipients=("someone@example.com",)))
    assert first.metadata.revision != second.metadata.revision
    events = [await next_event(call), await next_event(call)]
    assert [e.Type for e in events] == [event_pb2.PUT, event_pb2.PUT]
    assert [e.AccessMonitoringRule for e in events] == [first, second]
    # Update is unconditional: a stale revision is not compared.
    stale = rule(recipients=("x@example.com",))
    stale.metadata.revision = first.metadata.revision
    updated = await update(admin, stale)
    assert list(updated.spec.notification.recipients) == ["x@example.com"]
    assert (await next_event(call)).AccessMonitoringRule == updated
    call.cancel()


async def test_f5_delete_then_delete_again_and_one_delete_event(connect: Connect) -> None:
    admin, plugin = connect("admin"), connect("access-plugin")
    await create(admin, rule())
    call = await rule_watch(plugin)
    await delete(admin, "mm-dev")
    error = await expect_code(grpc.StatusCode.NOT_FOUND, delete(admin, "mm-dev"))
    assert error.details() == 'access_monitoring_rule "mm-dev" doesn\'t exist'
    event = await next_event(call)
    assert event.Type == event_pb2.DELETE and event.WhichOneof("Resource") == "ResourceHeader"
    header = event.ResourceHeader
    assert (header.Kind, header.Version, header.Metadata.Name, header.Metadata.Namespace) == (
        KIND,
        "v1",
        "mm-dev",
        "default",
    )
    # The failed second delete published nothing: the next event is the next write.
    await create(admin, rule("after"))
    assert (await next_event(call)).AccessMonitoringRule.metadata.name == "after"
    call.cancel()


# ----------------------------------------------------------------------------------------------- F6, F7: validation


def _without(field: str) -> Callable[[Rule], None]:
    return lambda r: r.ClearField(field)  # type: ignore[arg-type]


def _set(**values: Any) -> Callable[[Rule], None]:
    def change(r: Rule) -> None:
        for key, value in values.items():
            setattr(r, key, value)

    return change


def _spec(**values: Any) -> Callable[[Rule], None]:
    def change(r: Rule) -> None:
        for key, value in values.items():
            if isinstance(value, list):
                del getattr(r.spec, key)[:]
                getattr(r.spec, key).extend(value)
            else:
                setattr(r.spec, key, value)

    return change


def _review(integration: str, decision: str) -> Callable[[Rule], None]:
    def change(r: Rule) -> None:
        r.spec.automatic_review.integration, r.spec.automatic_review.decision = integration, decision

    return change


def _empty_notification(r: Rule) -> None:
    r.spec.notification.name = ""


def _no_notification(r: Rule) -> None:
    r.spec.ClearField("notification")


# Each case fails one check of Teleport's order (§8.2); the rule is otherwise valid.
INVALID = [
    ("kind", _set(kind="role"), 'invalid kind for access monitoring rule: "role"'),
    ("kind-empty", _set(kind=""), 'invalid kind for access monitoring rule: ""'),
    ("metadata", _without("metadata"), "accessMonitoringRule metadata is missing"),
    ("version", _set(version="v2"), 'accessMonitoringRule version "v2" is not supported'),
    ("spec", _without("spec"), "accessMonitoringRule spec is missing"),
    ("subjects", _spec(subjects=[]), "accessMonitoringRule subject is missing"),
    ("condition", _spec(condition=""), "accessMonitoringRule condition is missing"),
    ("notification-name", _empty_notification, "accessMonitoringRule notification plugin name is missing"),
    ("review-integration", _review("", "APPROVED"), "accessMonitoringRule automatic_review integration is missing"),
    ("review-decision", _review("builtin", ""), "accessMonitoringRule automatic_review decision is missing"),
    (
        "review-decision-value",
        _review("builtin", "approved"),
        'accessMonitoringRule automatic_review decision "approved" is not supported',
    ),
    (
        "desired-state",
        _spec(desired_state="approved"),
        'accessMonitoringRule desired_state "approved" is not supported',
    ),
    (
        "neither",
        _no_notification,
        'one of notification or automatic_review must be configured if subjects contain "access_request"',
    ),
]
UNPARSABLE = ["invalid-condition", 'access_request.spec.roles == set("x")', "contains(access_request.spec.roles, "]


@pytest.mark.parametrize(("case", "change", "message"), INVALID, ids=[case for case, _, _ in INVALID])
async def test_f6_each_failed_check_is_invalid_argument_with_teleports_text(
    connect: Connect, case: str, change: Callable[[Rule], None], message: str
) -> None:
    admin, plugin = connect("admin"), connect("access-plugin")
    call = await rule_watch(plugin)
    bad = rule("bad")
    change(bad)
    for write in (create, upsert):
        error = await expect_code(grpc.StatusCode.INVALID_ARGUMENT, write(admin, bad))
        assert error.details() == message
    await create(admin, rule("good"))
    error = await expect_code(grpc.StatusCode.INVALID_ARGUMENT, update(admin, _renamed(bad, "good")))
    assert error.details() == message
    # Nothing was stored or published by the failed writes.
    assert names((await list_filtered(admin)).rules) == ["good"]
    assert (await next_event(call)).AccessMonitoringRule.metadata.name == "good"
    call.cancel()


def _renamed(body: Rule, name: str) -> Rule:
    out = Rule()
    out.CopyFrom(body)
    if out.HasField("metadata"):
        out.metadata.name = name
    return out


@pytest.mark.parametrize("condition", UNPARSABLE)
async def test_f6_an_unparsable_condition_is_invalid_argument(connect: Connect, condition: str) -> None:
    problem = condition_error(condition)
    assert problem is not None, "the condition language should refuse this condition"
    error = await expect_code(grpc.StatusCode.INVALID_ARGUMENT, create(connect("admin"), rule(condition=condition)))
    assert error.details() == f"accessMonitoringRule condition is invalid: {problem}"


async def test_f6_the_checks_run_in_teleports_order(connect: Connect) -> None:
    admin = connect("admin")
    bad = rule(condition="", notification=None)
    bad.kind, bad.version = "role", "v9"
    for expected in (
        'invalid kind for access monitoring rule: "role"',
        'accessMonitoringRule version "v9" is not supported',
        "accessMonitoringRule condition is missing",
        'one of notification or automatic_review must be configured if subjects contain "access_request"',
    ):
        error = await expect_code(grpc.StatusCode.INVALID_ARGUMENT, create(admin, bad))
        assert error.details() == expected
        if bad.kind != KIND:
            bad.kind = KIND
        elif bad.version != "v1":
            bad.version = "v1"
        else:
            bad.spec.condition = "true"
    # A nameless rule: not one of Teleport's checks, refused by the fake (documented deviation).
    error = await expect_code(grpc.StatusCode.INVALID_ARGUMENT, create(admin, rule(name="")))
    assert error.details() == "missing parameter name"


async def test_f7_without_access_request_the_condition_is_not_parsed(connect: Connect) -> None:
    admin = connect("admin")
    other = rule("other", subjects=("someOtherKind",), condition="anything ((", notification=None)
    other.spec.desired_state = "whatever"  # only checked for access_request rules too
    stored = await create(admin, other)
    assert stored.spec.condition == "anything ((" and not stored.spec.HasField("notification")
    # Allowed too: empty recipients, extra subjects, any states.
    relaxed = rule("relaxed", subjects=("access_request", "someOtherKind"), recipients=())
    relaxed.spec.states.extend(["anything"])
    assert (await create(admin, relaxed)).spec.states == ["anything"]
    assert (await create(admin, rule("auto", notification=None, review=("builtin", "DENIED")))).spec.automatic_review


# ----------------------------------------------------------------------------------------------- F8-F11: paging, filter


def _bulk(server: FakeAuthServer, count: int) -> list[str]:
    """Store `count` rules straight into the store (a paging test, not a validation one); their sorted names."""
    made = [f"rule-{i:04d}" for i in range(count)]
    for name in reversed(made):  # insertion order must not matter
        server.state.rules.store.upsert(rule(name))
    return made


async def test_f8_pages_of_1000_with_the_next_name_as_token(server: FakeAuthServer, connect: Connect) -> None:
    made = _bulk(server, 2500)
    plugin = connect("access-plugin")
    filters = {"subjects": ["access_request"], "notification_name": "mattermost"}
    pages, token = [], ""
    while True:
        page = await list_filtered(plugin, 1000, token, **filters)
        pages.append(page)
        token = page.next_page_token
        if not token:
            break
    assert [len(p.rules) for p in pages] == [1000, 1000, 500]
    assert [p.next_page_token for p in pages] == [made[1000], made[2000], ""]
    assert [name for p in pages for name in names(p.rules)] == made
    # The unfiltered List pages the same way.
    page = await list_all(plugin, 1000, made[2000])
    assert (names(page.rules), page.next_page_token) == (made[2000:], "")


@pytest.mark.parametrize("page_size", [0, -5])
async def test_f9_a_page_size_of_zero_or_less_means_1000(
    server: FakeAuthServer, connect: Connect, page_size: int
) -> None:
    made = _bulk(server, 1001)
    plugin = connect("access-plugin")
    for listing in (list_filtered, list_all):
        page = await listing(plugin, page_size)
        assert len(page.rules) == 1000 and page.next_page_token == made[1000]


async def test_f10_the_filter_needs_every_subject_and_the_plugin_name(connect: Connect) -> None:
    admin, plugin = connect("admin"), connect("access-plugin")
    await create(admin, rule("1-mattermost"))
    await create(admin, rule("2-slack", notification="slack"))
    await create(admin, rule("3-other-subject", subjects=("x",)))
    await create(admin, rule("4-superset", subjects=("access_request", "x")))
    await create(admin, rule("5-review-only", notification=None, review=("builtin", "APPROVED")))
    found = await list_filtered(plugin, subjects=["access_request"], notification_name="mattermost")
    assert names(found.rules) == ["1-mattermost", "4-superset"] and found.next_page_token == ""
    everything = await list_filtered(plugin)
    assert len(everything.rules) == 5
    assert names((await list_filtered(plugin, subjects=["access_request", "x"])).rules) == ["4-superset"]
    assert names((await list_filtered(plugin, notification_name="slack")).rules) == ["2-slack"]


async def test_f11_the_automatic_review_filter(connect: Connect) -> None:
    admin, plugin = connect("admin"), connect("access-plugin")
    await create(admin, rule("a-builtin", notification=None, review=("builtin", "APPROVED")))
    await create(admin, rule("b-both", review=("builtin", "DENIED")))
    await create(admin, rule("c-other", notification=None, review=("elsewhere", "APPROVED")))
    await create(admin, rule("d-notify"))
    found = await list_filtered(plugin, automatic_review_name="builtin")
    assert names(found.rules) == ["a-builtin", "b-both"]
    both = await list_filtered(plugin, automatic_review_name="builtin", notification_name="mattermost")
    assert names(both.rules) == ["b-both"]


async def test_a_filtered_page_counts_matches_and_its_token_is_the_next_name_scanned(connect: Connect) -> None:
    admin, plugin = connect("admin"), connect("access-plugin")
    for name, plugin_name in (("a", "mattermost"), ("b", "slack"), ("c", "mattermost"), ("d", "slack")):
        await create(admin, rule(name, notification=plugin_name))
    first = await list_filtered(plugin, 1, notification_name="mattermost")
    assert (names(first.rules), first.next_page_token) == (["a"], "b")
    second = await list_filtered(plugin, 1, first.next_page_token, notification_name="mattermost")
    assert (names(second.rules), second.next_page_token) == (["c"], "d")
    last = await list_filtered(plugin, 1, second.next_page_token, notification_name="mattermost")
    assert (names(last.rules), last.next_page_token) == ([], "")
    # A token that names no rule starts at the next name in order.
    assert names((await list_filtered(plugin, 10, "bb")).rules) == ["c", "d"]


async def test_the_unfiltered_fallback_switch(server: FakeAuthServer, connect: Connect) -> None:
    admin, plugin = connect("admin"), connect("access-plugin")
    await create(admin, rule("a"))
    await create(admin, rule("b", notification="slack"))
    async with aiohttp.ClientSession(f"http://{server.admin_addr}") as http:
        async with http.post("/faults/unfiltered-rules", json={"enabled": True}) as resp:
            assert await resp.json() == {"unfiltered_rules": True}
        assert names((await list_filtered(plugin, notification_name="mattermost")).rules) == ["a", "b"]
        async with http.post("/faults/clear") as resp:
            assert (await resp.json())["unfiltered_rules"] is False
    assert names((await list_filtered(plugin, notification_name="mattermost")).rules) == ["a"]


# ----------------------------------------------------------------------------------------------- F12: RBAC

OK, DENIED = "ok", "denied"
# role -> (ListWithFilter, List, Get, Create, Update, Upsert, Delete), §8.3; plus create-only and update-only roles
# from a custom seed for Upsert's "both verbs" rule.
MATRIX = {
    "access-plugin-base": (DENIED, DENIED, DENIED, DENIED, DENIED, DENIED, DENIED),
    "amr-read-only": (DENIED, DENIED, OK, DENIED, DENIED, DENIED, DENIED),
    "amr-reader": (OK, OK, OK, DENIED, DENIED, DENIED, DENIED),
    "amr-editor": (OK, OK, OK, OK, OK, OK, OK),
    "amr-create-only": (DENIED, DENIED, DENIED, OK, DENIED, DENIED, DENIED),
    "amr-update-only": (DENIED, DENIED, DENIED, DENIED, OK, DENIED, DENIED),
}

RBAC_SEED = """
[roles.amr-create-only]
rules = [{ resources = ["access_monitoring_rule"], verbs = ["create"] }]
[roles.amr-update-only]
rules = [{ resources = ["access_monitoring_rule"], verbs = ["update"] }]
"""


def _with_default_seed(extra: str) -> str:
    return default_seed_text() + extra


@pytest.mark.parametrize("role", list(MATRIX))
async def test_f12_the_rbac_matrix(tmp_path: Path, role: str) -> None:
    seed = parse_seed(_with_default_seed(RBAC_SEED), "rbac seed")
    config = ServeConfig(
        state_dir=tmp_path,
        listen="127.0.0.1:0",
        proxy_listen="127.0.0.1:0",
        admin_listen="127.0.0.1:0",
        seed_obj=seed,
    )
    async with FakeAuthServer(config) as srv:
        srv.state.rules.put(rule("existing"))
        channel = channel_for(srv.auth_addr, srv.ca, "caller", (role,))
        try:
            stubs = Stubs(channel)
            calls: tuple[Callable[[], Any], ...] = (
                lambda: list_filtered(stubs),
                lambda: list_all(stubs),
                lambda: get(stubs, "existing"),
                lambda: create(stubs, rule("created")),
                lambda: update(stubs, rule("existing", recipients=())),
                lambda: upsert(stubs, rule("upserted")),
                lambda: delete(stubs, "existing"),
            )
            outcomes = []
            for call in calls:
                try:
                    await call()
                    outcomes.append(OK)
                except grpc.aio.AioRpcError as exc:
                    assert exc.code() == grpc.StatusCode.PERMISSION_DENIED, exc.details()
                    assert "access_monitoring_rule" in (exc.details() or "")
                    outcomes.append(DENIED)
        finally:
            await channel.close()
    assert tuple(outcomes) == MATRIX[role]


async def test_f12_rbac_is_checked_before_validation(connect: Connect) -> None:
    reader = connect("access-plugin")
    bad = rule(condition="")
    error = await expect_code(grpc.StatusCode.PERMISSION_DENIED, create(reader, bad))
    assert error.details() == 'access denied to perform action "create" on "access_monitoring_rule"'
    error = await expect_code(grpc.StatusCode.PERMISSION_DENIED, list_filtered(connect("x", ("amr-read-only",))))
    assert error.details() == 'access denied to perform action "list" on "access_monitoring_rule"'


# ----------------------------------------------------------------------------------------------- F13, F14: watch


async def test_f13_partial_watch_without_rule_read_gets_requests_only(connect: Connect) -> None:
    admin, requester = connect("admin"), connect("requester@example.com")
    base = connect("access-plugin", ("access-plugin-base",))
    call, init = await open_watch(base, watch_request(*BOTH_KINDS, partial=True))
    assert [k.Kind for k in init.WatchStatus.Spec.Kinds] == ["access_request"]
    await create(admin, rule())
    created = await requester.auth.CreateAccessRequestV2(new_request())
    await delete(admin, "mm-dev")
    event = await next_event(call)
    assert (
        event.WhichOneof("Resource") == "AccessRequest" and event.AccessRequest.Metadata.Name == created.Metadata.Name
    )
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(call.read(), timeout=0.3)
    call.cancel()


async def test_f13_read_alone_is_enough_to_watch_rules(connect: Connect) -> None:
    reader = connect("access-plugin", ("access-plugin-base", "amr-read-only"))
    call, init = await open_watch(reader, watch_request(*BOTH_KINDS, partial=True))
    assert [k.Kind for k in init.WatchStatus.Spec.Kinds] == list(BOTH_KINDS)
    call.cancel()
    # A watch of rules alone, granted, carries no request events.
    admin, requester = connect("admin"), connect("requester@example.com")
    call, init = await open_watch(reader, watch_request(KIND))
    await requester.auth.CreateAccessRequestV2(new_request())
    await create(admin, rule())
    assert (await next_event(call)).WhichOneof("Resource") == "AccessMonitoringRule"
    call.cancel()


async def test_f14_watch_without_partial_success_fails_for_a_refused_kind(connect: Connect) -> None:
    base = connect("access-plugin", ("access-plugin-base",))
    error = await expect_code(
        grpc.StatusCode.PERMISSION_DENIED, base.auth.WatchEvents(watch_request(*BOTH_KINDS)).read()
    )
    assert KIND in (error.details() or "")
    # Nothing at all left to watch, even with partial success.
    await expect_code(
        grpc.StatusCode.PERMISSION_DENIED, base.auth.WatchEvents(watch_request(KIND, partial=True)).read()
    )


async def test_rule_and_request_events_share_one_stream_in_write_order(connect: Connect) -> None:
    admin, plugin, requester = connect("admin"), connect("access-plugin"), connect("requester@example.com")
    call = await rule_watch(plugin)
    await create(admin, rule())  # the rule first, then the request, with no pause (the upstream Mattermost test)
    created = await requester.auth.CreateAccessRequestV2(new_request())
    await delete(admin, "mm-dev")
    kinds = [(await next_event(call)).WhichOneof("Resource") for _ in range(3)]
    assert kinds == ["AccessMonitoringRule", "AccessRequest", "ResourceHeader"]
    assert created.Metadata.Name
    call.cancel()


# ----------------------------------------------------------------------------------------------- F15: GetUser


async def test_f15_get_user_traits_and_rbac(server: FakeAuthServer, connect: Connect) -> None:
    base = connect("access-plugin", ("access-plugin-base",))
    plugin = connect("access-plugin")
    error = await expect_code(
        grpc.StatusCode.PERMISSION_DENIED, base.users.GetUser(users_service_pb2.GetUserRequest(name="myuser"))
    )
    assert error.details() == 'access denied to perform action "read" on "user"'
    user = (await plugin.users.GetUser(users_service_pb2.GetUserRequest(name="myuser"))).user
    assert (user.Kind, user.Version, user.Metadata.Name) == ("user", "v2", "myuser")
    assert {k: list(v.Values) for k, v in user.Spec.Traits.Values.items()} == {"logins": ["myuser"]}
    me = (await base.users.GetUser(users_service_pb2.GetUserRequest(current_user=True))).user
    assert me.Metadata.Name == "access-plugin"
    await expect_code(
        grpc.StatusCode.PERMISSION_DENIED,
        plugin.users.GetUser(users_service_pb2.GetUserRequest(name="myuser", with_secrets=True)),
    )
    await expect_code(grpc.StatusCode.NOT_FOUND, plugin.users.GetUser(users_service_pb2.GetUserRequest(name="ghost")))

    async with aiohttp.ClientSession(f"http://{server.admin_addr}") as http:
        body = {"traits": {"team": ["example", "dev"]}}
        async with http.put("/users/requester@example.com/traits", json=body) as resp:
            assert await resp.json() == {"name": "requester@example.com", "traits": {"team": ["example", "dev"]}}
        async with http.put("/users/ghost/traits", json=body) as resp:
            assert resp.status == 404
        async with http.put("/users/myuser/traits", json={"traits": {"team": "x"}}) as resp:
            assert resp.status == 400
    requester = (await plugin.users.GetUser(users_service_pb2.GetUserRequest(name="requester@example.com"))).user
    assert {k: list(v.Values) for k, v in requester.Spec.Traits.Values.items()} == {"team": ["example", "dev"]}


# ----------------------------------------------------------------------------------------------- seed, admin, TTL

SEED_RULES = """
[access_monitoring_rules.mm-dev]
subjects = ["access_request"]
condition = 'access_request.spec.roles.contains("dev")'
notification = { name = "mattermost", recipients = ["team-llama/channel-llama"] }
labels = { team = "llama" }
description = "dev requests"

[access_monitoring_rules.auto]
subjects = ["access_request"]
condition = "true"
automatic_review = { integration = "builtin", decision = "APPROVED" }
desired_state = "reviewed"
"""


def test_rules_are_seeded_from_the_toml() -> None:
    state = AuthState(parse_seed(_with_default_seed(SEED_RULES), "seed"))
    stored = state.rules.store.all()
    assert names(stored) == ["auto", "mm-dev"] and all(r.metadata.revision for r in stored)
    mm = stored[1]
    assert (mm.kind, mm.version, mm.metadata.description, dict(mm.metadata.labels)) == (
        KIND,
        "v1",
        "dev requests",
        {"team": "llama"},
    )
    assert list(mm.spec.notification.recipients) == ["team-llama/channel-llama"]
    assert not stored[0].spec.HasField("notification") and stored[0].spec.desired_state == "reviewed"


def test_an_invalid_seeded_rule_stops_the_server() -> None:
    bad = '[access_monitoring_rules.bad]\nsubjects = ["access_request"]\ncondition = "invalid-condition"\n'
    with pytest.raises(SeedError, match=r"^\[access_monitoring_rules\.'bad'\]: accessMonitoringRule condition is"):
        AuthState(parse_seed(_with_default_seed(bad + 'notification = { name = "mattermost" }\n'), "seed"))
    nameless = '[access_monitoring_rules.n]\nsubjects = ["x"]\ncondition = "c"\nnotification = { name = "" }\n'
    with pytest.raises(SeedError, match=r"accessMonitoringRule notification plugin name is missing$"):
        AuthState(parse_seed(_with_default_seed(nameless), "seed"))
    with pytest.raises(SeedError, match=r"unknown key\(s\) recipients"):
        parse_seed('[access_monitoring_rules.x]\nrecipients = ["a"]\n', "seed")


async def test_admin_routes_for_rules(server: FakeAuthServer, connect: Connect) -> None:
    plugin = connect("access-plugin")
    call = await rule_watch(plugin)
    doc = {
        "kind": KIND,
        "version": "v1",
        "metadata": {"name": "from-admin"},
        "spec": {"subjects": ["access_request"], "condition": "true", "notification": {"name": "mattermost"}},
    }
    async with aiohttp.ClientSession(f"http://{server.admin_addr}") as http:
        async with http.post("/access-monitoring-rules", json=doc) as resp:
            stored = await resp.json()
            assert resp.status == 200 and stored["metadata"]["revision"]
        put = await next_event(call)
        assert json_format.MessageToDict(put.AccessMonitoringRule, preserving_proto_field_name=True) == stored
        async with http.get("/access-monitoring-rules") as resp:
            assert [r["metadata"]["name"] for r in await resp.json()] == ["from-admin"]
        async with http.get("/access-monitoring-rules/from-admin") as resp:
            assert (await resp.json()) == stored
        async with http.get("/access-monitoring-rules/from-admin/watch-events") as resp:
            assert await resp.json() == {"name": "from-admin", "emitted": 1}
        async with http.post("/access-monitoring-rules", json={**doc, "version": "v2"}) as resp:
            assert (resp.status, await resp.json()) == (
                400,
                {"error": 'accessMonitoringRule version "v2" is not supported'},
            )
        async with http.post("/access-monitoring-rules", json={**doc, "nope": 1}) as resp:
            assert resp.status == 400
        async with http.delete("/access-monitoring-rules/from-admin") as resp:
            assert await resp.json() == {"deleted": "from-admin"}
        assert (await next_event(call)).ResourceHeader.Metadata.Name == "from-admin"
        async with http.delete("/access-monitoring-rules/from-admin") as resp:
            assert resp.status == 404
        async with http.get("/access-monitoring-rules/from-admin") as resp:
            assert resp.status == 404
        async with http.get("/state") as resp:
            assert (await resp.json())["access_monitoring_rules"] == []
    call.cancel()


class _Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_a_rule_with_expires_is_deleted_at_that_time() -> None:
    clock = _Clock()
    state = AuthState(load_seed(), clock=clock)
    watcher = state.fanout.subscribe([], rules=True)
    admin = Caller("admin", ("admin",), "c")
    soon = rule("soon")
    soon.metadata.expires.FromDatetime(clock.now + timedelta(minutes=5))
    state.rules.create(admin, soon)
    rewritten = rule("rewritten")
    rewritten.metadata.expires.FromDatetime(clock.now + timedelta(minutes=1))
    state.rules.create(admin, rewritten)
    state.rules.update(admin, rule("rewritten"))  # the new copy has no TTL: the old expiry no longer applies
    assert state.next_expiry() == clock.now + timedelta(minutes=5)
    clock.now += timedelta(minutes=10)
    assert state.sweep() == []  # the request IDs expired; the rule went too
    assert names(state.rules.store.all()) == ["rewritten"]
    events = []
    while not watcher._queue.empty():
        item = watcher._queue.get_nowait()
        assert item is not None
        events.append(item)
    assert [(e.Type, e.WhichOneof("Resource")) for e in events] == [
        (event_pb2.PUT, "AccessMonitoringRule"),
        (event_pb2.PUT, "AccessMonitoringRule"),
        (event_pb2.PUT, "AccessMonitoringRule"),
        (event_pb2.DELETE, "ResourceHeader"),
    ]
    assert events[-1].ResourceHeader.Metadata.Name == "soon"
    assert state.next_expiry() is None
