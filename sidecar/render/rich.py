"""The rich message style: the root post as a Mattermost message attachment, its review replies, reminders.

The root post is a short Markdown `message` (the headline facts and the @mentions, which is what
notifications, search and clients without attachments show) above one attachment: a status colour, a
title linking to the Web UI where there is a link, the facts as fields, and a plain-text `fallback` with
every fact. Mattermost shows the message above the card, so by default the message does not repeat every
field; `full_message=True` puts every fact in the message as well.

Everything is rendered for a size limit (`limits`); to re-render smaller after the server refused a post,
call again with `limits.smaller_limit(limit)`.
"""

from __future__ import annotations

from typing import Any

from sidecar.domain.record import Resolution
from sidecar.render.facts import (
    STATUS,
    Fact,
    names,
    request_facts,
    review_look,
    reviewers,
    tally,
    tsh_review_commands,
)
from sidecar.render.inert import code, code_block, plain
from sidecar.render.limits import DEFAULT_LIMIT, Detail, fit_levels
from sidecar.render.timefmt import dated, relative, span, utc_minute
from sidecar.render.view import RequestView, RichPost

__all__ = ["link_markdown", "render_reminder", "render_request", "render_review_reply"]

_URL_UNSAFE = {" ": "%20", "(": "%28", ")": "%29", "<": "%3C", ">": "%3E", "[": "%5B", "]": "%5D"}


def link_markdown(label: str, url: str) -> str:
    """A Markdown link to one of our own URLs, with the characters that would end it early escaped."""
    return f"[{label}](" + "".join(_URL_UNSAFE.get(c, c) for c in url) + ")"


def _headline(view: RequestView, detail: Detail) -> tuple[str, str]:
    status = STATUS[view.resolution]
    verb = "requests" if view.resolution is Resolution.UNRESOLVED else "requested"
    noun = "role" if len(view.roles) == 1 else "roles"
    roles_md, roles_text = names(view.roles, detail.name, detail.roles, "roles")
    markdown = f"{status.emoji} **Access request {status.phrase}**: {code(view.requester, detail.name)} {verb}"
    text = f"{status.emoji} Access request {status.phrase}: {plain(view.requester, detail.name)} {verb}"
    markdown += f" {noun} {roles_md}"
    text += f" {noun} {roles_text}"
    if view.cluster:
        markdown += f" on {code(view.cluster, detail.name)}"
        text += f" on {plain(view.cluster, detail.name)}"
    if view.resources:
        count = len(view.resources)
        suffix = f" with {count} resource" + ("" if count == 1 else "s")
        markdown += suffix
        text += suffix
    return markdown, text


def _progress(view: RequestView) -> str:
    pending = view.resolution is Resolution.UNRESOLVED
    parts = [tally(view.reviews, view.approvals_required)] if pending or view.reviews else []
    if pending and view.request_expires is not None:
        parts.append("request expires " + relative(view.request_expires, view.now))
    if view.resolution is Resolution.APPROVED and view.access_expires is not None:
        parts.append("access until " + dated(view.access_expires, view.now))
    return " \u00b7 ".join(parts)


def _where_to_review(view: RequestView) -> str:
    request_id = "Request ID " + code(view.request_id, 100)
    if view.link is not None:
        return f"{link_markdown('Open in Teleport', view.link)} \u00b7 {request_id}"
    if view.resolution is Resolution.UNRESOLVED:
        approve_deny, _ = tsh_review_commands(view.request_id)
        return f"{request_id} \u00b7 review with " + approve_deny.replace("\n", " or ")
    return request_id


def _summary(view: RequestView, detail: Detail, headline: str) -> str:
    lines = [headline]
    progress = _progress(view)
    if progress:
        lines.append(progress)
    if view.reason.strip():
        lines.append("Reason: " + code(view.reason, detail.review_reason, note=True))
    if view.resolution is not Resolution.UNRESOLVED and view.resolve_reason.strip():
        lines.append("Resolution reason: " + code(view.resolve_reason, detail.review_reason, note=True))
    if view.suggested_reviewers:
        lines.append("Suggested reviewers: " + reviewers(view.suggested_reviewers, detail.name, detail.reviewers)[0])
    lines.append(_where_to_review(view))
    return "\n".join(lines)


def _fact_line(fact: Fact) -> str:
    # A block value (list, code block, several lines) must start on its own line to render as one.
    block = "\n" in fact.markdown or fact.markdown.startswith(("```", "- "))
    return f"**{fact.title}**:" + ("\n" if block else " ") + fact.markdown


