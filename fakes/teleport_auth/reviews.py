"""SubmitAccessReview as Teleport's Auth checks and applies it, reviews on behalf of others included, and the
audit log of the reviews it accepted.

The checks run in Teleport's order, with its error classes and texts (`ServerWithRoles.SubmitAccessReview`,
`AuthorizeAccessReviewRequest[AsPlugin]`, `Server.submitAccessReview`, `DynamicAccessService.ApplyAccessReview`,
`services.ApplyAccessReview`; in-chat-review.md §1.4):

1. a PROMOTED proposal is refused; an empty Author becomes the caller;
2. for a review sent on behalf of its author (`submitted_on_behalf_of_author`, field 12): SubmittedBy (field 11)
   becomes the caller and may not name anyone else; the caller needs `user: read`, the author must exist, and the
   caller's roles must allow `review_requests.submit_for_users` for the author (and no deny entry match);
   otherwise SubmittedBy is cleared, and the author must be the caller unless the caller is an admin (the fake's
   stand-in for Teleport's builtin Admin role), who must be able to review something;
3. admin-action MFA: refused for every caller but a bot while the switch is on;
4. the author's own review permissions, from the author's roles (the caller's certificate for itself): some
   `review_requests.roles`, and the request's roles among them; never the author's own request; never for a
   bot's user, unless the bot reviews for itself;
5. the review itself: APPROVED or DENIED only, no annotations, no role subselection, one per author
   (AlreadyExists), and never on a resolved request;
6. thresholds (Teleport's `calculateReviewBasedResolution`): every review counts toward every threshold (the
   fake has no threshold filters); DENIED as soon as a deny count is met; APPROVED once, for every requested
   role, each of its threshold sets has a threshold whose approval count is met; the triggering review's reason
   becomes the resolve reason.

`review_requests.where` predicates are not modelled. With `legacy` set the server knows neither field 11 nor 12
(an Auth from before reviews on behalf of others): both are dropped on arrival, so such a review takes the
ordinary path and is refused unless the caller is the author.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sidecar.teleport.wire import types_pb2

from .errors import AccessDenied, AlreadyExists, BadParameter, NotFound, Unimplemented
from .rbac import Caller, Policy, authorize_admin_action
from .rule_validation import go_quote

REVIEW_EVENT = "access_request.review"
REVIEW_CODE = "T5002I"
_RESOLVED_TEXT = {types_pb2.APPROVED: "approved", types_pb2.DENIED: "denied", types_pb2.PROMOTED: "promoted"}


@dataclass(frozen=True)
class AuditEntry:
    """One `access_request.review` audit event: who reviewed, who submitted it, and the request's state after."""

    time: datetime
    request_id: str
    reviewer: str
    submitted_by: str
    proposed_state: str
    state: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        """The event as the admin API shows it (Teleport's audit field names)."""
        return {
            "event": REVIEW_EVENT,
            "code": REVIEW_CODE,
            "time": self.time.isoformat().replace("+00:00", "Z"),
            "id": self.request_id,
            "reviewer": self.reviewer,
            "submitted_by": self.submitted_by,
            "proposed_state": self.proposed_state,
            "state": self.state,
            "reason": self.reason,
        }


def state_name(state: int) -> str:
    """The enum name of a request state."""
    return types_pb2.RequestState.Name(state)  # type: ignore[arg-type]


