"""The Mattermost objects the bot reads, parsed from API JSON into small frozen dataclasses.

Only the fields the sidecar uses are kept. Parsing checks that each required field is present and has
the right type, so a malformed response fails here with a message naming the field, instead of as a
KeyError somewhere in the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sidecar.domain.errors import MalformedResponse


def _require_object(data: object, what: str) -> Mapping[str, object]:
    if not isinstance(data, dict):
        raise MalformedResponse(f"malformed {what} in Mattermost response: expected a JSON object, got {_kind(data)}")
    return data


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}.get(
        type(value), type(value).__name__
    )


def _str(obj: Mapping[str, object], key: str, what: str, *, required: bool = True) -> str:
    """A string field; required ones must be present and non-empty (ids, names)."""
    value = obj.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise MalformedResponse(
            f"malformed {what} in Mattermost response: field {key!r} must be a string, got {_kind(value)}"
        )
    if required and not value:
        raise MalformedResponse(f"malformed {what} in Mattermost response: field {key!r} is empty")
    return value


def _bool(obj: Mapping[str, object], key: str, what: str) -> bool:
    value = obj.get(key, False)
    if not isinstance(value, bool):
        raise MalformedResponse(
            f"malformed {what} in Mattermost response: field {key!r} must be a boolean, got {_kind(value)}"
        )
    return value


@dataclass(frozen=True)
class User:
    """A Mattermost user (the bot itself, or a recipient found by email or username)."""

    id: str
    username: str
    email: str = ""
    is_bot: bool = False

    @classmethod
    def from_json(cls, data: object) -> User:
        """Parse a User object; `id` and `username` are required."""
        obj = _require_object(data, "user")
        return cls(
            id=_str(obj, "id", "user"),
            username=_str(obj, "username", "user"),
            # Privacy settings may blank or omit the email of other users.
            email=_str(obj, "email", "user", required=False),
            is_bot=_bool(obj, "is_bot", "user"),
        )


@dataclass(frozen=True)
class Team:
    """A team, looked up by its URL name."""

    id: str
    name: str
    display_name: str = ""

    @classmethod
    def from_json(cls, data: object) -> Team:
        """Parse a Team object; `id` and `name` are required."""
        obj = _require_object(data, "team")
        return cls(
            id=_str(obj, "id", "team"),
            name=_str(obj, "name", "team"),
            display_name=_str(obj, "display_name", "team", required=False),
        )


@dataclass(frozen=True)
class ChannelInfo:
    """A channel: a team channel (`O`/`P`) or a direct-message channel (`D`)."""

    id: str
    type: str
    name: str
    team_id: str = ""
    display_name: str = ""

    @classmethod
    def from_json(cls, data: object) -> ChannelInfo:
        """Parse a Channel object; `id`, `type` and `name` are required (DM channels have no team)."""
        obj = _require_object(data, "channel")
        return cls(
            id=_str(obj, "id", "channel"),
            type=_str(obj, "type", "channel"),
            name=_str(obj, "name", "channel"),
            team_id=_str(obj, "team_id", "channel", required=False),
            display_name=_str(obj, "display_name", "channel", required=False),
        )


@dataclass(frozen=True)
class ChannelMember:
    """The bot's membership of a channel."""

    channel_id: str
    user_id: str

    @classmethod
    def from_json(cls, data: object) -> ChannelMember:
        """Parse a ChannelMember object; `channel_id` and `user_id` are required."""
        obj = _require_object(data, "channel member")
        return cls(
            channel_id=_str(obj, "channel_id", "channel member"),
            user_id=_str(obj, "user_id", "channel member"),
        )


@dataclass(frozen=True)
class Post:
    """A post as the server returned it; `marker` is the sidecar's own `props` entry, when it has one."""

    id: str
    channel_id: str
    message: str = ""
    root_id: str = ""
    user_id: str = ""
    marker: Mapping[str, object] | None = None

    @classmethod
    def from_json(cls, data: object) -> Post:
        """Parse a Post object; `id` and `channel_id` are required."""
        obj = _require_object(data, "post")
        message = obj.get("message", "")
        if not isinstance(message, str):
            raise MalformedResponse(
                f"malformed post in Mattermost response: field 'message' must be a string, got {_kind(message)}"
            )
        return cls(
            id=_str(obj, "id", "post"),
            channel_id=_str(obj, "channel_id", "post"),
            message=message,
            root_id=_str(obj, "root_id", "post", required=False),
            user_id=_str(obj, "user_id", "post", required=False),
            marker=_marker(obj.get("props")),
        )


#: The `props` key under which the sidecar marks its posts (see sidecar/mattermost/bot.py).
MARKER_PROP = "teleport_mattermost"


def _marker(props: object) -> Mapping[str, object] | None:
    # Props are free-form and other integrations write them too: anything unexpected simply is no marker.
    if not isinstance(props, dict):
        return None
    marker = props.get(MARKER_PROP)
    return marker if isinstance(marker, dict) else None


def parse_post_list(data: object) -> list[Post]:
    """A PostList (`{"order": [ids], "posts": {id: Post}}`) as posts in the server's order."""
    obj = _require_object(data, "post list")
    order, posts = obj.get("order", []), obj.get("posts", {})
    if not isinstance(order, list) or not isinstance(posts, dict):
        raise MalformedResponse("malformed post list in Mattermost response: expected `order` and `posts`")
    return [Post.from_json(posts[post_id]) for post_id in order if isinstance(post_id, str) and post_id in posts]


def parse_list(data: object, what: str) -> list[object]:
    """A JSON array from a response, or MalformedResponse naming what was expected."""
    if not isinstance(data, list):
        raise MalformedResponse(f"malformed {what} in Mattermost response: expected a JSON array, got {_kind(data)}")
    return data
