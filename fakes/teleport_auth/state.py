"""The fake Auth's state: access requests and their workflow, plugin data, access monitoring rules (in
`monitoring_rules.py`), users (`users.py`), resources (`inventory.py`), reviews (`reviews.py`), expiry, and
event publication.

Every public method takes the authenticated `Caller`, enforces RBAC through `Policy`, and raises
`fakes.teleport_auth.errors` classes; none of it touches grpc, so it is unit-testable with an injected clock.
Requests are stored as `types.AccessRequestV3` messages and copied on the way out, so callers never share them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import heapq
import itertools
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from sidecar.teleport.wire import authservice_pb2, types_pb2, users_service_pb2

from .conditions import condition_error as parse_error
from .errors import AccessDenied, BadParameter, NotFound
from .inventory import Inventory, Page
from .monitoring_rules import AccessMonitoringRules, rule_from_def
from .plugin_data import PluginRecord, check_kind
from .rbac import Caller, Policy, authorize_admin_action
from .reviews import ReviewDesk
from .rule_validation import ConditionCheck
from .seed import Seed, SeedError, UserDef
from .seed_resources import KIND_KEYS, ResourceDef
from .users import UserDirectory, UserMatch, user_to_proto
from .watch import Fanout

Clock = Callable[[], datetime]

KIND_ACCESS_REQUEST = "access_request"
PLUGIN_DATA_GRACE = timedelta(hours=1)
_RESOLVED = (types_pb2.APPROVED, types_pb2.DENIED, types_pb2.PROMOTED)


def utc_now() -> datetime:
    """The real clock."""
    return datetime.now(UTC)


def state_name(state: int) -> str:
    """The enum name of a request state."""
    return types_pb2.RequestState.Name(state)  # type: ignore[arg-type]


class AuthState:
    """Access requests, reviews, plugin data and the watch fan-out of one fake cluster."""

    def __init__(
        self,
        seed: Seed,
        fanout: Fanout | None = None,
        clock: Clock = utc_now,
        condition_error: ConditionCheck = parse_error,
        cluster_name: str = "",
    ) -> None:
        self.seed = seed
        self.users = UserDirectory(seed.users)
        self.policy = Policy(seed, self.users)
        self.inventory = Inventory(seed.resources)
        settings = seed.settings
        self.reviews = ReviewDesk(
            self.policy, clock, admin_action_mfa=settings.admin_action_mfa, legacy=settings.legacy_review_api
        )
        self.fanout = fanout if fanout is not None else Fanout()
        self._clock = clock
        self._cluster_name = cluster_name  # "" (unit tests): resource IDs of any cluster are taken as local
        self._requests: dict[str, types_pb2.AccessRequestV3] = {}
        self._plugin_data: dict[tuple[str, str], PluginRecord] = {}
        self._changed = asyncio.Event()
        self.rules = AccessMonitoringRules(
            self.policy, self.fanout, clock, condition_error, on_change=self._changed.set
        )
        for rule_def in seed.access_monitoring_rules.values():
            try:
                self.rules.put(rule_from_def(rule_def))
            except BadParameter as exc:
                raise SeedError(f"[access_monitoring_rules.{rule_def.name!r}]: {exc.message}") from exc
        # A min-heap of (expiry, insertion order, key): sweeping and planning the next sweep stay O(log n) per
        # item instead of scanning every request on each wake-up (the expiry task wakes on every create).
        # Entries of things deleted meanwhile are skipped when they come up.
        self._expiries: list[tuple[datetime, int, str | tuple[str, str]]] = []
        self._order = itertools.count()

    # ----------------------------------------------------------------- access requests

    def create_request(self, caller: Caller, req: types_pb2.AccessRequestV3) -> types_pb2.AccessRequestV3:
        """CreateAccessRequestV2: validate, stamp times and thresholds, store, publish a PUT.

        A resource request (RequestedResourceIDs) names existing resources; without roles it gets the requester's
        `search_as_roles` that grant access to at least one of them, as Teleport picks them.
        """
        user = req.Spec.User or caller.user
        if user == caller.user:
            requester_roles = caller.roles
        else:
            self.policy.require(caller, KIND_ACCESS_REQUEST, "create")
            authorize_admin_action(caller, self.reviews.admin_action_mfa)  # allowed by rules, not by ownership
            requester_roles = self.policy.user_roles(user)
        resources = [self._requested_resource(rid) for rid in req.Spec.RequestedResourceIDs]
        roles = list(dict.fromkeys(req.Spec.Roles)) or self._roles_for(requester_roles, resources)
        if not roles:
            raise BadParameter("access request must specify at least one role")
        if req.Spec.State not in (types_pb2.NONE, types_pb2.PENDING):
            raise BadParameter(f"new access request must be PENDING, got {state_name(req.Spec.State)}")
        for role in roles:
            self.policy.role(role)
            if not self.policy.can_request(requester_roles, role):
                raise AccessDenied(f'user "{user}" can not request role "{role}"')
        for resource in resources:
            if not self.policy.labels_allow(roles, resource.kind, resource.labels):
                raise AccessDenied(f'user "{user}" can not request access to {resource.kind} "{resource.name}"')

        now = self._clock()
        settings = self.seed.settings
        out = types_pb2.AccessRequestV3(Kind=KIND_ACCESS_REQUEST, Version="v3")
        out.Metadata.Name = str(uuid.uuid4())
        out.Metadata.Namespace = "default"
        out.Metadata.Expires.FromDatetime(now + settings.request_ttl)
        spec = out.Spec
        spec.User = user
        spec.Roles.extend(roles)
        spec.State = types_pb2.PENDING
        spec.Created.FromDatetime(now)
        spec.Expires.FromDatetime(now + settings.access_ttl)
        spec.MaxDuration.FromDatetime(now + settings.max_duration)
        spec.SessionTTL.FromDatetime(now + settings.session_ttl)
        spec.RequestReason = req.Spec.RequestReason
        spec.SuggestedReviewers.extend(req.Spec.SuggestedReviewers)
        spec.RequestedResourceIDs.extend(req.Spec.RequestedResourceIDs)
        spec.LoginHint = req.Spec.LoginHint
        spec.DryRun = req.Spec.DryRun
        spec.SystemAnnotations.CopyFrom(req.Spec.SystemAnnotations)
        spec.RequestKind = req.Spec.RequestKind
        if req.Spec.HasField("AssumeStartTime"):
            spec.AssumeStartTime.CopyFrom(req.Spec.AssumeStartTime)
        thresholds, mapping = self.policy.thresholds_for(requester_roles, spec.Roles)
        for t in thresholds:
            spec.Thresholds.add(Name=t.name, Approve=t.approve, Deny=t.deny)
        for role, sets in mapping.items():
            for indexes in sets:
                spec.RoleThresholdMapping[role].Sets.add(Indexes=indexes)
        if spec.DryRun:
            return out
        self._requests[out.Metadata.Name] = out
        self._expire_at(out.Metadata.Expires.ToDatetime(tzinfo=UTC), out.Metadata.Name)
        self.fanout.publish_put(out)
        self._changed.set()
        return _copy(out)

    def get_request(self, request_id: str) -> types_pb2.AccessRequestV3:
        """A stored request (a copy); NotFound when unknown."""
        return _copy(self._lookup(request_id))

    def _lookup(self, request_id: str) -> types_pb2.AccessRequestV3:
        req = self._requests.get(request_id)
        if req is None:
            raise NotFound(f'access request "{request_id}" is not found')
        return req

    def _requested_resource(self, rid: types_pb2.ResourceID) -> ResourceDef:
        """The resource a requested resource ID names: it must exist (sub-resources only under a Kubernetes
        cluster, and not checked)."""
        if not (rid.ClusterName and rid.Kind and rid.Name):
            raise BadParameter("resource ID needs a cluster name, a kind and a name")
        if self._cluster_name and rid.ClusterName != self._cluster_name:
            raise NotFound(f'remote cluster "{rid.ClusterName}" is not found')
        if rid.SubResourceName and rid.Kind != "kube_cluster":
            raise BadParameter(f'resource kind "{rid.Kind}" has no sub-resources')
        if rid.Kind not in KIND_KEYS:
            raise BadParameter(f'resource kind "{rid.Kind}" is not supported by the fake Auth')
        return self.inventory.get(rid.Kind, rid.Name)

    def _roles_for(self, requester_roles: tuple[str, ...], resources: list[ResourceDef]) -> list[str]:
        if not resources:
            return []
        roles = [
            role
            for role in self.policy.search_as_roles(requester_roles)
            if any(self.policy.labels_allow((role,), r.kind, r.labels) for r in resources)
        ]
        if not roles:
            raise BadParameter(
                'no roles configured in the "search_as_roles" for this user allow access to at least one requested '
                "resource"
            )
        return roles

    def submit_review(self, caller: Caller, submission: types_pb2.AccessReviewSubmission) -> types_pb2.AccessRequestV3:
        """SubmitAccessReview (reviews.py has the checks, in Teleport's order): record the review, resolve by
        thresholds, publish a PUT, audit it. Returns the request after the review."""
        review = self.reviews.authorize(caller, submission.Review)
        roles = self.reviews.author_roles(caller, review.Author)
        req = self._requests.get(submission.RequestID)
        if req is None:
            raise NotFound(f'cannot apply review to access request "{submission.RequestID}" (not found)')
        self.reviews.apply(req, review, roles)
        self.fanout.publish_put(req)
        return _copy(req)

    def set_state(self, caller: Caller, setter: authservice_pb2.RequestStateSetter) -> None:
        """SetAccessRequestState (admins): resolve a pending request directly, publish a PUT."""
        self.policy.require(caller, KIND_ACCESS_REQUEST, "update")
        authorize_admin_action(caller, self.reviews.admin_action_mfa)
        req = self._lookup(setter.ID)
        if req.Spec.User == caller.user:
            raise AccessDenied(f'user "{caller.user}" cannot change the state of their own access request')
        if setter.State not in (types_pb2.APPROVED, types_pb2.DENIED):
            raise BadParameter(f"access request state can be set to APPROVED or DENIED, not {state_name(setter.State)}")
        if req.Spec.State in _RESOLVED:
            raise BadParameter(f"access request {req.Metadata.Name} is already {state_name(req.Spec.State)}")
        if setter.Roles:
            unknown = [r for r in setter.Roles if r not in req.Spec.Roles]
            if unknown:
                raise BadParameter(f"roles {', '.join(unknown)} were not requested")
            del req.Spec.Roles[:]
            req.Spec.Roles.extend(dict.fromkeys(setter.Roles))
        req.Spec.State = setter.State
        req.Spec.ResolveReason = setter.Reason
        req.Spec.ResolveAnnotations.CopyFrom(setter.Annotations)
        self.fanout.publish_put(req)

    def delete_request(self, caller: Caller, request_id: str) -> None:
        """DeleteAccessRequest (admins): remove and publish a DELETE; plugin data stays until it expires."""
        self.policy.require(caller, KIND_ACCESS_REQUEST, "delete")
        authorize_admin_action(caller, self.reviews.admin_action_mfa)
        self._remove(request_id)

    def expire_request(self, request_id: str) -> None:
        """Expire a request now, as the backend TTL would (admin API)."""
        self._remove(request_id)

    def _remove(self, request_id: str) -> None:
        req = self._lookup(request_id)
        del self._requests[request_id]
        self.fanout.publish_delete(req)
        self._changed.set()

    def list_requests(
        self, caller: Caller, query: authservice_pb2.ListAccessRequestsRequest
    ) -> tuple[list[types_pb2.AccessRequestV3], str]:
        """ListAccessRequests: filtered, sorted and paginated (opaque StartKey/NextKey)."""
        sort, descending = query.Sort, query.Descending
        items = sorted(self._visible(caller, query.Filter), key=lambda r: _sort_key(r, sort), reverse=descending)
        if query.StartKey:
            start = _decode_key(query.StartKey)
            numeric = sort in (authservice_pb2.CREATED, authservice_pb2.STATE)
            if isinstance(start[0], int) != numeric:
                raise BadParameter("StartKey does not belong to this sort order")
            items = [r for r in items if (_sort_key(r, sort) <= start if descending else _sort_key(r, sort) >= start)]
        next_key = ""
        if query.Limit > 0 and len(items) > query.Limit:
            next_key = _encode_key(_sort_key(items[query.Limit], sort))
            items = items[: query.Limit]
        return [_copy(r) for r in items], next_key

    def get_requests(self, caller: Caller, flt: types_pb2.AccessRequestFilter) -> list[types_pb2.AccessRequestV3]:
        """GetAccessRequestsV2: every visible request matching the filter, oldest first."""
        items = sorted(self._visible(caller, flt), key=lambda r: _sort_key(r, authservice_pb2.CREATED))
        return [_copy(r) for r in items]

    def all_requests(self) -> list[types_pb2.AccessRequestV3]:
        """Every stored request, oldest first (admin API and tests)."""
        return [_copy(r) for r in sorted(self._requests.values(), key=lambda r: _sort_key(r, authservice_pb2.CREATED))]

    def _visible(self, caller: Caller, flt: types_pb2.AccessRequestFilter) -> list[types_pb2.AccessRequestV3]:
        see_all = self.policy.allowed(caller, KIND_ACCESS_REQUEST, "list") and self.policy.allowed(
            caller, KIND_ACCESS_REQUEST, "read"
        )
        result = []
        for req in self._requests.values():
            own = req.Spec.User == caller.user
            reviewable = not own and self.policy.can_review(caller.roles, req.Spec.Roles)
            if not (see_all or own or reviewable):
                continue
            if _matches_filter(req, flt, caller, reviewable):
                result.append(req)
        return result

    # ----------------------------------------------------------------- plugin data

    def get_plugin_data(self, caller: Caller, flt: types_pb2.PluginDataFilter) -> list[types_pb2.PluginDataV3]:
        """GetPluginData: zero or more records (never NotFound), filtered by resource and plugin."""
        self.policy.require_any(caller, ("access_request", "access_plugin_data"), "list", "read")
        check_kind(flt.Kind)
        if flt.Resource:
            # One resource: a lookup, not a sort of every record (the plugin reads its record on every event).
            found = self._plugin_data.get((flt.Kind, flt.Resource))
            candidates = [found] if found is not None else []
        else:
            candidates = [r for (kind, _), r in sorted(self._plugin_data.items()) if kind == flt.Kind]
        result = []
        for record in candidates:
            if flt.Plugin and flt.Plugin not in record.entries:
                continue
            result.append(record.to_proto())
        return result

    def update_plugin_data(self, caller: Caller, params: types_pb2.PluginDataUpdateParams) -> None:
        """UpdatePluginData: create the record for a live request if needed, then compare-and-set."""
        self.policy.require_any(caller, ("access_plugin_data", "access_request"), "update")
        check_kind(params.Kind)
        if not params.Resource:
            raise BadParameter("plugin data update needs a resource name")
        if not params.Plugin:
            raise BadParameter("plugin data update needs a plugin name")
        key = (params.Kind, params.Resource)
        record = self._plugin_data.get(key)
        if record is None:
            req = self._lookup(params.Resource)
            expires = req.Spec.Expires.ToDatetime(tzinfo=UTC) + PLUGIN_DATA_GRACE
            record = PluginRecord(kind=params.Kind, resource=params.Resource, expires=expires)
            record.apply(params.Plugin, dict(params.Set), dict(params.Expect))
            self._plugin_data[key] = record
            self._expire_at(expires, key)
            self._changed.set()
        else:
            record.apply(params.Plugin, dict(params.Set), dict(params.Expect))

    def all_plugin_data(self) -> list[types_pb2.PluginDataV3]:
        """Every stored plugin data record (admin API and tests)."""
        return [r.to_proto() for _, r in sorted(self._plugin_data.items())]

    # ----------------------------------------------------------------- users

    def get_user(
        self, caller: Caller, name: str, *, current_user: bool = False, with_secrets: bool = False
    ) -> types_pb2.UserV2:
        """GetUser (`teleport.users.v1`): roles and traits; `user: read` unless the caller asks for itself.

        Secrets are for admins only (the fake has none to send, but refuses the same callers).
        """
        name = caller.user if current_user else name
        if not name:
            raise BadParameter("missing parameter name")
        if with_secrets and not self.policy.is_admin(caller):
            raise AccessDenied(f'access denied to perform action "read" with secrets on "user" "{name}"')
        if name != caller.user:
            self.policy.require(caller, "user", "read")
        return user_to_proto(self.users.get(name))

    def list_users(
        self, caller: Caller, request: users_service_pb2.ListUsersRequest
    ) -> users_service_pb2.ListUsersResponse:
        """ListUsers (`teleport.users.v1`): `user: list` and `read`, secrets for admins only; paged, filtered."""
        if request.with_secrets and not self.policy.is_admin(caller):
            raise AccessDenied('access denied to perform action "read" with secrets on "user"')
        self.policy.require(caller, "user", "list", "read")
        match = UserMatch.from_proto(request.filter, legacy=self.reviews.legacy)
        users, token = self.users.page(request.page_size, request.page_token, match)
        return users_service_pb2.ListUsersResponse(users=[user_to_proto(u) for u in users], next_page_token=token)

    def user_traits(self, name: str) -> Mapping[str, tuple[str, ...]]:
        """A user's current traits; NotFound for an unknown user."""
        return self.users.get(name).traits

    def set_user_traits(self, name: str, traits: Mapping[str, Sequence[str]]) -> None:
        """Replace a user's traits (admin API); NotFound for an unknown user. No watch event: users are not a
        watched kind here."""
        self.users.set_traits(name, traits)

    def put_user(self, user: UserDef) -> None:
        """Create or replace a user (admin API); its roles must exist."""
        for role in user.roles:
            self.policy.role(role)
        self.users.put(user)

    # ----------------------------------------------------------------- resources

    def list_resources(self, caller: Caller, request: authservice_pb2.ListResourcesRequest) -> Page:
        """ListResources (inventory.py has the rules)."""
        return self.inventory.list_page(self.policy, caller, request)

    # ----------------------------------------------------------------- expiry

    def sweep(self) -> list[str]:
        """Delete requests, plugin data and rules past their expiry; returns the expired request IDs."""
        self.rules.sweep()
        now = self._clock()
        expired = []
        while self._expiries and self._expiries[0][0] <= now:
            _, _, key = heapq.heappop(self._expiries)
            if isinstance(key, str):
                if key in self._requests:
                    expired.append(key)
                    self._remove(key)
            else:
                self._plugin_data.pop(key, None)
        return expired

    def next_expiry(self) -> datetime | None:
        """The earliest expiry of anything stored."""
        heap = self._expiries
        while heap and not self._stored(heap[0][2]):
            heapq.heappop(heap)  # deleted before it expired
        due = [when for when in (heap[0][0] if heap else None, self.rules.store.next_expiry()) if when is not None]
        return min(due, default=None)

    def _expire_at(self, when: datetime, key: str | tuple[str, str]) -> None:
        """Plan the expiry of a request (its id) or of a plugin data record (its key); each is planned once."""
        heapq.heappush(self._expiries, (when, next(self._order), key))

    def _stored(self, key: str | tuple[str, str]) -> bool:
        return key in self._requests if isinstance(key, str) else key in self._plugin_data

    async def run_expiry(self, max_interval: float = 1.0) -> None:
        """Background task: sweep whenever something is due (re-planned when state changes)."""
        while True:
            self.sweep()
            self._changed.clear()
            nxt = self.next_expiry()
            delay = max_interval if nxt is None else (nxt - self._clock()).total_seconds()
            delay = min(max(delay, 0.0), max_interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=delay)


def _copy(req: types_pb2.AccessRequestV3) -> types_pb2.AccessRequestV3:
    out = types_pb2.AccessRequestV3()
    out.CopyFrom(req)
    return out


def _matches_filter(
    req: types_pb2.AccessRequestV3, flt: types_pb2.AccessRequestFilter, caller: Caller, reviewable: bool
) -> bool:
    if flt.ID and req.Metadata.Name != flt.ID:
        return False
    if flt.User and req.Spec.User != flt.User:
        return False
    if flt.State != types_pb2.NONE and req.Spec.State != flt.State:
        return False
    reviewed = any(r.Author == caller.user for r in req.Spec.Reviews)
    if flt.Scope == types_pb2.MY_REQUESTS and req.Spec.User != caller.user:
        return False
    needs_review = reviewable and not reviewed and req.Spec.State == types_pb2.PENDING
    if flt.Scope == types_pb2.NEEDS_REVIEW and not needs_review:
        return False
    if flt.Scope == types_pb2.REVIEWED and not reviewed:
        return False
    if flt.SearchKeywords:
        haystack = " ".join([req.Metadata.Name, req.Spec.User, *req.Spec.Roles, req.Spec.RequestReason]).lower()
        if not all(word.lower() in haystack for word in flt.SearchKeywords):
            return False
    return True


def _sort_key(req: types_pb2.AccessRequestV3, sort: int) -> tuple[str | int, str]:
    if sort == authservice_pb2.CREATED:
        created = req.Spec.Created
        return (created.seconds * 1_000_000_000 + created.nanos, req.Metadata.Name)
    if sort == authservice_pb2.STATE:
        return (req.Spec.State, req.Metadata.Name)
    if sort == authservice_pb2.USER:
        return (req.Spec.User, req.Metadata.Name)
    return (req.Metadata.Name, req.Metadata.Name)


def _encode_key(key: tuple[str | int, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode()


def _decode_key(text: str) -> tuple[str | int, str]:
    try:
        value = json.loads(base64.urlsafe_b64decode(text.encode()))
    except (binascii.Error, ValueError) as exc:
        raise BadParameter("invalid StartKey") from exc
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not isinstance(value[0], str | int)
        or not isinstance(value[1], str)
    ):
        raise BadParameter("invalid StartKey")
    return (value[0], value[1])
