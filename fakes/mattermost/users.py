"""Users, bots, access tokens and sessions: lookups, inserts, and the `/users` and `/bots` operations.

Functions take the `State` and (for API operations) the caller, and raise `ApiError` where the real
server does.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from fakes.mattermost import errors
from fakes.mattermost.ids import is_valid_id, random_id
from fakes.mattermost.records import AccessToken, Bot, Session, User

if TYPE_CHECKING:  # state.py imports this module to load the seed
    from fakes.mattermost.state import State

_USERNAME = re.compile(r"^[a-z0-9.\-_]{1,64}$")
_EMAIL = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+$|^[^@\s<>\"]+@[^@\s<>\".]+$")
_RESERVED = frozenset({"all", "channel", "matterbot", "system"})


# ---------------------------------------------------------------------- lookups


def session_for(state: State, token: str) -> Session | None:
    """The session of an active token of an active user, or None (deactivating a user ends their sessions)."""
    record = state.tokens.get(token)
    if record is None or not record.is_active:
        return None
    user = state.users.get(record.user_id)
    if user is None or not user.is_active:
        return None
    return Session(user, record)


def user_by_username(state: State, username: str) -> User | None:
    """User by exact username."""
    return next((u for u in state.users.values() if u.username == username), None)


def user_by_email(state: State, email: str) -> User | None:
    """User by email (stored lower-case)."""
    return next((u for u in state.users.values() if u.email == email), None)


# ---------------------------------------------------------------------- inserts (no permission checks)


def add_user(state: State, username: str, email: str, first: str, last: str, roles: str) -> User:
    """Store a new human user (callers validate and check permissions)."""
    now = state.now()
    user = User(
        id=state.new_id(),
        username=username,
        email=email,
        first_name=first,
        last_name=last,
        roles=roles,
        create_at=now,
        update_at=now,
        last_password_update=now,
        notify_props=_default_user_notify_props(),
    )
    state.users[user.id] = user
    return user


def add_bot(state: State, username: str, display_name: str, description: str, owner_id: str) -> User:
    """Create a bot and its user (no permission checks: callers check)."""
    now = state.now()
    user = User(
        id=state.new_id(),
        username=username,
        email=f"{username}@localhost",
        first_name=display_name,
        last_name="",
        roles="system_user",
        create_at=now,
        update_at=now,
        is_bot=True,
        bot_description=description,
        notify_props=_default_user_notify_props(),
        email_verified=False,
    )
    state.users[user.id] = user
    state.bots[user.id] = Bot(user.id, username, display_name, description, owner_id, now, now)
    return user


def add_token(state: State, user_id: str, token: str, description: str) -> AccessToken:
    """Store an access token for a user."""
    record = AccessToken(state.new_id(), token, user_id, description)
    state.tokens[token] = record
    return record


def session_token(state: State, user_id: str) -> str:
    """A token that opens a session for the user: an existing active one, else a new one (test face only).

    New tokens take random ids so minting one does not shift the deterministic ids of later posts.
    """
    existing = next((t.token for t in state.tokens.values() if t.user_id == user_id and t.is_active), None)
    if existing is not None:
        return existing
    record = AccessToken(random_id(), random_id(), user_id, "fake test-face session")
    state.tokens[record.token] = record
    return record.token


# ---------------------------------------------------------------------- API operations


def get_user(state: State, caller: User, user_id: str) -> User:
    """`GET /users/{user_id}` (`me` already resolved)."""
    user = state.users.get(user_id)
    if user is None:
        raise errors.user_not_found()
    return user


def get_user_by_email(state: State, caller: User, raw_email: str) -> User:
    """`GET /users/email/{email}`: lower-cased, validated, then looked up."""
    email = raw_email.strip().lower()
    if not _EMAIL.match(email):
        raise errors.invalid_url_param("email")
    user = user_by_email(state, email)
    if user is None:
        raise errors.user_not_found()
    return user


def get_user_by_username(state: State, caller: User, username: str) -> User:
    """`GET /users/username/{username}`: must be a valid (lower-case) username."""
    if not _USERNAME.match(username):
        raise errors.invalid_url_param("username")
    user = user_by_username(state, username)
    if user is None:
        raise errors.user_not_found()
    return user


def get_users_by_ids(state: State, caller: User, ids: list[str]) -> list[User]:
    """`POST /users/ids`: unknown ids are skipped."""
    if not ids:
        raise errors.invalid_body_param("user_ids")
    for user_id in ids:
        if not is_valid_id(user_id):
            raise errors.invalid_param("user_id")
    seen: set[str] = set()
    out: list[User] = []
    for user_id in ids:
        user = state.users.get(user_id)
        if user is not None and user_id not in seen:
            seen.add(user_id)
            out.append(user)
    return out


def create_user(state: State, caller: User | None, body: dict[str, Any]) -> User:
    """`POST /users`: administrators always; others only on an open server."""
    if not state.config.enable_open_server and (caller is None or not caller.is_admin):
        raise errors.no_open_server()
    username = body.get("username")
    email = body.get("email")
    if not isinstance(username, str) or not _USERNAME.match(username) or username in _RESERVED:
        raise errors.user_invalid("username")
    if not isinstance(email, str) or not _EMAIL.match(email.lower()) or len(email) > 128:
        raise errors.user_invalid("email")
    password = body.get("password", "")
    auth_service = body.get("auth_service", "")
    if not isinstance(password, str) or not isinstance(auth_service, str):
        raise errors.invalid_body_param("user")
    if auth_service == "" and len(password) < 8:
        raise errors.ApiError(
            400, "model.user.is_valid.pwd_length.app_error", "Your password must contain at least 8 characters."
        )
    if user_by_username(state, username) is not None:
        raise errors.username_exists()
    if user_by_email(state, email.lower()) is not None:
        raise errors.email_exists()
    first = body.get("first_name", "")
    last = body.get("last_name", "")
    nickname = body.get("nickname", "")
    if not all(isinstance(v, str) for v in (first, last, nickname)):
        raise errors.invalid_body_param("user")
    user = add_user(state, username, email.lower(), first, last, "system_user")
    user.nickname = nickname
    props = body.get("props")
    if isinstance(props, dict):
        user.props = {str(k): str(v) for k, v in props.items()}
    return user


def create_bot(state: State, caller: User, body: dict[str, Any]) -> Bot:
    """`POST /bots`: bots may not create bots; humans need `create_bot` (admins)."""
    if caller.is_bot:
        raise errors.forbidden(caller.id, "create_bot")
    if not state.config.enable_bot_account_creation:
        raise errors.bot_creation_disabled()
    if not caller.is_admin:
        raise errors.forbidden(caller.id, "create_bot")
    username = body.get("username")
    display_name = body.get("display_name", "")
    description = body.get("description", "")
    if not isinstance(username, str) or not _USERNAME.match(username) or username in _RESERVED:
        raise errors.ApiError(400, "model.bot.is_valid.username.app_error", "Invalid username.")
    if not isinstance(display_name, str) or len(display_name) > 64:
        raise errors.ApiError(400, "model.bot.is_valid.username.app_error", "Invalid display name.")
    if not isinstance(description, str) or len(description) > 1024:
        raise errors.ApiError(400, "model.bot.is_valid.description.app_error", "Invalid description.")
    if user_by_username(state, username) is not None:
        raise errors.username_exists()
    user = add_bot(state, username, display_name, description, caller.id)
    return state.bots[user.id]


def create_token(state: State, caller: User, user_id: str, body: dict[str, Any]) -> AccessToken:
    """`POST /users/{user_id}/tokens`: returns the token record incl. the secret."""
    description = body.get("description")
    if not isinstance(description, str) or description == "":
        raise errors.invalid_param("description")
    if len(description) > 255:
        raise errors.ApiError(400, "model.user_access_token.is_valid.description.app_error", "Invalid description.")
    # `create_user_access_token` belongs to system admins by default.
    if not caller.is_admin:
        raise errors.forbidden(caller.id, "create_user_access_token")
    target = state.users.get(user_id)
    if target is None:
        raise errors.user_not_found()
    if not target.is_bot and not state.config.enable_user_access_tokens:
        raise errors.access_tokens_disabled()
    return add_token(state, target.id, state.new_id(), description)


def _default_user_notify_props() -> dict[str, str]:
    return {
        "channel": "true",
        "comments": "never",
        "desktop": "mention",
        "desktop_sound": "true",
        "email": "true",
        "first_name": "false",
        "mention_keys": "",
        "push": "mention",
        "push_status": "away",
    }
