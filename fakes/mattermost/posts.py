"""Posts: create (with validation and deduplication), read, update, patch, threads, pages, ephemeral posts.

Functions take the `State` and the caller and raise `ApiError` where the real server does.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
from collections.abc import Callable
from typing import Any

from fakes.mattermost import attachments, channels, errors, gojson
from fakes.mattermost.records import Channel, EphemeralPost, Post, PostEvent, PostPage, User
from fakes.mattermost.state import State

#: `PendingPostIDsCacheTTL` of the real server.
PENDING_POST_TTL_SECONDS = 30.0
#: `PostFileidsMaxRunes`: the JSON-encoded list of file ids.
POST_FILE_IDS_MAX_RUNES = 300
#: `PostPropsMaxRunes`.
POST_PROPS_MAX_RUNES = 800_000
_HASHTAG = re.compile(r"(?:^|\s)(#[A-Za-z][A-Za-z0-9_\-.]*[A-Za-z0-9])")


def create_post(state: State, caller: User, body: dict[str, Any]) -> tuple[Post, str]:
    """`POST /posts`: returns the post and the pending id to echo (\"\" when deduplicated)."""
    channel_id = body.get("channel_id", "")
    channel = state.channels.get(channel_id) if isinstance(channel_id, str) else None
    if channel is None or not (caller.is_admin or channels.is_channel_member(state, caller.id, channel.id)):
        # The permission check runs before the channel lookup: unknown channels are 403 too.
        raise errors.forbidden(caller.id, "create_post")
    pending = body.get("pending_post_id", "")
    if not isinstance(pending, str):
        raise errors.invalid_body_param("post")
    now_s = state.clock.now()
    if pending:
        _expire_pending(state, now_s)
        seen = state.pending_posts.get(pending)
        if seen is not None:
            earlier = state.posts.get(seen[0])
            if earlier is not None and channels.can_read_channel(state, caller, state.channels[earlier.channel_id]):
                return earlier, ""
    message, root_id, post_type, props, file_ids = _post_fields(body)
    _validate_message(state, message, props)
    if post_type.startswith("system_"):
        raise errors.invalid_param("post.type")
    if root_id:
        root = state.posts.get(root_id)
        if root is None or root.root_id != "" or root.delete_at != 0:
            raise errors.root_id_invalid()
        if root.channel_id != channel.id:
            raise errors.channel_root_id_invalid()
    if caller.is_bot:
        props["from_bot"] = "true"
    props = stored_props(props, state.new_id)
    _validate_file_ids(file_ids)
    now = state.now()
    # Only a system admin may back-date a post (e.g. imports); everyone else gets "now".
    requested = body.get("create_at")
    if caller.is_admin and type(requested) is int and requested > 0:
        now = requested
    post = Post(
        id=state.new_id(),
        seq=state.next_seq(),
        create_at=now,
        update_at=now,
        user_id=caller.id,
        channel_id=channel.id,
        root_id=root_id,
        message=message,
        type=post_type,
        props=props,
        file_ids=file_ids,
        hashtags=_hashtags(message),
    )
    state.posts[post.id] = post
    state.history[post.id] = [PostEvent("create", now, caller.id, message, copy.deepcopy(props))]
    state.channel_posts.setdefault(channel.id, []).append(post)
    if root_id:
        state.threads.setdefault(root_id, []).append(post)
        state.reply_count += 1
    channel.last_post_at = now
    channel.total_msg_count += 1
    if not root_id:
        channel.last_root_post_at = now
        channel.total_msg_count_root += 1
    if pending:
        # Re-inserted, not overwritten: the dict stays ordered by expiry (an overwrite keeps the old place).
        state.pending_posts.pop(pending, None)
        state.pending_posts[pending] = (post.id, now_s + PENDING_POST_TTL_SECONDS)
    return post, pending


def _expire_pending(state: State, now_s: float) -> None:
    # Every entry lives the same TTL and is inserted at the end, so the oldest expiries come first: drop from the
    # front until one is still alive, instead of scanning every pending id on every create.
    pending = state.pending_posts
    while pending:
        key, (_, until) = next(iter(pending.items()))
        if until > now_s:
            break
        del pending[key]


def _validate_file_ids(file_ids: list[str] | None) -> None:
    if file_ids is not None and len(json.dumps(file_ids)) > POST_FILE_IDS_MAX_RUNES:
        raise errors.ApiError(400, "model.post.is_valid.file_ids.app_error", "Invalid file ids.")


def _validate_message(state: State, message: str, props: dict[str, Any]) -> None:
    if len(message) > state.config.max_post_length:
        raise errors.message_too_long()
    if len(json.dumps(props, ensure_ascii=False)) > POST_PROPS_MAX_RUNES:
        raise errors.props_too_long()


def readable_post(state: State, caller: User, post_id: str) -> tuple[Post, Channel]:
    """The post (404 when unknown) and its channel, if the caller may read it (else 403)."""
    post = state.posts.get(post_id)
    if post is None or post.delete_at != 0:
        raise errors.post_not_found()
    channel = state.channels[post.channel_id]
    if not channels.can_read_channel(state, caller, channel):
        raise errors.forbidden(caller.id, "read_channel")
    return post, channel


def thread_stats(state: State, root_id: str) -> tuple[int, int]:
    """(reply count, last reply time) of a thread."""
    replies = [p for p in state.threads.get(root_id, ()) if p.delete_at == 0]
    return len(replies), max((p.create_at for p in replies), default=0)


def add_ephemeral(
    state: State,
    user_id: str,
    channel_id: str,
    root_id: str,
    message: str,
    props: dict[str, Any] | None = None,
    post_id: str = "",
) -> EphemeralPost:
    """Record an ephemeral post (`SendEphemeralPost`) shown only to `user_id`."""
    record = EphemeralPost(
        state.new_id(), user_id, channel_id, root_id, message, state.now(), props=dict(props or {}), post_id=post_id
    )
    state.ephemeral.append(record)
    return record


def _editable_post(state: State, caller: User, post_id: str) -> Post:
    post = state.posts.get(post_id)
    if post is None or post.delete_at != 0:
        raise errors.forbidden(caller.id, "edit_post")
    channel = state.channels[post.channel_id]
    if not (caller.is_admin or channels.is_channel_member(state, caller.id, channel.id)):
        raise errors.forbidden(caller.id, "edit_post")
    if post.user_id != caller.id and not caller.is_admin:
        raise errors.forbidden(caller.id, "edit_others_posts")
    return post


def update_post(state: State, caller: User, post_id: str, body: dict[str, Any]) -> Post:
    """`PUT /posts/{id}`: the body is the whole post; omitted fields become empty."""
    if body.get("id") != post_id:
        raise errors.invalid_body_param("id")
    post = _editable_post(state, caller, post_id)
    message = body.get("message", "")
    props = body.get("props")
    if not isinstance(message, str) or not (props is None or isinstance(props, dict)):
        raise errors.invalid_body_param("post")
    new_props = dict(props or {})
    file_ids = body.get("file_ids")
    is_pinned = body.get("is_pinned", False)
    has_reactions = body.get("has_reactions", False)
    if not isinstance(is_pinned, bool) or not isinstance(has_reactions, bool):
        raise errors.invalid_body_param("post")
    if file_ids is not None and not _is_str_list(file_ids):
        raise errors.invalid_body_param("post")
    _apply_edit(state, caller, post, "update", message, new_props, file_ids)
    post.is_pinned = is_pinned
    post.has_reactions = has_reactions
    return post


def patch_post(state: State, caller: User, post_id: str, body: dict[str, Any]) -> Post:
    """`PUT /posts/{id}/patch`: only the given fields change."""
    post = _editable_post(state, caller, post_id)
    message = body.get("message")
    props = body.get("props")
    file_ids = body.get("file_ids")
    if message is not None and not isinstance(message, str):
        raise errors.invalid_body_param("patch")
    if props is not None and not isinstance(props, dict):
        raise errors.invalid_body_param("patch")
    if file_ids is not None and not _is_str_list(file_ids):
        raise errors.invalid_body_param("patch")
    for flag in ("is_pinned", "has_reactions"):
        if body.get(flag) is not None and not isinstance(body.get(flag), bool):
            raise errors.invalid_body_param("patch")
    new_message = post.message if message is None else message
    new_props = copy.deepcopy(post.props) if props is None else dict(props)
    _apply_edit(state, caller, post, "patch", new_message, new_props, file_ids)
    if body.get("is_pinned") is not None:
        post.is_pinned = bool(body["is_pinned"])
    if body.get("has_reactions") is not None:
        post.has_reactions = bool(body["has_reactions"])
    return post


#: `PostActionRetainPropKeys`: props an integration's update cannot change or add.
RETAINED_PROPS = ("from_webhook", "override_username", "override_icon_url")


def apply_action_update(state: State, caller: User, post: Post, update: dict[str, Any]) -> None:
    """An integration's `update` (already type-checked): the message as given ("" when absent), props kept
    when null, else replaced with the retained props carried over and absent ones removed; pinned and
    reactions kept; no edit time limit (the server calls UpdatePost directly)."""
    message = update.get("message") or ""
    props = update.get("props")
    if props is None:
        new_props = copy.deepcopy(post.props)
    else:
        new_props = copy.deepcopy(props)
        for key in RETAINED_PROPS:
            if key in post.props:
                new_props[key] = post.props[key]
            else:
                new_props.pop(key, None)
    file_ids = update.get("file_ids")
    _apply_edit(state, caller, post, "action", message, new_props, list(file_ids or []))


def _apply_edit(
    state: State, caller: User, post: Post, kind: str, message: str, props: dict[str, Any], file_ids: list[str] | None
) -> None:
    _validate_message(state, message, props)
    _validate_file_ids(file_ids)
    now = state.now()
    limit = state.config.post_edit_time_limit
    timed = kind != "action" and not caller.is_admin
    if timed and message != post.message and limit >= 0 and now - post.create_at > limit * 1000:
        raise errors.edit_time_limit()
    props = stored_props(props, state.new_id)
    changed = (
        message != post.message
        or (file_ids is not None and file_ids != post.file_ids)
        or not attachments.attachments_equal(post.props, props)
    )
    post.message = message
    post.props = props
    post.hashtags = _hashtags(message)
    if file_ids is not None:
        post.file_ids = list(file_ids)
    if changed:
        post.edit_at = now
    post.update_at = now
    state.history[post.id].append(PostEvent(kind, now, caller.id, message, copy.deepcopy(props)))
    state.edit_count += 1


def thread(state: State, caller: User, post_id: str, per_page: int, from_create_at: int, direction: str) -> PostPage:
    """`GET /posts/{id}/thread`: root and every reply, whatever post of the thread is named."""
    post, _ = readable_post(state, caller, post_id)
    root_id = post.root_id or post.id
    members = [p for p in (state.posts[root_id], *state.threads.get(root_id, ())) if p.delete_at == 0]
    members.sort(key=lambda p: p.seq, reverse=True)
    if per_page <= 0:
        return PostPage(members)
    if direction == "up":
        older = [p for p in members if from_create_at == 0 or p.create_at < from_create_at]
        chosen = older[:per_page]
        has_next = len(older) > per_page
    else:
        newer = sorted(
            (p for p in members if p.create_at > from_create_at or from_create_at == 0), key=lambda p: p.seq
        )
        chosen = sorted(newer[:per_page], key=lambda p: p.seq, reverse=True)
        has_next = len(newer) > per_page
    root = state.posts[root_id]
    if root not in chosen:
        chosen.append(root)
    return PostPage(chosen, has_next=has_next)


def channel_posts(
    state: State, caller: User, channel_id: str, page: int, per_page: int, since: int, before: str, after: str
) -> PostPage:
    """`GET /channels/{id}/posts`: newest first, by page, or everything changed after `since`."""
    channel = state.channels.get(channel_id)
    if channel is None or not channels.can_read_channel(state, caller, channel):
        raise errors.forbidden(caller.id, "read_channel")
    newest_first = (p for p in reversed(state.channel_posts.get(channel.id, ())) if p.delete_at == 0)
    if since > 0:
        # Stops at the 1000th match instead of filtering every post of the channel (the real server's query
        # uses an index the same way).
        return PostPage(list(itertools.islice((p for p in newest_first if p.update_at > since), 1000)))
    posts = list(newest_first)
    window = posts
    if before or after:
        anchor_id = before or after
        index = next((i for i, p in enumerate(posts) if p.id == anchor_id), None)
        if index is None:
            return PostPage([])
        window = posts[index + 1 :] if before else list(reversed(posts[:index]))
    start = page * per_page
    chosen = window[start : start + per_page]
    if after and not before:
        # `window` runs oldest to newest here; the page is still answered newest first.
        newer_beyond = window[start + per_page] if len(window) > start + per_page else None
        oldest = chosen[0] if chosen else None
        before_page = window[start - 1] if start > 0 else (posts[index] if index is not None else None)
        return PostPage(
            list(reversed(chosen)),
            next_post_id=newer_beyond.id if newer_beyond else "",
            prev_post_id=before_page.id if before_page and oldest else "",
            has_next=newer_beyond is not None,
        )
    return _page(posts, chosen)


def _page(all_posts: list[Post], chosen: list[Post]) -> PostPage:
    if not chosen:
        return PostPage([], has_next=False)
    first = all_posts.index(chosen[0])
    last = all_posts.index(chosen[-1])
    newer = all_posts[first - 1].id if first > 0 else ""
    older = all_posts[last + 1].id if last + 1 < len(all_posts) else ""
    return PostPage(chosen, next_post_id=newer, prev_post_id=older, has_next=older != "")


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _post_fields(body: dict[str, Any]) -> tuple[str, str, str, dict[str, Any], list[str]]:
    message = body.get("message", "")
    root_id = body.get("root_id", "")
    post_type = body.get("type", "")
    props = body.get("props")
    file_ids = body.get("file_ids")
    if message is None:
        message = ""
    if root_id is None:
        root_id = ""
    if post_type is None:
        post_type = ""
    if not isinstance(message, str) or not isinstance(root_id, str) or not isinstance(post_type, str):
        raise errors.invalid_body_param("post")
    if props is not None and not isinstance(props, dict):
        raise errors.invalid_body_param("post")
    if file_ids is not None and not _is_str_list(file_ids):
        raise errors.invalid_body_param("post")
    return message, root_id, post_type, copy.deepcopy(props or {}), list(file_ids or [])


def stored_props(props: dict[str, Any], new_id: Callable[[], str]) -> dict[str, Any]:
    """Props as the server stores them: a Go `map[string]any` round trip, then `GenerateActionIds`."""
    normalized: dict[str, Any] = gojson.normalize(props)
    attachments.retype(normalized, new_id)
    return normalized


def _hashtags(message: str) -> str:
    return " ".join(dict.fromkeys(m.group(1) for m in _HASHTAG.finditer(message)))
