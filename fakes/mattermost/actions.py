"""A click on a message button: `POST /api/v4/posts/{post_id}/actions/{action_id}` (`doPostAction`,
`DoPostActionWithCookie`).

Order of the real server: the post id must be a valid id (400); with a cookie the cookie must open (400) and its
channel exist (404) and be readable (403), else the post's channel must be readable (403; an unknown post is
403 too, except for admins, who get the 404 of the next step). The action is then taken from the stored post
(404 when the post or the action is missing); the cookie is used only for a post that is not stored, and only
if it was made for that post. The integration gets `PostActionIntegrationRequest` with a freshly signed
trigger id; its answer may `update` the post and send the clicker an `ephemeral_text`; the client gets
`{"status": "OK", "trigger_id": <client trigger id>}`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp

from fakes.mattermost import attachments, channels, cookies, errors, gojson, outbound, posts
from fakes.mattermost.ids import is_valid_id
from fakes.mattermost.outbound import IntegrationCall
from fakes.mattermost.records import Channel, Post, User
from fakes.mattermost.state import State

_RESPONSE_FIELDS = ("update", "ephemeral_text", "skip_slack_parsing")
_UPDATE_STRINGS = ("id", "user_id", "channel_id", "root_id", "original_id", "message", "type", "hashtags")
_UPDATE_BOOLS = ("is_pinned", "has_reactions")


@dataclass(frozen=True)
class _Target:
    """Everything the integration request needs, from the stored post or from a cookie."""

    channel: Channel
    post: Post | None
    action_type: str
    data_source: str
    integration: dict[str, Any]
    root_id: str
    retained: dict[str, Any]


def clicked_options(body: Any) -> tuple[str, str]:
    """(selected_option, cookie) from the request body; the server only logs a body it cannot decode."""
    if not isinstance(body, dict):
        return "", ""
    fields = gojson.struct_fields(body, ("selected_option", "cookie"))
    selected, cookie = fields.get("selected_option"), fields.get("cookie")
    return (selected if isinstance(selected, str) else ""), (cookie if isinstance(cookie, str) else "")


async def do_post_action(
    state: State, http: aiohttp.ClientSession, user: User, post_id: str, action_id: str, body: Any
) -> str:
    """Run one click for `user`; the client trigger id, or the ApiError the server answers."""
    if not is_valid_id(post_id):
        raise errors.invalid_url_param("post_id")
    selected_option, raw_cookie = clicked_options(body)
    cookie = _check_access(state, user, post_id, raw_cookie)
    target = _target(state, post_id, action_id, cookie)
    team = state.teams.get(target.channel.team_id) if target.channel.team_id else None
    context = dict(target.integration.get("context") or {})
    data_source = ""
    if target.action_type == "select" and selected_option:
        data_source = target.data_source
        context["selected_option"] = selected_option
    trigger = state.signer.mint(user.id, state.now())
    request: dict[str, Any] = {
        "user_id": user.id,
        "user_name": user.username,
        "channel_id": target.channel.id,
        "channel_name": target.channel.name,
        "team_id": target.channel.team_id,
        "team_domain": team.name if team is not None else "",
        "post_id": post_id,
        "trigger_id": trigger.trigger_id,
        "type": target.action_type,
        "data_source": data_source,
    }
    if context:
        request["context"] = gojson.normalize(context)
    payload = gojson.marshal(request)
    url = str(target.integration.get("url") or "")
    record = IntegrationCall("post_action", url, user.id, state.now(), payload.decode("utf-8"), {})
    state.integration_calls.append(record)
    try:
        raw = await outbound.post_json(http, state.settings, url, payload, record)
        update, ephemeral_text, skip_parsing = _parse_answer(raw)
        if update is not None:
            if target.post is None:
                raise errors.post_not_found()  # UpdatePost cannot find a post that only lived in a cookie
            posts.apply_action_update(state, user, target.post, update)
        if ephemeral_text:
            message = ephemeral_text if skip_parsing else attachments.slack_links_to_markdown(ephemeral_text)
            posts.add_ephemeral(
                state, user.id, target.channel.id, target.root_id, message, target.retained, post_id=post_id
            )
    except errors.ApiError as exc:
        record.outcome = {"status": exc.status, "id": exc.error_id}
        raise
    record.outcome = {"status": 200, "updated": update is not None, "ephemeral_text": ephemeral_text}
    return trigger.client_trigger_id


def _check_access(state: State, user: User, post_id: str, raw_cookie: str) -> cookies.ActionCookie | None:
    if raw_cookie:
        try:
            cookie = cookies.open_cookie(raw_cookie, state.cookie_secret)
        except cookies.BadCookie as exc:
            raise errors.action_integration_failed(f"cookie: {exc}") from exc
        channel = state.channels.get(cookie.channel_id)
        if channel is None:
            raise errors.channel_id_not_found()
        if not channels.can_read_channel(state, user, channel):
            raise errors.forbidden(user.id, "read_channel_content")
        return cookie
    post = state.posts.get(post_id)
    if post is None:
        # No channel to check: the system-wide permission decides, which only admins hold.
        if not user.is_admin:
            raise errors.forbidden(user.id, "read_channel_content")
    elif not channels.can_read_channel(state, user, state.channels[post.channel_id]):
        raise errors.forbidden(user.id, "read_channel_content")
    return None


def _target(state: State, post_id: str, action_id: str, cookie: cookies.ActionCookie | None) -> _Target:
    post = state.posts.get(post_id)
    if post is not None and post.delete_at == 0:
        action = attachments.find_action(post.props, action_id)
        if action is None or "integration" not in action:
            raise errors.action_not_found()
        retained = {key: post.props[key] for key in posts.RETAINED_PROPS if key in post.props}
        return _Target(
            channel=state.channels[post.channel_id],
            post=post,
            action_type=str(action.get("type", "")),
            data_source=str(action.get("data_source", "")),
            integration=action["integration"],
            root_id=post.root_id or post.id,
            retained=retained,
        )
    if cookie is None:
        raise errors.post_not_found()
    if cookie.integration is None:
        raise errors.action_integration_failed("no Integration in action cookie")
    if cookie.post_id != post_id:
        raise errors.action_integration_failed("postId doesn't match")
    channel = state.channels.get(cookie.channel_id)
    if channel is None:
        raise errors.channel_id_not_found()
    return _Target(
        channel=channel,
        post=None,
        action_type=cookie.type,
        data_source=cookie.data_source,
        integration=cookie.integration,
        root_id=cookie.root_post_id,
        retained=dict(cookie.retain_props),
    )


def _parse_answer(raw: bytes) -> tuple[dict[str, Any] | None, str, bool]:
    """`PostActionIntegrationResponse` from the integration's 200 answer; 400 when it does not decode."""
    if not raw:
        return None, "", False
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise errors.action_integration_failed("the answer is not JSON") from exc
    if doc is None:
        return None, "", False
    if not isinstance(doc, dict):
        raise errors.action_integration_failed("the answer is not an object")
    fields = gojson.struct_fields(doc, _RESPONSE_FIELDS)
    update = fields.get("update")
    text = fields.get("ephemeral_text")
    skip = fields.get("skip_slack_parsing")
    if (text is not None and not isinstance(text, str)) or (skip is not None and not isinstance(skip, bool)):
        raise errors.action_integration_failed("ephemeral_text or skip_slack_parsing has the wrong type")
    if update is not None:
        update = _check_update(update)
    return update, text or "", bool(skip)


def _check_update(update: Any) -> dict[str, Any]:
    """The `update` decoded into a Post: the fields the update uses, type-checked as Go would."""
    if not isinstance(update, dict):
        raise errors.action_integration_failed("update is not a post")
    fields = gojson.struct_fields(update, (*_UPDATE_STRINGS, *_UPDATE_BOOLS, "props", "file_ids"))
    wrong = [name for name in _UPDATE_STRINGS if fields.get(name) is not None and not isinstance(fields[name], str)]
    wrong += [name for name in _UPDATE_BOOLS if fields.get(name) is not None and not isinstance(fields[name], bool)]
    if fields.get("props") is not None and not isinstance(fields["props"], dict):
        wrong.append("props")
    file_ids = fields.get("file_ids")
    if file_ids is not None and not (isinstance(file_ids, list) and all(isinstance(f, str) for f in file_ids)):
        wrong.append("file_ids")
    if wrong:
        raise errors.action_integration_failed(f"update has the wrong type for {wrong}")
    return fields