class ReviewDesk:
    """Checks and applies reviews for one fake cluster, and keeps their audit log."""

    def __init__(
        self, policy: Policy, clock: Callable[[], datetime], *, admin_action_mfa: bool = False, legacy: bool = False
    ) -> None:
        self._policy = policy
        self._clock = clock
        #: Admin actions need MFA, which the fake's callers never present: only bots get through.
        self.admin_action_mfa = admin_action_mfa
        #: Behave as an Auth that does not know AccessReview fields 11 and 12.
        self.legacy = legacy
        self.audit: list[AuditEntry] = []

    def authorize(self, caller: Caller, submitted: types_pb2.AccessReview) -> types_pb2.AccessReview:
        """Steps 1 to 3: the review as the server will apply it (author and SubmittedBy settled)."""
        review = types_pb2.AccessReview()
        review.CopyFrom(submitted)
        if self.legacy:
            review.ClearField("SubmittedBy")
            review.ClearField("submitted_on_behalf_of_author")
        if review.ProposedState == types_pb2.PROMOTED:
            raise BadParameter("state promoted can be only set when promoting to access list")
        if not review.Author:
            review.Author = caller.user
        if review.submitted_on_behalf_of_author:
            self._authorize_as_plugin(caller, review)
        else:
            review.SubmittedBy = ""
            if not self._policy.is_admin(caller):
                if review.Author != caller.user:
                    raise AccessDenied(
                        f"user {go_quote(caller.user)} cannot submit reviews on behalf of {go_quote(review.Author)}"
                    )
                if not self._policy.may_review_some(caller.roles):
                    raise AccessDenied(f"user {go_quote(caller.user)} cannot submit reviews")
        authorize_admin_action(caller, self.admin_action_mfa)
        return review

    def _authorize_as_plugin(self, caller: Caller, review: types_pb2.AccessReview) -> None:
        if not review.SubmittedBy:
            review.SubmittedBy = caller.user
        who, author = go_quote(caller.user), go_quote(review.Author)
        if review.SubmittedBy != caller.user:
            raise AccessDenied(f"user {who} cannot submit reviews on behalf of {go_quote(review.SubmittedBy)}")
        self._policy.require(caller, "user", "read")
        try:
            self._policy.user(review.Author)
        except NotFound:
            raise AccessDenied(
                f"user {who} cannot submit reviews for {author}, user could not be fetched from local store"
            ) from None
        if not self._policy.may_submit_for(caller.roles, review.Author):
            raise AccessDenied(f"user {who} cannot submit reviews for {author}")

    def author_roles(self, caller: Caller, author: str) -> tuple[str, ...]:
        """Step 4's roles: the author's own (the caller's certificate when it reviews for itself)."""
        if author == caller.user:
            return caller.roles
        user = self._policy.user(author)
        if user.bot:
            raise AccessDenied(f"user {go_quote(author)} cannot submit reviews")
        if not self._policy.may_review_some(user.roles):
            raise AccessDenied(f"user {go_quote(author)} cannot submit reviews")
        return user.roles

    def apply(self, request: types_pb2.AccessRequestV3, review: types_pb2.AccessReview, roles: tuple[str, ...]) -> None:
        """Steps 4 to 6 on the stored request (changed in place only when every check passes); audited."""
        spec, author = request.Spec, review.Author
        if spec.User == author or not self._policy.can_review(roles, spec.Roles):
            raise AccessDenied(f"user {go_quote(author)} cannot review request {go_quote(request.Metadata.Name)}")
        _check_compatible(request, review)
        if spec.State in _RESOLVED_TEXT:
            raise AccessDenied(f"the access request has been already {_RESOLVED_TEXT[spec.State]}")
        stored = spec.Reviews.add()
        stored.CopyFrom(review)
        stored.Roles[:] = sorted(set(review.Roles))
        if not review.HasField("Created") or review.Created.seconds <= 0:
            stored.Created.FromDatetime(self._clock())
        stored.ThresholdIndexes[:] = range(len(spec.Thresholds))
        resolution = resolve(request)
        if resolution is not None:
            spec.State, spec.ResolveReason = resolution
        self.audit.append(
            AuditEntry(
                time=self._clock().astimezone(UTC),
                request_id=request.Metadata.Name,
                reviewer=author,
                submitted_by=stored.SubmittedBy,
                proposed_state=state_name(stored.ProposedState),
                state=state_name(spec.State),
                reason=stored.Reason,
            )
        )


def _check_compatible(request: types_pb2.AccessRequestV3, review: types_pb2.AccessReview) -> None:
    """Teleport's `checkReviewCompat`."""
    spec = request.Spec
    if review.ProposedState not in (types_pb2.APPROVED, types_pb2.DENIED):
        raise BadParameter(f"invalid state proposal: {state_name(review.ProposedState)} (expected approval/denial)")
    if not spec.Thresholds:
        raise BadParameter("request is uninitialized or does not support reviews")
    if any(r.Author == review.Author for r in spec.Reviews):
        raise AlreadyExists(f"user {go_quote(review.Author)} has already reviewed this request")
    roles = set(review.Roles)
    if roles and len(roles) != len(spec.RoleThresholdMapping):
        raise Unimplemented("role subselection is not yet supported in reviews, try omitting role list")
    if review.Annotations.Values:
        raise Unimplemented("annotations are not yet supported in reviews, try omitting annotations field")
    for role in sorted(roles):
        if role not in spec.RoleThresholdMapping:
            raise BadParameter(f"role {go_quote(role)} is not a member of this request")


def resolve(request: types_pb2.AccessRequestV3) -> tuple[types_pb2.RequestState.ValueType, str] | None:
    """The state and resolve reason the reviews so far lead to, or None while the request stays pending."""
    spec = request.Spec
    thresholds = spec.Thresholds
    approvals = [0] * len(thresholds)
    denials = [0] * len(thresholds)
    for review in spec.Reviews:
        for index in review.ThresholdIndexes:
            if index < len(thresholds):
                if review.ProposedState == types_pb2.APPROVED:
                    approvals[index] += 1
                else:
                    denials[index] += 1
        if any(t.Deny and denials[i] >= t.Deny for i, t in enumerate(thresholds)):
            return (types_pb2.DENIED, review.Reason) if review.ProposedState == types_pb2.DENIED else None
        if review.ProposedState == types_pb2.APPROVED and all(
            all(any(thresholds[i].Approve and approvals[i] >= thresholds[i].Approve for i in s.Indexes
                    if i < len(thresholds)) for s in sets.Sets)
            for sets in spec.RoleThresholdMapping.values()
        ):
            return types_pb2.APPROVED, review.Reason
    return None
