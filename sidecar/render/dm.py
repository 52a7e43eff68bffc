"""Direct messages to the requester: announced, each review, resolved, expired (text-only posts).

Each is a `RichPost` without attachments, rendered for a size limit like every other post.
"""

from __future__ import annotations

from collections.abc import Sequence

from sidecar.domain.record import Resolution
from sidecar.render.facts import STATUS, names, review_look, tally, upper_first
from sidecar.render.inert import code, code_block
from sidecar.render.limits import DEFAULT_LIMIT, Detail, fit_levels
from sidecar.render.rich import link_markdown
from sidecar.render.timefmt import dated, relative, utc_minute
from sidecar.render.view import RequestView, RichPost

__all__ = ["dm_announced", "dm_expired", "dm_resolved", "dm_review"]


def _your_request(view: RequestView, detail: Detail) -> str:
    noun = "role" if len(view.roles) == 1 else "roles"
    roles_md, _ = names(view.roles, detail.name, detail.roles, "roles")
    text = f"your access request for {noun} {roles_md}"
    if view.cluster:
        text += f" on {code(view.cluster, detail.name)}"
    return text


def _footer(view: RequestView) -> str:
    request_id = "Request ID " + code(view.request_id, 100)
    if view.link is None:
        return request_id
    return f"{link_markdown('Open in Teleport', view.link)} \u00b7 {request_id}"


def _announced(view: RequestView, destinations: Sequence[str], detail: Detail) -> RichPost:
    lines = [f"\U0001f4e8 {upper_first(_your_request(view, detail))} was sent for review."]
    if destinations:
        where, _ = names(destinations, detail.name, detail.reviewers, "recipients")
        lines.append(f"It went to {where}.")
    else:
        lines.append("No reviewer channel was configured for it; reviewers can still find it in Teleport.")
    if view.request_expires is not None:
        lines.append(f"It expires {relative(view.request_expires, view.now)} unless it is reviewed.")
    lines.append("I will tell you here about each review and the outcome.")
    lines.append(_footer(view))
    return RichPost(message="\n".join(lines))


def dm_announced(view: RequestView, destinations: Sequence[str], *, limit: int = DEFAULT_LIMIT) -> RichPost:
    """The DM telling the requester their request was announced, and where (`destinations`, as configured)."""
    return fit_levels(lambda detail: _announced(view, destinations, detail), limit)


def _review(view: RequestView, index: int, detail: Detail) -> RichPost:
    review = view.reviews[index]
    emoji, verb, _ = review_look(review.proposed_state)
    so_far = tally(view.reviews[: index + 1], view.approvals_required)
    who = code(review.author, detail.name)
    lines = [f"{emoji} {who} **{verb}** {_your_request(view, detail)} at {utc_minute(review.created)} ({so_far})."]
    if review.reason.strip():
        lines.append("**Reason**:\n" + code_block(review.reason, detail.reason, detail.reason_lines))
    lines.append(_footer(view))
    return RichPost(message="\n".join(lines))


def dm_review(view: RequestView, index: int, *, limit: int = DEFAULT_LIMIT) -> RichPost:
    """The DM for `view.reviews[index]`, with the approvals counted up to and including it."""
    if not 0 <= index < len(view.reviews):
        raise ValueError(f"review index {index} is out of range for {len(view.reviews)} reviews")
    return fit_levels(lambda detail: _review(view, index, detail), limit)


def _resolved(view: RequestView, detail: Detail) -> RichPost:
    status = STATUS[view.resolution]
    lines = [f"{status.emoji} {upper_first(_your_request(view, detail))} was **{status.phrase}**."]
    if view.reviews:
        lines.append(upper_first(tally(view.reviews, view.approvals_required)) + ".")
    if view.resolve_reason.strip():
        lines.append("**Reason**:\n" + code_block(view.resolve_reason, detail.resolve_reason, detail.reason_lines))
    if view.resolution is Resolution.APPROVED:
        command = code(f"tsh login --request-id={view.request_id}", 200)
        lines.append(f"To use it: {command}")
        if view.access_start is not None:
            lines.append(f"Access starts {dated(view.access_start, view.now)}.")
        if view.access_expires is not None:
            lines.append(f"Access ends {dated(view.access_expires, view.now)}.")
    lines.append(_footer(view))
    return RichPost(message="\n".join(lines))


def dm_resolved(view: RequestView, *, limit: int = DEFAULT_LIMIT) -> RichPost:
    """The DM on resolution, with the resolve reason and, when approved, the `tsh login` that uses it."""
    return fit_levels(lambda detail: _resolved(view, detail), limit)


def _expired(view: RequestView, detail: Detail) -> RichPost:
    lines = [
        f"\u231b {upper_first(_your_request(view, detail))} has expired.",
        "Teleport removed it; if you still need access, create a new request.",
        "Request ID " + code(view.request_id, 100),
    ]
    return RichPost(message="\n".join(lines))


def dm_expired(view: RequestView, *, limit: int = DEFAULT_LIMIT) -> RichPost:
    """The DM when the request expired (Teleport deleted it)."""
    return fit_levels(lambda detail: _expired(view, detail), limit)
