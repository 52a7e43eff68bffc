"""Unit tests of the fake Auth's workflow, RBAC, plugin data and expiry (no network)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from fakes.teleport_auth.errors import (
    AccessDenied,
    AlreadyExists,
    BadParameter,
    CompareFailed,
    ConnectionProblem,
    NotFound,
)
from fakes.teleport_auth.rbac import Caller
from fakes.teleport_auth.seed import SeedError, load_seed, parse_seed
from fakes.teleport_auth.state import AuthState
from fakes.teleport_auth.watch import Fanout, RequestFilter, Watcher
from sidecar.teleport.wire import authservice_pb2, event_pb2, types_pb2

CLUSTER = "test.example.com"
REQUESTER = Caller("requester@example.com", ("editor-requester",), CLUSTER)
MYUSER = Caller("myuser", ("editor-requester",), CLUSTER)
REVIEWER = Caller("reviewer@example.com", ("editor-reviewer",), CLUSTER)
REVIEWER2 = Caller("reviewer2@example.com", ("editor-reviewer",), CLUSTER)
ADMIN = Caller("admin", ("admin",), CLUSTER)
PLUGIN = Caller("access-plugin", ("access-plugin",), CLUSTER)


def exactly(message: str) -> str:
    """A `match=` pattern for exactly this message."""
    return f"^{re.escape(message)}$"


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state(clock: FakeClock) -> AuthState:
    return AuthState(load_seed(), clock=clock)


def new_request(roles: tuple[str, ...] = ("editor",), reason: str = "because") -> types_pb2.AccessRequestV3:
    req = types_pb2.AccessRequestV3()
    req.Spec.Roles.extend(roles)
    req.Spec.RequestReason = reason
    return req


def review(
    request_id: str, state: types_pb2.RequestState.ValueType, reason: str = "", author: str = ""
) -> types_pb2.AccessReviewSubmission:
    sub = types_pb2.AccessReviewSubmission(RequestID=request_id)
    sub.Review.ProposedState = state
    sub.Review.Reason = reason
    sub.Review.Author = author
    return sub


def drain(watcher: Watcher) -> list[event_pb2.Event]:
    events = []
    while not watcher._queue.empty():
        item = watcher._queue.get_nowait()
        assert item is not None
        events.append(item)
    return events


def test_create_stamps_wire_fields(state: AuthState, clock: FakeClock) -> None:
    req = new_request()
    req.Spec.SuggestedReviewers.append("reviewer@example.com")
    out = state.create_request(REQUESTER, req)
    assert out.Kind == "access_request" and out.Version == "v3"
    assert out.Metadata.Namespace == "default" and len(out.Metadata.Name) == 36
    assert out.Spec.User == "requester@example.com"
    assert out.Spec.State == types_pb2.PENDING
    assert out.Spec.Created.ToDatetime(tzinfo=UTC) == clock.now
    assert out.Metadata.Expires.ToDatetime(tzinfo=UTC) == clock.now + timedelta(hours=1)
    assert out.Spec.Expires.ToDatetime(tzinfo=UTC) == clock.now + timedelta(hours=8)
    assert out.Spec.SessionTTL.ToDatetime(tzinfo=UTC) == clock.now + timedelta(hours=8)
    assert out.Spec.MaxDuration.ToDatetime(tzinfo=UTC) == clock.now + timedelta(hours=8)
    assert list(out.Spec.SuggestedReviewers) == ["reviewer@example.com"]
    assert [(t.Approve, t.Deny) for t in out.Spec.Thresholds] == [(1, 1)]
    assert list(out.Spec.RoleThresholdMapping["editor"].Sets[0].Indexes) == [0]
    assert state.get_request(out.Metadata.Name) == out


def test_create_refuses_roles_the_caller_may_not_request(state: AuthState) -> None:
    with pytest.raises(AccessDenied, match="can not request role"):
        state.create_request(REVIEWER, new_request())
    with pytest.raises(AccessDenied):
        state.create_request(REQUESTER, new_request(("admin",)))
    with pytest.raises(NotFound):
        state.create_request(REQUESTER, new_request(("nonexistent",)))
    with pytest.raises(BadParameter):
        state.create_request(REQUESTER, new_request(()))


def test_create_on_behalf_of_another_user_needs_create_permission(state: AuthState) -> None:
    req = new_request()
    req.Spec.User = "myuser"
    with pytest.raises(AccessDenied):
        state.create_request(REQUESTER, req)
    assert state.create_request(ADMIN, req).Spec.User == "myuser"


def test_single_approval_resolves_with_deciding_reason(state: AuthState) -> None:
    rid = state.create_request(REQUESTER, new_request()).Metadata.Name
    out = state.submit_review(REVIEWER, review(rid, types_pb2.APPROVED, "okay"))
    assert out.Spec.State == types_pb2.APPROVED
    assert out.Spec.ResolveReason == "okay"
    assert [r.Author for r in out.Spec.Reviews] == ["reviewer@example.com"]
    with pytest.raises(AccessDenied, match=exactly("the access request has been already approved")):
        state.submit_review(REVIEWER2, review(rid, types_pb2.DENIED))


def test_review_refusals(state: AuthState) -> None:
    rid = state.create_request(REQUESTER, new_request()).Metadata.Name
    with pytest.raises(AccessDenied, match=exactly('user "requester@example.com" cannot submit reviews')):
        state.submit_review(ADMIN, review(rid, types_pb2.APPROVED, author="requester@example.com"))
    with pytest.raises(AccessDenied, match=exactly('user "reviewer@example.com" cannot submit reviews on behalf of "'
                                                   'reviewer2@example.com"')):
        state.submit_review(REVIEWER, review(rid, types_pb2.APPROVED, author="reviewer2@example.com"))
    with pytest.raises(AccessDenied, match=exactly('user "myuser" cannot submit reviews')):
        state.submit_review(MYUSER, review(rid, types_pb2.APPROVED))
    with pytest.raises(BadParameter, match=exactly("state promoted can be only set when promoting to access list")):
        state.submit_review(REVIEWER, review(rid, types_pb2.PROMOTED))
    with pytest.raises(BadParameter, match=exactly("invalid state proposal: PENDING (expected approval/denial)")):
        state.submit_review(REVIEWER, review(rid, types_pb2.PENDING))
    with pytest.raises(NotFound, match=exactly('cannot apply review to access request "missing" (not found)')):
        state.submit_review(REVIEWER, review("missing", types_pb2.APPROVED))
    own = state.create_request(ADMIN, new_request()).Metadata.Name
    with pytest.raises(AccessDenied, match=exactly(f'user "admin" cannot review request "{own}"')):
        state.submit_review(ADMIN, review(own, types_pb2.APPROVED))
    assert state.get_request(rid).Spec.State == types_pb2.PENDING
    assert state.reviews.audit == []


THRESHOLD_SEED = """
[roles.editor]
[roles.req]
request = ["editor"]
thresholds = [{ name = "two", approve = 2, deny = 2 }]
[roles.rev]
review = ["editor"]
[roles.admin]
rules = [{ resources = ["*"], verbs = ["*"] }]
[users.r]
roles = ["req"]
[users.a]
roles = ["rev"]
[users.b]
roles = ["rev"]
[users.c]
roles = ["rev"]
"""


def test_thresholds_two_approvals_and_one_review_per_author(clock: FakeClock) -> None:
    state = AuthState(parse_seed(THRESHOLD_SEED, "seed"), clock=clock)
    requester = Caller("r", ("req",), CLUSTER)
    a, b, c = (Caller(n, ("rev",), CLUSTER) for n in "abc")
    rid = state.create_request(requester, new_request()).Metadata.Name
    assert state.submit_review(a, review(rid, types_pb2.APPROVED, "one")).Spec.State == types_pb2.PENDING
    with pytest.raises(AlreadyExists, match=exactly('user "a" has already reviewed this request')):
        state.submit_review(a, review(rid, types_pb2.APPROVED))
    assert state.submit_review(b, review(rid, types_pb2.DENIED, "no")).Spec.State == types_pb2.PENDING
    out = state.submit_review(c, review(rid, types_pb2.APPROVED, "finally okay"))
    assert out.Spec.State == types_pb2.APPROVED and out.Spec.ResolveReason == "finally okay"

    rid2 = state.create_request(requester, new_request()).Metadata.Name
    state.submit_review(a, review(rid2, types_pb2.DENIED, "not okay"))
    out2 = state.submit_review(b, review(rid2, types_pb2.DENIED, "finally not okay"))
    assert out2.Spec.State == types_pb2.DENIED and out2.Spec.ResolveReason == "finally not okay"


def test_admin_reviews_on_behalf_of_a_reviewer(state: AuthState) -> None:
    rid = state.create_request(REQUESTER, new_request()).Metadata.Name
    out = state.submit_review(ADMIN, review(rid, types_pb2.DENIED, "nope", author="reviewer@example.com"))
    assert out.Spec.State == types_pb2.DENIED and out.Spec.Reviews[0].Author == "reviewer@example.com"


def test_set_state_rules(state: AuthState) -> None:
    rid = state.create_request(REQUESTER, new_request()).Metadata.Name
    setter = authservice_pb2.RequestStateSetter(ID=rid, State=types_pb2.APPROVED, Reason="okay")
    with pytest.raises(AccessDenied):
        state.set_state(REVIEWER, setter)
    own = state.create_request(ADMIN, new_request()).Metadata.Name
    with pytest.raises(AccessDenied, match="own"):
        state.set_state(ADMIN, authservice_pb2.RequestStateSetter(ID=own, State=types_pb2.APPROVED))
    with pytest.raises(BadParameter):
        state.set_state(ADMIN, authservice_pb2.RequestStateSetter(ID=rid, State=types_pb2.PROMOTED))
    state.set_state(ADMIN, setter)
    got = state.get_request(rid)
    assert got.Spec.State == types_pb2.APPROVED and got.Spec.ResolveReason == "okay"
    with pytest.raises(BadParameter, match="already"):
        state.set_state(ADMIN, authservice_pb2.RequestStateSetter(ID=rid, State=types_pb2.DENIED))


def test_events_put_and_delete_in_order(state: AuthState) -> None:
    watcher = state.fanout.subscribe([RequestFilter()])
    rid = state.create_request(REQUESTER, new_request()).Metadata.Name
    state.submit_review(REVIEWER, review(rid, types_pb2.APPROVED, "okay"))
    with pytest.raises(AccessDenied):
        state.delete_request(REVIEWER, rid)
    state.delete_request(ADMIN, rid)
    events = drain(watcher)
    assert [e.Type for e in events] == [event_pb2.PUT, event_pb2.PUT, event_pb2.DELETE]
    assert [e.AccessRequest.Spec.State for e in events[:2]] == [types_pb2.PENDING, types_pb2.APPROVED]
    header = events[2].ResourceHeader
    assert (header.Kind, header.Version, header.Metadata.Name, header.Metadata.Namespace) == (
        "access_request",
        "v3",
        rid,
        "default",
    )
    with pytest.raises(NotFound):
        state.delete_request(ADMIN, rid)


def test_plugin_data_cas_semantics(state: AuthState) -> None:
    rid = state.create_request(REQUESTER, new_request()).Metadata.Name
    flt = types_pb2.PluginDataFilter(Kind="access_request", Resource=rid, Plugin="mattermost")
    assert state.get_plugin_data(PLUGIN, flt) == []

    def update(set_: dict[str, str], expect: dict[str, str], resource: str = rid) -> None:
        state.update_plugin_data(
            PLUGIN,
            types_pb2.PluginDataUpdateParams(
                Kind="access_request", Resource=resource, Plugin="mattermost", Set=set_, Expect=expect
            ),
        )

    with pytest.raises(NotFound):
        update({"a": "1"}, {}, resource="missing")
    with pytest.raises(CompareFailed):
        update({"a": "1"}, {"a": "x"})
    update({"a": "1", "b": "2"}, {"a": "", "b": ""})
    [data] = state.get_plugin_data(PLUGIN, flt)
    assert (data.Kind, data.SubKind, data.Version) == ("plugin_data", "access_request", "v3")
    assert dict(data.Spec.Entries["mattermost"].Data) == {"a": "1", "b": "2"}
    expires = state.get_request(rid).Spec.Expires.ToDatetime(tzinfo=UTC) + timedelta(hours=1)
    assert data.Metadata.Expires.ToDatetime(tzinfo=UTC) == expires
    with pytest.raises(CompareFailed):
        update({"a": "3"}, {"a": "1", "c": "x"})
    update({"a": "3", "b": ""}, {"a": "1", "c": ""})
    [data] = state.get_plugin_data(PLUGIN, flt)
    assert dict(data.Spec.Entries["mattermost"].Data) == {"a": "3"}
    update({"z": "1"}, {})
    update({"a": "", "z": ""}, {})
    assert state.get_plugin_data(PLUGIN, flt) == []
    assert state.get_plugin_data(PLUGIN, types_pb2.PluginDataFilter(Kind="access_request", Resource=rid))
    with pytest.raises(BadParameter):
        state.get_plugin_data(PLUGIN, types_pb2.PluginDataFilter(Kind="node", Resource=rid))
    with pytest.raises(AccessDenied):
        state.get_plugin_data(REQUESTER, flt)
    with pytest.raises(AccessDenied):
        state.update_plugin_data(
            REVIEWER, types_pb2.PluginDataUpdateParams(Kind="access_request", Resource=rid, Plugin="x", Set={"a": "1"})
        )


def test_expiry_deletes_request_and_keeps_plugin_data(state: AuthState, clock: FakeClock) -> None:
    watcher = state.fanout.subscribe([RequestFilter()])
    rid = state.create_request(REQUESTER, new_request()).Metadata.Name
    state.update_plugin_data(
        PLUGIN, types_pb2.PluginDataUpdateParams(Kind="access_request", Resource=rid, Plugin="p", Set={"k": "v"})
    )
    clock.now += timedelta(minutes=59)
    assert state.sweep() == []
    clock.now += timedelta(minutes=1)
    assert state.sweep() == [rid]
    assert [e.Type for e in drain(watcher)] == [event_pb2.PUT, event_pb2.DELETE]
    assert len(state.all_plugin_data()) == 1
    clock.now += timedelta(hours=8)
    state.sweep()
    assert state.all_plugin_data() == []


def test_list_filters_visibility_and_pagination(state: AuthState, clock: FakeClock) -> None:
    ids = []
    for i in range(5):
        clock.now += timedelta(seconds=1)
        ids.append(state.create_request(REQUESTER, new_request(reason=f"r{i}")).Metadata.Name)
    clock.now += timedelta(seconds=1)
    mine = state.create_request(MYUSER, new_request()).Metadata.Name
    state.set_state(ADMIN, authservice_pb2.RequestStateSetter(ID=ids[0], State=types_pb2.DENIED))

    def listing(caller: Caller, **kw: object) -> list[str]:
        query = authservice_pb2.ListAccessRequestsRequest(**kw)  # type: ignore[arg-type]
        return [r.Metadata.Name for r in state.list_requests(caller, query)[0]]

    assert set(listing(PLUGIN)) == {*ids, mine}
    assert listing(MYUSER) == [mine]
    assert set(listing(REVIEWER)) == {*ids, mine}
    assert listing(PLUGIN, Filter=types_pb2.AccessRequestFilter(ID=mine)) == [mine]
    assert listing(PLUGIN, Filter=types_pb2.AccessRequestFilter(User="myuser")) == [mine]
    assert listing(PLUGIN, Filter=types_pb2.AccessRequestFilter(State=types_pb2.DENIED)) == [ids[0]]

    seen: list[str] = []
    key = ""
    while True:
        page, key = state.list_requests(
            PLUGIN, authservice_pb2.ListAccessRequestsRequest(Limit=2, StartKey=key, Sort=authservice_pb2.CREATED)
        )
        assert len(page) <= 2
        seen.extend(r.Metadata.Name for r in page)
        if not key:
            break
    assert seen == [*ids, mine]
    with pytest.raises(BadParameter):
        state.list_requests(PLUGIN, authservice_pb2.ListAccessRequestsRequest(StartKey="!!"))
    assert [r.Metadata.Name for r in state.get_requests(PLUGIN, types_pb2.AccessRequestFilter())] == [*ids, mine]


def test_watch_filters_overflow_and_drop() -> None:
    assert RequestFilter.from_map({"state": "PENDING"}).state == types_pb2.PENDING
    with pytest.raises(BadParameter):
        RequestFilter.from_map({"kind": "x"})
    with pytest.raises(BadParameter):
        RequestFilter.from_map({"state": "pending"})
    fanout = Fanout(queue_size=2)
    slow = fanout.subscribe([RequestFilter()])
    only_denied = fanout.subscribe([RequestFilter(state=types_pb2.DENIED)])
    req = types_pb2.AccessRequestV3()
    req.Metadata.Name = "r1"
    req.Spec.State = types_pb2.PENDING
    for _ in range(3):
        fanout.publish_put(req)
    assert fanout.count == 1 and drain(only_denied) == []
    assert slow not in fanout._watchers
    fanout.publish_delete(req)
    assert [e.Type for e in drain(only_denied)] == [event_pb2.DELETE]
    assert fanout.drop_all("bye") == 1 and fanout.count == 0


async def test_closed_watcher_raises_unavailable() -> None:
    fanout = Fanout(queue_size=1)
    watcher = fanout.subscribe([RequestFilter()])
    req = types_pb2.AccessRequestV3()
    fanout.publish_put(req)
    assert (await watcher.next()).Type == event_pb2.PUT
    fanout.publish_put(req)
    fanout.publish_put(req)
    with pytest.raises(ConnectionProblem, match="overflow"):
        await watcher.next()


def test_seed_errors_name_the_problem() -> None:
    with pytest.raises(SeedError, match=r"\[roles.x\]: unknown key\(s\) colour"):
        parse_seed("[roles.x]\ncolour = 1\n", "s.toml")
    with pytest.raises(SeedError, match="undefined role 'ghost'"):
        parse_seed("[users.u]\nroles = ['ghost']\n", "s.toml")
    with pytest.raises(SeedError, match="invalid duration"):
        parse_seed("[settings]\nrequest_ttl = 'soon'\n", "s.toml")
    with pytest.raises(SeedError, match="invalid TOML"):
        parse_seed("[[[", "s.toml")
    seed = parse_seed("[settings]\nrequest_ttl = '1h30m'\naccess_ttl = 5\n", "s.toml")
    assert seed.settings.request_ttl == timedelta(minutes=90)
    assert seed.settings.access_ttl == timedelta(seconds=5)
    default = load_seed()
    assert set(default.users) == {
        "myuser",
        "requester@example.com",
        "reviewer@example.com",
        "reviewer2@example.com",
        "admin",
        "access-plugin",
        "access-plugin-with-review",
        "bot-mattermost",
    }
    assert default.roles["editor"].logins == ("root", "ubuntu")


class _NoScan(dict):  # type: ignore[type-arg]
    """A dict that refuses to be iterated: lookups only."""

    def _refuse(self, *_: object) -> object:
        raise AssertionError("scanned every stored item")

    __iter__ = values = items = keys = _refuse  # type: ignore[assignment]


def test_sweeps_and_plugin_data_reads_do_not_scan_every_request(state: AuthState) -> None:
    # The expiry task sweeps on every create and the plugin reads its record on every event: neither may look at
    # every stored item, or a burst costs O(n²) (bench/e2e_burst.py checks the fakes' per-call cost).
    ids = [state.create_request(MYUSER, new_request()).Metadata.Name for _ in range(50)]
    for rid in ids:
        state.update_plugin_data(
            PLUGIN, types_pb2.PluginDataUpdateParams(Kind="access_request", Resource=rid, Plugin="p", Set={"k": rid})
        )
    state._requests = _NoScan(state._requests)
    state._plugin_data = _NoScan(state._plugin_data)
    assert state.sweep() == []
    assert state.next_expiry() is not None
    [data] = state.get_plugin_data(PLUGIN, types_pb2.PluginDataFilter(Kind="access_request", Resource=ids[7]))
    assert dict(data.Spec.Entries["p"].Data) == {"k": ids[7]}
    state.create_request(MYUSER, new_request())


def test_expiry_order_and_deleted_requests(state: AuthState, clock: FakeClock) -> None:
    first = state.create_request(MYUSER, new_request()).Metadata.Name
    clock.now += timedelta(minutes=10)
    second = state.create_request(MYUSER, new_request()).Metadata.Name
    third = state.create_request(MYUSER, new_request()).Metadata.Name
    state.delete_request(ADMIN, first)
    # The deleted request's planned expiry is skipped: the next one is the second request's.
    assert state.next_expiry() == state.get_request(second).Metadata.Expires.ToDatetime(tzinfo=UTC)
    clock.now += timedelta(hours=1)
    assert state.sweep() == [second, third]  # same expiry: in creation order
    assert state.next_expiry() is None