def _request_post(view: RequestView, detail: Detail, full_message: bool) -> RichPost:
    status = STATUS[view.resolution]
    facts = request_facts(view, detail)
    headline_md, headline_text = _headline(view, detail)
    if full_message:
        message = "\n".join([headline_md, *(_fact_line(f) for f in facts), _where_to_review(view)])
    else:
        message = _summary(view, detail, headline_md)
    fallback = "\n".join([headline_text, *(f"{f.title}: {f.plain}" for f in facts)])
    if view.link is not None:
        fallback += f"\nLink: {view.link}"
    attachment: dict[str, Any] = {
        "fallback": fallback,
        "color": status.color,
        "title": f"{status.emoji} Access request {status.phrase}",
    }
    if view.link is not None:
        attachment["title_link"] = view.link
    attachment["fields"] = [{"title": f.title, "value": f.markdown, "short": f.short} for f in facts]
    attachment["footer"] = f"Teleport access request \u00b7 as of {utc_minute(view.now)}"
    return RichPost(message=message, attachments=[attachment])


def render_request(view: RequestView, *, limit: int = DEFAULT_LIMIT, full_message: bool = False) -> RichPost:
    """The root post for `view` in its current state, within `limit` (see `limits`)."""
    return fit_levels(lambda detail: _request_post(view, detail, full_message), limit)


def _reply_post(view: RequestView, index: int, detail: Detail) -> RichPost:
    review = view.reviews[index]
    emoji, verb, color = review_look(review.proposed_state)
    so_far = tally(view.reviews[: index + 1], view.approvals_required)
    when = utc_minute(review.created)
    message = f"{emoji} {code(review.author, detail.name)} **{verb}** the request at {when} ({so_far})."
    fallback = f"{emoji} {plain(review.author, detail.name)} {verb} the request at {when} ({so_far})."
    if review.reason.strip():
        text = "**Reason**:\n" + code_block(review.reason, detail.reason, detail.reason_lines)
        fallback += " Reason: " + plain(review.reason, detail.reason, note=True)
    else:
        text = "No reason given."
    attachment = {"fallback": fallback, "color": color, "text": text}
    return RichPost(message=message, attachments=[attachment])


def render_review_reply(view: RequestView, index: int, *, limit: int = DEFAULT_LIMIT) -> RichPost:
    """The thread reply for `view.reviews[index]`, with the approvals counted up to and including it."""
    if not 0 <= index < len(view.reviews):
        raise ValueError(f"review index {index} is out of range for {len(view.reviews)} reviews")
    return fit_levels(lambda detail: _reply_post(view, index, detail), limit)


def _reminder_post(view: RequestView, detail: Detail, number: int | None, of: int | None, escalation: bool) -> RichPost:
    noun = "role" if len(view.roles) == 1 else "roles"
    roles_md, _ = names(view.roles, detail.name, detail.roles, "roles")
    head = "\U0001f6a8 **Escalation**" if escalation else "\u23f0 **Reminder**"
    if number is not None:
        head += f" ({number} of {of})" if of is not None else f" ({number})"
    request = f"the access request from {code(view.requester, detail.name)} for {noun} {roles_md}"
    if view.created is not None:
        waited = f"has waited {span(view.now - view.created)} without a decision"
    else:
        waited = "is still waiting for a decision"
    status = tally(view.reviews, view.approvals_required)
    if view.request_expires is not None:
        status += ", request expires " + relative(view.request_expires, view.now)
    lines = [f"{head}: {request} {waited}: {status}."]
    if view.suggested_reviewers:
        lines.append(reviewers(view.suggested_reviewers, detail.name, detail.reviewers)[0] + ", please review it.")
    lines.append(_where_to_review(view))
    return RichPost(message="\n".join(lines))


def render_reminder(
    view: RequestView,
    *,
    number: int | None = None,
    of: int | None = None,
    escalation: bool = False,
    limit: int = DEFAULT_LIMIT,
) -> RichPost:
    """The threaded reminder for a request still pending (`number` of `of` when given), or its escalation.

    Resolved suggested reviewers are @mentioned, so the reminder notifies them; the time waited is counted
    from `view.created` to `view.now`.
    """
    return fit_levels(lambda detail: _reminder_post(view, detail, number, of, escalation), limit)
