"""Approve / Deny buttons on a request's root posts, and their removal once the request is decided.

Mattermost buttons are `actions` of a message attachment. With the classic style the message text stays exactly
as the Go plugin writes it and the buttons ride in an attachment of their own; with the rich style they join the
request's card. Each button carries the integration URL (`public_url` + the action path) and a signed context
(`signing.py`) naming the request, the action and the channel (and the post, once it exists), valid until the
request's own expiry or `review.action_ttl`, whichever comes first.

No buttons, ever, on a long-term request (reviewed in Teleport only), on a post to the requester's own DM (they
cannot review their request), on a request that is no longer pending, or once the request's expiry has passed.
A post whose request was resolved or expired is edited with `resolved_attachments`, which drops every button;
the edit must send `props.attachments` even when the list is empty, or Mattermost keeps the old buttons.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sidecar.review.signing import KeyRing, sign_action
from sidecar.review.urls import ACTION_PATH, callback_url

__all__ = ["APPROVE_ID", "DENY_ID", "ButtonTarget", "ReviewButtons", "resolved_attachments"]

APPROVE_ID: Final = "approve"  # action ids: letters and digits only, as Mattermost's route requires
DENY_ID: Final = "deny"
FALLBACK: Final = "Review this request: Approve or Deny"
MIN_LIFETIME: Final = 60  # seconds: a button that would expire sooner is not worth showing


@dataclass(frozen=True)
class ButtonTarget:
    """One root post of a request, as the buttons need to know it.

    `channel_id` is where the post goes; `post_id` is "" before it exists (the context is then bound to the
    channel, and the click pipeline checks the post against the plugin data). `to_requester` is True when the
    channel is the requester's DM with the bot; `request_expires` is the pending request's own expiry.
    """

    request_id: str
    channel_id: str
    post_id: str = ""
    pending: bool = True
    long_term: bool = False
    to_requester: bool = False
    request_expires: datetime | None = None


class ReviewButtons:
    """Builds the attachments of a request's root post with or without its review buttons."""

    def __init__(
        self, *, public_url: str, keys: KeyRing, action_ttl: float, clock: Callable[[], float] = time.time
    ) -> None:
        self._url = callback_url(public_url, ACTION_PATH)
        self._keys = keys
        self._ttl = action_ttl
        self._clock = clock

    def expiry(self, target: ButtonTarget) -> int | None:
        """When the buttons for `target` would stop working (unix seconds), or None when it gets no buttons."""
        if not target.pending or target.long_term or target.to_requester:
            return None
        now = self._clock()
        expires = now + self._ttl
        if target.request_expires is not None:
            expires = min(expires, target.request_expires.timestamp())
        return int(expires) if expires - now >= MIN_LIFETIME else None

    def actions(self, target: ButtonTarget) -> list[dict[str, Any]]:
        """The Approve and Deny actions for `target`, or [] when it gets no buttons."""
        expires = self.expiry(target)
        if expires is None:
            return []
        now = int(self._clock())
        return [
            self._action(target, APPROVE_ID, "Approve", "primary", "approve", expires, now),
            self._action(target, DENY_ID, "Deny", "danger", "deny", expires, now),
        ]

    def pending_attachments(
        self, target: ButtonTarget, attachments: Sequence[Mapping[str, Any]] = ()
    ) -> list[dict[str, Any]]:
        """`props.attachments` for a root post: `attachments` as the message style rendered them ([] for classic),
        with the buttons added to the first one (the rich card) or, when there is none, in an attachment of their
        own. Unchanged (copied) when `target` gets no buttons."""
        result = [dict(a) for a in resolved_attachments(attachments)]
        actions = self.actions(target)
        if not actions:
            return result
        if result:
            result[0]["actions"] = actions
        else:
            result.append({"fallback": FALLBACK, "actions": actions})
        return result

    def _action(
        self, target: ButtonTarget, action_id: str, name: str, style: str, action: str, expires: int, now: int
    ) -> dict[str, Any]:
        context = sign_action(
            self._keys,
            request_id=target.request_id,
            action=action,
            channel_id=target.channel_id,
            post_id=target.post_id,
            expires_at=expires,
            now=now,
        )
        return {
            "id": action_id,
            "type": "button",
            "name": name,
            "style": style,
            "integration": {"url": self._url, "context": context},
        }


def resolved_attachments(attachments: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """`attachments` without any button: for the edit of a resolved or expired request's post. An attachment that
    held nothing but buttons (the classic style's) is dropped; send the result even when it is empty."""
    result = []
    for attachment in attachments:
        kept = {key: value for key, value in attachment.items() if key != "actions"}
        if any(value for key, value in kept.items() if key != "fallback"):
            result.append(kept)
    return result
