"""Response payloads: the real server's JSON shapes (which keys, which are omitted when empty, what is sanitised)."""

from __future__ import annotations

import copy
import json
from typing import Any

from fakes.mattermost import attachments, posts
from fakes.mattermost.config import ServerConfig
from fakes.mattermost.records import (
    AccessToken,
    Bot,
    Channel,
    ChannelMember,
    Post,
    PostPage,
    Team,
    TeamMember,
    User,
)
from fakes.mattermost.state import State


def encode(value: Any, *, newline: bool = True) -> bytes:
    """Go `json.Encoder` output: compact, `<`, `>`, `&` escaped, trailing newline (`json.Marshal` has none)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )
    return (text + "\n" if newline else text).encode("utf-8")


def user_json(user: User, viewer: User, config: ServerConfig | None = None) -> dict[str, Any]:
    """User as `GET /users/...` returns it to `viewer`, in the Go struct's key order.

    Yourself: everything (`Sanitize({})`). Someone else (`SanitizeProfile`): `email_verified` and
    `last_password_update` are cleared for every viewer, even an admin; a non-admin also loses
    `notify_props`, sees `auth_service` and `auth_data` as "", and the email and names only when
    `ShowEmailAddress` / `ShowFullName` allow.
    """
    settings = config if config is not None else ServerConfig()
    own = viewer.id == user.id
    admin = viewer.is_admin and not own
    other = not own and not admin
    out: dict[str, Any] = {
        "id": user.id,
        "create_at": user.create_at,
        "update_at": user.update_at,
        "delete_at": user.delete_at,
        "username": user.username,
    }
    if other:
        out["auth_data"] = ""  # the sanitiser sets the pointer to "", so the key shows up empty
    elif user.auth_data:
        out["auth_data"] = user.auth_data
    out["auth_service"] = "" if other else user.auth_service
    out["email"] = "" if other and not settings.show_email_address else user.email
    if own and user.email_verified:
        out["email_verified"] = True
    names_hidden = other and not settings.show_full_name
    out.update(
        {
            "nickname": user.nickname,
            "first_name": "" if names_hidden else user.first_name,
            "last_name": "" if names_hidden else user.last_name,
            "position": user.position,
            "roles": user.roles,
        }
    )
    if user.props:
        out["props"] = dict(user.props)
    if not other and user.notify_props:
        out["notify_props"] = dict(user.notify_props)
    if own and user.last_password_update:
        out["last_password_update"] = user.last_password_update
    out["locale"] = user.locale
    # Strings, as the server sends them (the spec's boolean useAutomaticTimezone is wrong).
    out["timezone"] = {"automaticTimezone": "", "manualTimezone": "", "useAutomaticTimezone": "true"}
    if user.is_bot:
        out["is_bot"] = True
        if user.bot_description:
            out["bot_description"] = user.bot_description
    out["disable_welcome_email"] = False
    return out


def bot_json(bot: Bot) -> dict[str, Any]:
    """Bot record."""
    out: dict[str, Any] = {"user_id": bot.user_id, "username": bot.username}
    if bot.display_name:
        out["display_name"] = bot.display_name
    if bot.description:
        out["description"] = bot.description
    out.update({"owner_id": bot.owner_id, "create_at": bot.create_at, "update_at": bot.update_at, "delete_at": 0})
    return out


def token_json(token: AccessToken) -> dict[str, Any]:
    """UserAccessToken as the create call returns it (with the secret)."""
    return {
        "id": token.id,
        "token": token.token,
        "user_id": token.user_id,
        "description": token.description,
        "is_active": token.is_active,
    }


def team_json(team: Team, viewer: User) -> dict[str, Any]:
    """Team; email and invite id blanked unless the viewer manages the team."""
    manager = viewer.is_admin
    return {
        "id": team.id,
        "create_at": team.create_at,
        "update_at": team.update_at,
        "delete_at": 0,
        "display_name": team.display_name,
        "name": team.name,
        "description": team.description,
        "email": team.email if manager else "",
        "type": team.type,
        "company_name": "",
        "allowed_domains": "",
        "invite_id": team.invite_id if manager else "",
        "allow_open_invite": team.allow_open_invite,
        "scheme_id": None,
        "group_constrained": None,
        # policy_id (null without a retention policy) is left out: the spec types it as a plain string.
        "cloud_limits_archived": False,
    }


def channel_json(channel: Channel) -> dict[str, Any]:
    """Channel."""
    return {
        "id": channel.id,
        "create_at": channel.create_at,
        "update_at": channel.update_at,
        "delete_at": 0,
        "team_id": channel.team_id,
        "type": channel.type,
        "display_name": channel.display_name,
        "name": channel.name,
        "header": channel.header,
        "purpose": channel.purpose,
        "last_post_at": channel.last_post_at,
        "total_msg_count": channel.total_msg_count,
        "extra_update_at": 0,
        "creator_id": channel.creator_id,
        "scheme_id": None,
        "props": None,
        "group_constrained": None,
        "shared": None,
        "total_msg_count_root": channel.total_msg_count_root,
        "policy_id": None,
        "last_root_post_at": channel.last_root_post_at,
    }


def channel_member_json(member: ChannelMember) -> dict[str, Any]:
    """ChannelMember."""
    return {
        "channel_id": member.channel_id,
        "user_id": member.user_id,
        "roles": "channel_user",
        "last_viewed_at": member.last_viewed_at,
        "msg_count": 0,
        "mention_count": 0,
        "mention_count_root": 0,
        "urgent_mention_count": 0,
        "msg_count_root": 0,
        "notify_props": {
            "desktop": "default",
            "email": "default",
            "ignore_channel_mentions": "default",
            "mark_unread": "all",
            "push": "default",
        },
        "last_update_at": member.last_update_at,
        "scheme_guest": False,
        "scheme_user": True,
        "scheme_admin": False,
        "explicit_roles": "",
    }


def team_member_json(member: TeamMember) -> dict[str, Any]:
    """TeamMember."""
    return {
        "team_id": member.team_id,
        "user_id": member.user_id,
        "roles": "team_user",
        "delete_at": 0,
        "scheme_guest": False,
        "scheme_user": True,
        "scheme_admin": False,
        "explicit_roles": "",
    }


def post_json(
    post: Post, state: State, pending_post_id: str = "", *, strip_integrations: bool = True
) -> dict[str, Any]:
    """Post as clients receive it: props never null, integrations stripped, metadata `{}`."""
    root = post.root_id or post.id
    reply_count, last_reply_at = posts.thread_stats(state, root)
    props = attachments.stripped(post.props) if strip_integrations else copy.deepcopy(post.props)
    return {
        "id": post.id,
        "create_at": post.create_at,
        "update_at": post.update_at,
        "edit_at": post.edit_at,
        "delete_at": post.delete_at,
        "is_pinned": post.is_pinned,
        "user_id": post.user_id,
        "channel_id": post.channel_id,
        "root_id": post.root_id,
        "original_id": "",
        "message": post.message,
        "type": post.type,
        "props": props,
        "hashtags": post.hashtags,
        "file_ids": list(post.file_ids),
        "pending_post_id": pending_post_id,
        **({"has_reactions": True} if post.has_reactions else {}),
        "reply_count": reply_count,
        "last_reply_at": last_reply_at,
        "participants": None,
        "metadata": {},
    }


def post_list_json(page: PostPage, state: State) -> dict[str, Any]:
    """PostList: `order` newest first, `posts` keyed by id (never null)."""
    out: dict[str, Any] = {
        "order": [p.id for p in page.posts],
        "posts": {p.id: post_json(p, state) for p in page.posts},
        "next_post_id": page.next_post_id,
        "prev_post_id": page.prev_post_id,
    }
    if page.has_next is not None:
        out["has_next"] = page.has_next
    out["first_inaccessible_post_time"] = 0
    return out


def ping_json() -> dict[str, Any]:
    """`GET /system/ping` body (a Go map: keys sorted)."""
    return {
        "ActiveSearchBackend": "database",
        "AndroidLatestVersion": "",
        "AndroidMinVersion": "",
        "IosLatestVersion": "",
        "IosMinVersion": "",
        "status": "OK",
    }
