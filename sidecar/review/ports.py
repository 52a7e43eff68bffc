"""The narrow protocols in-chat review needs from Teleport, Mattermost and the plugin data.

The review package may not import the adapters (`sidecar.teleport`, `sidecar.mattermost`): `sidecar/app.py`
passes objects that satisfy these protocols, and mypy checks the fit there. Every method raises only the
classes of `sidecar/domain/errors.py` (AccessDenied, NotFound, TransientError, ...), never grpc or aiohttp
exceptions; the click pipeline turns each of them into a text for the clicker.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sidecar.domain.model import AccessRequest, PostRef, RequestState

__all__ = [
    "ChatUser",
    "ChatUsers",
    "DialogOpener",
    "RequestLookup",
    "RequestPosts",
    "ReviewPermissions",
    "ReviewSubmitter",
    "SigningKeySource",
    "SubmitForUsers",
    "UserDirectory",
]


# --- Mattermost ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChatUser:
    """The Mattermost user who clicked, as `GET /api/v4/users/{id}` shows them to the bot.

    `deleted` is `delete_at != 0` (deactivated); `auth_service` is "" for password accounts and names the SSO
    or LDAP service otherwise; `email` may be "" when the server hides addresses from the bot.
    """

    id: str
    username: str
    email: str = ""
    email_verified: bool = False
    auth_service: str = ""
    is_bot: bool = False
    deleted: bool = False


class ChatUsers(Protocol):
    """Loads Mattermost users by id."""

    async def chat_user(self, user_id: str) -> ChatUser:
        """The user with this id. Raises NotFound for an unknown id, TransientError when Mattermost cannot answer."""
        ...


class DialogOpener(Protocol):
    """Opens an interactive dialog (`POST /api/v4/actions/dialogs/open`) for the user named in the trigger id."""

    async def open_dialog(self, trigger_id: str, url: str, dialog: Mapping[str, Any]) -> None:
        """Open `dialog`, whose submission Mattermost POSTs to `url`. Raises Rejected when the trigger id is expired
        or invalid (Mattermost answers 400), TransientError when Mattermost cannot answer."""
        ...


class SigningKeySource(Protocol):
    """Mattermost's public trigger-signing key (`GET /api/v4/config/client?format=old`, no authentication)."""

    async def signing_public_key(self) -> str:
        """`AsymmetricSigningPublicKey`: base64 of the DER SubjectPublicKeyInfo, or "" when the server publishes none.

        Raises TransientError when Mattermost cannot answer.
        """
        ...


# --- plugin data ---------------------------------------------------------------------------------


class RequestPosts(Protocol):
    """The root posts the sidecar made for a request (the `messages` of its plugin data)."""

    async def posts_of(self, request_id: str) -> Collection[PostRef]:
        """Every (channel id, post id) stored for the request; empty when nothing is stored."""
        ...


# --- Teleport ------------------------------------------------------------------------------------


class RequestLookup(Protocol):
    """Reads one access request by id (ListAccessRequests or GetAccessRequestsV2 with the id filter).

    The pipeline reads `user` (the requester), `state` and `long_term` (`spec.request_kind == LONG_TERM`).
    """

    async def access_request(self, request_id: str) -> AccessRequest | None:
        """The request, or None when Teleport no longer has it (resolved and expired, or deleted).

        Raises AccessDenied when the plugin may not read access requests, TransientError when Teleport cannot answer.
        """
        ...


class UserDirectory(Protocol):
    """Finds Teleport users for the trait binding (the email binding uses `sidecar.domain.ports.TraitsLookup`)."""

    async def find_users_by_trait(self, trait: str, value: str) -> Sequence[str]:
        """The names of the users whose trait holds `value` (ListUsers with `filter.traits`, all pages).

        An Auth without the trait filter returns every user: the binder confirms each name with GetUser. Raises
        AccessDenied without `user: list, read`, TransientError when Teleport cannot answer.
        """
        ...


class ReviewSubmitter(Protocol):
    """Submits a review as another user (SubmitAccessReview with `submitted_on_behalf_of_author`, never SubmittedBy)."""

    async def submit_review_on_behalf(self, request_id: str, author: str, state: RequestState, reason: str) -> object:
        """Submit `author`'s review (`state` is APPROVED or DENIED). The return value is not used.

        Raises the error Auth answers with: AccessDenied (not allowed, self-review, already resolved, admin-action
        MFA, or an Auth without review on behalf), AlreadyExists (the author already reviewed), NotFound (the
        request is gone), Rejected, Unimplemented (an Auth too old for the RPC or the field), TransientError.
        """
        ...


@dataclass(frozen=True)
class SubmitForUsers:
    """`review_requests.submit_for_users` over every role of the plugin's identity, for `check`."""

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()


class ReviewPermissions(Protocol):
    """What the plugin's own roles allow, for `teleport-mattermost check`."""

    async def submit_for_users(self) -> SubmitForUsers:
        """The union of `allow` and `deny` `review_requests.submit_for_users` of the identity's roles.

        Raises AccessDenied when the plugin may not read its roles.
        """
        ...
