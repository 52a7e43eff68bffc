"""The Mattermost ports of review (`ChatUsers`, `DialogOpener`, `SigningKeySource`) over two JSON calls.

The review package may not import `sidecar.mattermost`; the Mattermost client only needs to offer `get_json` and
`post_json` (`MattermostJson`), with its usual rate limiting, retries and status → error mapping. The JSON shapes
are read here:

* `GET /api/v4/users/{user_id}`: `id`, `username`, `email` (may be blank or missing when the server hides
  addresses), `email_verified`, `auth_service` ("" for password accounts), `is_bot`, `delete_at` (0 when active);
* `GET /api/v4/config/client?format=old`: `AsymmetricSigningPublicKey` (no authentication needed; `format=old`
  is required by older servers);
* `POST /api/v4/actions/dialogs/open` with `{trigger_id, url, dialog}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Protocol

from sidecar.domain.errors import MalformedResponse
from sidecar.review.ports import ChatUser

__all__ = ["MattermostJson", "MattermostReviewApi", "chat_user_from_json", "signing_key_from_config"]

USER: Final = "/api/v4/users/{user_id}"
CLIENT_CONFIG: Final = "/api/v4/config/client"
OPEN_DIALOG: Final = "/api/v4/actions/dialogs/open"


class MattermostJson(Protocol):
    """Two calls of the Mattermost client: a templated path, its arguments escaped by the client."""

    async def get_json(self, template: str, *, query: Mapping[str, str] | None = None, **path_args: str) -> object:
        """GET and return the decoded JSON; raises the client's errors (NotFound, TransientError, ...)."""
        ...

    async def post_json(self, template: str, body: object, **path_args: str) -> object:
        """POST a JSON body and return the decoded JSON answer (None for an empty one)."""
        ...


def chat_user_from_json(data: object) -> ChatUser:
    """A `User` object as the pipeline needs it; raises MalformedResponse without `id` and `username`."""
    if not isinstance(data, Mapping):
        raise MalformedResponse("GET /api/v4/users/{user_id}: the answer is not a user object")
    user_id, username = data.get("id"), data.get("username")
    if not isinstance(user_id, str) or not user_id or not isinstance(username, str):
        raise MalformedResponse("GET /api/v4/users/{user_id}: the user has no id or username")
    delete_at = data.get("delete_at", 0)
    return ChatUser(
        id=user_id,
        username=username,
        email=_text(data, "email"),
        email_verified=data.get("email_verified") is True,
        auth_service=_text(data, "auth_service"),
        is_bot=data.get("is_bot") is True,
        # Anything but a plain 0 counts as deactivated: fail closed on a value we do not understand.
        deleted=not (isinstance(delete_at, int) and not isinstance(delete_at, bool) and delete_at == 0),
    )


def signing_key_from_config(data: object) -> str:
    """`AsymmetricSigningPublicKey` from the client config, or "" when the server publishes none."""
    if not isinstance(data, Mapping):
        raise MalformedResponse("GET /api/v4/config/client: the answer is not an object")
    return _text(data, "AsymmetricSigningPublicKey")


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    return value if isinstance(value, str) else ""


class MattermostReviewApi:
    """`ChatUsers`, `DialogOpener` and `SigningKeySource` over the Mattermost client's JSON calls."""

    def __init__(self, api: MattermostJson) -> None:
        self._api = api

    async def chat_user(self, user_id: str) -> ChatUser:
        """The user with this id (NotFound when there is none)."""
        return chat_user_from_json(await self._api.get_json(USER, user_id=user_id))

    async def signing_public_key(self) -> str:
        """The published trigger-signing key, or ""."""
        return signing_key_from_config(await self._api.get_json(CLIENT_CONFIG, query={"format": "old"}))

    async def open_dialog(self, trigger_id: str, url: str, dialog: Mapping[str, Any]) -> None:
        """Open the dialog for the trigger's user."""
        await self._api.post_json(OPEN_DIALOG, {"trigger_id": trigger_id, "url": url, "dialog": dict(dialog)})
