"""What each post says, in the configured message style, rendered for a size limit when it is sent.

    classic   root posts and review replies: the Go plugin's texts (sidecar/render/classic.py), byte for byte
              whenever they fit, else shortened with a visible marker (limits.fit_classic)
    rich      root posts: a message attachment with every fact (sidecar/render/rich.py), replies likewise
    both      the requester's direct messages (sidecar/render/dm.py) and reminders, which Go does not have

A `Look` renders a post for a size limit: the engine calls it with the limit it knows for the server and again
with a smaller one if the server refuses the post as too long. Rich looks build their view when called, so
every post and edit shows the facts of its moment ("request expires in 47 min").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sidecar.domain.model import AccessRequest
from sidecar.domain.record import PluginData, Resolution
from sidecar.engine.views import request_view
from sidecar.render.classic import SUBMITTER_LIMIT, RenderSettings, review_reply_text, root_post_text
from sidecar.render.dm import dm_announced, dm_expired, dm_resolved, dm_review
from sidecar.render.inert import plain
from sidecar.render.limits import MIN_LIMIT, fit_classic
from sidecar.render.rich import render_reminder, render_request, render_review_reply
from sidecar.render.view import RequestView, RichPost

__all__ = ["CLASSIC", "RICH", "Look", "Texts", "classic_look"]

CLASSIC = "classic"
RICH = "rich"

#: A post's content for a size limit (code points).
Look = Callable[[int], RichPost]
#: The rich reply's footer for a review submitted on its author's behalf (in-chat review's buttons, for one).
ON_BEHALF = "Submitted on the reviewer's behalf by {name}"


def classic_look(text: str) -> Look:
    """A text-only post that keeps its bytes whenever it fits the limit."""
    return lambda limit: RichPost(fit_classic(text, limit))


@dataclass(frozen=True)
class Texts:
    """The style and what the texts depend on besides the request: the Web UI link, the cluster, the clock."""

    render: RenderSettings = field(default_factory=RenderSettings)
    style: str = CLASSIC
    cluster: str = ""
    reminders_max: int | None = None  # shown as "Reminder (2 of 3)"
    clock: Callable[[], float] = time.time

    @property
    def rich(self) -> bool:
        """True for the rich style."""
        return self.style == RICH

    def view(self, request_id: str, record: PluginData, request: AccessRequest | None) -> RequestView:
        """The request as the record shows it, now."""
        now = datetime.fromtimestamp(self.clock(), UTC)
        return request_view(
            request_id, record, request, now=now, cluster=self.cluster, web_proxy_url=self.render.web_proxy_url
        )

    def root(self, request_id: str, record: PluginData, request: AccessRequest | None) -> tuple[str, Look | None]:
        """The root post: (classic text, None) or ("", the rich look)."""
        if not self.rich:
            return root_post_text(request_id, record, self.render), None
        return "", lambda limit: render_request(self.view(request_id, record, request), limit=limit)

    def reply(
        self, request_id: str, record: PluginData, request: AccessRequest, index: int
    ) -> tuple[str, Look | None]:
        """The thread reply for review `index`: (classic text, None) or ("", the rich look)."""
        if not self.rich:
            return review_reply_text(request.reviews[index]), None
        submitted_by = request.reviews[index].submitted_by

        def look(limit: int) -> RichPost:
            view = self.view(request_id, record, request)
            if not submitted_by:
                return render_review_reply(view, index, limit=limit)
            # A review submitted on its author's behalf says by whom, in the card's footer (plain text there).
            footer = ON_BEHALF.format(name=plain(submitted_by, SUBMITTER_LIMIT))
            post = render_review_reply(view, index, limit=max(limit - len(footer), MIN_LIMIT))
            if post.attachments:
                post.attachments[0]["footer"] = footer
            return post

        return "", look

    def reminder(
        self, request_id: str, record: PluginData, request: AccessRequest | None, round_: int, *, escalation: bool
    ) -> Look:
        """A threaded reminder (round 0 is the first) or the escalation note."""

        def look(limit: int) -> RichPost:
            view = self.view(request_id, record, request)
            if escalation:
                return render_reminder(view, escalation=True, limit=limit)
            return render_reminder(view, number=round_ + 1, of=self.reminders_max, limit=limit)

        return look

    def notice(
        self,
        request_id: str,
        record: PluginData,
        request: AccessRequest | None,
        index: int,
        destinations: Sequence[str],
    ) -> Look:
        """The requester's direct message number `index`: announced (0), review `index - 1`, then the outcome."""

        def look(limit: int) -> RichPost:
            view = self.view(request_id, record, request)
            if index == 0:
                return dm_announced(view, destinations, limit=limit)
            if index <= len(view.reviews):
                return dm_review(view, index - 1, limit=limit)
            if record.resolution is Resolution.EXPIRED:
                return dm_expired(view, limit=limit)
            return dm_resolved(view, limit=limit)

        return look
