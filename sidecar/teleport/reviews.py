"""Reviews the sidecar submits for people (in-chat review), and the ListUsers lookup that binds them.

`submit_review_on_behalf` sends SubmitAccessReview with the author's name and `submitted_on_behalf_of_author`
(AccessReview field 12) set, and never SubmittedBy (field 11): Auth fills it with the plugin's own user and
refuses anything else. Auth then checks the plugin's `review_requests.submit_for_users` and the author's own
review permissions (in-chat-review.md §1.4).

An Auth older than the feature does not know field 12, so it takes the review as the plugin's own and refuses it
("user X cannot submit reviews on behalf of Y"): that answer becomes Unimplemented. Should an old Auth accept the
review anyway (only its builtin Admin may review in another's name), the stored review comes back without
SubmittedBy: that is Unimplemented too. Both fail closed: the caller never reports such a review as done.

`access_request` reads one request by id (the review path checks its state and kind first).

`refusal_of` sorts a failed submission into what the clicker should be told (the texts are Auth's; the
error classes come from `map_rpc_error`, sidecar/teleport/client.py).

`find_users_by_trait` pages ListUsers with the `UserFilter.Traits` matcher (field 3) and checks the trait again
on every user returned: an Auth that ignores the filter returns every user, which must never bind anyone.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import UTC, datetime

from sidecar.domain.errors import (
    AccessDenied,
    AlreadyExists,
    NotFound,
    PermanentError,
    SidecarError,
    TransientError,
    Unimplemented,
)
from sidecar.domain.model import AccessRequest, RequestState
from sidecar.teleport.client import TeleportClient
from sidecar.teleport.convert import access_request_from_proto, datetime_to_timestamp, state_to_proto
from sidecar.teleport.wire import types_pb2, users_service_pb2, wrappers_pb2

USERS_PAGE_SIZE = 500

#: Auth's answers, as found in the error messages (`map_rpc_error` keeps them).
LEGACY_REFUSAL = "cannot submit reviews on behalf of"
MFA_REQUIRED = "admin-level API request requires MFA verification"
ALREADY_RESOLVED = "the access request has been already"
ALREADY_REVIEWED = "has already reviewed this request"
UNKNOWN_AUTHOR = "user could not be fetched from local store"


class ReviewRefusal(enum.Enum):
    """Why a review submitted for someone did not go through, as the clicker should hear it."""

    NOT_ALLOWED = "not_allowed"  # the author may not review this request, or the plugin may not submit for them
    UNKNOWN_USER = "unknown_user"  # Auth has no (local) user by the author's name
    ALREADY_REVIEWED = "already_reviewed"
    ALREADY_RESOLVED = "already_resolved"
    NOT_FOUND = "not_found"  # the request is gone (expired or deleted)
    SERVER_TOO_OLD = "server_too_old"  # Auth does not know reviews on behalf of others
    MFA_REQUIRED = "mfa_required"  # admin actions need MFA: run the sidecar under a Machine ID bot
    UNAVAILABLE = "unavailable"  # Teleport could not answer; trying again later may work
    OTHER = "other"


def refusal_of(error: SidecarError) -> ReviewRefusal:
    """The refusal a failed `submit_review_on_behalf` stands for."""
    text = str(error)
    if isinstance(error, Unimplemented):
        return ReviewRefusal.SERVER_TOO_OLD
    if isinstance(error, TransientError):
        return ReviewRefusal.UNAVAILABLE
    if isinstance(error, AlreadyExists) or ALREADY_REVIEWED in text:
        return ReviewRefusal.ALREADY_REVIEWED
    if isinstance(error, NotFound):
        return ReviewRefusal.NOT_FOUND
    if isinstance(error, AccessDenied):
        if MFA_REQUIRED in text:
            return ReviewRefusal.MFA_REQUIRED
        if ALREADY_RESOLVED in text:
            return ReviewRefusal.ALREADY_RESOLVED
        if UNKNOWN_AUTHOR in text:
            return ReviewRefusal.UNKNOWN_USER
        return ReviewRefusal.NOT_ALLOWED
    return ReviewRefusal.OTHER


def _now() -> datetime:
    return datetime.now(UTC)


class TeleportReviews:
    """Reviews for other users and user lookups by trait, over TeleportClient."""

    def __init__(self, client: TeleportClient, *, clock: Callable[[], datetime] = _now) -> None:
        self._client = client
        self._clock = clock

    async def submit_review_on_behalf(
        self, request_id: str, author: str, state: RequestState, reason: str = ""
    ) -> AccessRequest:
        """Review `request_id` as `author` (APPROVED or DENIED); the request as Auth left it after the review.

        Raises the client's sidecar errors (see `refusal_of`), and Unimplemented when Auth does not support reviews
        on behalf of others (refused, or recorded without SubmittedBy).
        """
        if not request_id or not author:
            raise ValueError("a review needs a request id and an author")
        if state not in (RequestState.APPROVED, RequestState.DENIED):
            raise ValueError(f"a review proposes APPROVED or DENIED, not {state.value}")
        review = types_pb2.AccessReview(
            Author=author,
            ProposedState=state_to_proto(state),
            Reason=reason,
            Created=datetime_to_timestamp(self._clock()),
            submitted_on_behalf_of_author=True,
        )
        submission = types_pb2.AccessReviewSubmission(RequestID=request_id, Review=review)
        try:
            reviewed: types_pb2.AccessRequestV3 = await self._client.unary(
                "SubmitAccessReview", lambda ch: ch.auth.SubmitAccessReview(submission, timeout=self._client.timeout)
            )
        except AccessDenied as exc:
            if LEGACY_REFUSAL in str(exc):
                raise Unimplemented(f"{exc} (this Teleport Auth does not accept reviews submitted for others)") from exc
            raise
        stored = [r for r in reviewed.Spec.Reviews if r.Author == author]
        if not stored or not stored[-1].SubmittedBy:
            raise Unimplemented(
                f"SubmitAccessReview: Teleport recorded the review of {author!r} without who submitted it: "
                "this Auth does not support reviews submitted for others"
            )
        return access_request_from_proto(reviewed)

    async def access_request(self, request_id: str) -> AccessRequest | None:
        """One request by id (ListAccessRequests with the id filter, or GetAccessRequestsV2 on older servers), or
        None when Teleport no longer has it (or the plugin may not see it).

        Raises AccessDenied, TransientError as the client does; ConversionError for a request that cannot be read."""
        if not request_id:
            return None
        found = await self._client.list_access_requests(types_pb2.AccessRequestFilter(ID=request_id), page_size=1)
        matching = [r for r in found if r.Metadata.Name == request_id]
        return access_request_from_proto(matching[0]) if matching else None

    async def find_users_by_trait(self, trait: str, value: str) -> list[str]:
        """The users whose trait `trait` holds `value`, in name order (bot users included: callers that bind one
        person to one user should refuse several).

        Raises AccessDenied without `user: list, read`; PermanentError when the server repeats a page token."""
        if not trait or not value:
            raise ValueError("a trait lookup needs a trait name and a value")
        matcher = wrappers_pb2.LabelValues()
        matcher.Values[trait].Values.append(value)
        token, seen, names = "", set[str](), set[str]()
        while True:
            request = users_service_pb2.ListUsersRequest(
                page_size=USERS_PAGE_SIZE, page_token=token, filter=types_pb2.UserFilter(Traits=matcher)
            )
            page = await self._users_page(request)
            for user in page.users:
                if value in user.Spec.Traits.Values[trait].Values:  # never trust the server's filter
                    names.add(user.Metadata.Name)
            token = page.next_page_token
            if not token:
                return sorted(names)
            if token in seen:
                raise PermanentError(f"ListUsers: the server repeated page token {token!r}")
            seen.add(token)

    async def _users_page(self, request: users_service_pb2.ListUsersRequest) -> users_service_pb2.ListUsersResponse:
        return await self._client.unary(
            "ListUsers", lambda ch: ch.users.ListUsers(request, timeout=self._client.timeout)
        )
