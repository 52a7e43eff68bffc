"""The facts of a request, each once in inert Markdown and once in plain text, at a level of detail.

The root post's attachment fields, its fallback and the full message are all laid out from the same list,
so the three cannot disagree. Every untrusted value passes through `inert`; the lists end in a visible
"… and 37 more resources" when the level of detail shows fewer items than there are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sidecar.domain.model import RequestState, Review
from sidecar.domain.record import Resolution
from sidecar.render.inert import code, code_block, mention, plain
from sidecar.render.limits import Detail
from sidecar.render.timefmt import dated, relative, utc_minute
from sidecar.render.view import RequestView, ResourceView, ReviewerView

__all__ = [
    "STATUS",
    "Fact",
    "Status",
    "names",
    "request_facts",
    "review_line",
    "review_look",
    "reviewers",
    "tally",
    "tsh_review_commands",
    "upper_first",
]


@dataclass(frozen=True)
class Status:
    """How a resolution looks: emoji, word, headline phrase and the attachment colour."""

    emoji: str
    word: str
    phrase: str
    color: str


STATUS: dict[Resolution, Status] = {
    Resolution.UNRESOLVED: Status("\u23f3", "Pending", "pending review", "#F2A93B"),
    Resolution.APPROVED: Status("\u2705", "Approved", "approved", "#2EA44F"),
    Resolution.DENIED: Status("\u274c", "Denied", "denied", "#D73A49"),
    Resolution.EXPIRED: Status("\u231b", "Expired", "expired", "#8B949E"),
    Resolution.PROMOTED: Status("\U0001f4cb", "Promoted", "promoted to an access list", "#6F42C1"),
}

_REVIEW_LOOK: dict[RequestState, tuple[str, str, str]] = {
    RequestState.APPROVED: ("\u2705", "approved", "#2EA44F"),
    RequestState.DENIED: ("\u274c", "denied", "#D73A49"),
    RequestState.PROMOTED: ("\U0001f4cb", "promoted", "#6F42C1"),
}
_OTHER_REVIEW = ("\U0001f4dd", "reviewed", "#8B949E")


def review_look(state: RequestState) -> tuple[str, str, str]:
    """A review's emoji, past-tense verb and colour by its proposed state."""
    return _REVIEW_LOOK.get(state, _OTHER_REVIEW)


# Teleport's resource kinds in words; any other kind is shown as it is, in code.
_KIND_LABEL = {
    "node": "Server",
    "app": "App",
    "db": "Database",
    "kube_cluster": "Kubernetes cluster",
    "windows_desktop": "Windows desktop",
    "user_group": "User group",
    "saml_idp_service_provider": "SAML app",
    "aws_ic_account_assignment": "AWS account assignment",
    "git_server": "Git server",
}


@dataclass(frozen=True)
class Fact:
    """One titled fact: `markdown` for fields and messages, `plain` for the fallback; `short` fields pair up."""

    title: str
    markdown: str
    plain: str
    short: bool = True


def upper_first(text: str) -> str:
    """`text` with its first character upper-cased and the rest untouched (str.capitalize lowers the rest)."""
    return text[:1].upper() + text[1:]


def _more(hidden: int, noun: str) -> str:
    return f"\u2026 and {hidden} more {noun}" if hidden else ""


def names(values: Sequence[str], cap: int, limit: int, noun: str) -> tuple[str, str]:
    """`values` as code spans joined by commas (Markdown) and as plain text, at most `limit` of them."""
    shown = values[:limit]
    more = _more(len(values) - len(shown), noun)
    markdown = ", ".join(code(v, cap) for v in shown)
    text = ", ".join(plain(v, cap) for v in shown)
    return (f"{markdown} {more}".strip(), f"{text} {more}".strip())


def reviewers(values: Sequence[ReviewerView], cap: int, limit: int) -> tuple[str, str]:
    """Suggested reviewers: an @mention for those with a Mattermost username, the name in code otherwise."""
    shown = values[:limit]
    more = _more(len(values) - len(shown), "reviewers")
    markdown = ", ".join(mention(r.mattermost_username) or code(r.name, cap) for r in shown)
    text = ", ".join(plain(r.name, cap) for r in shown)
    return (f"{markdown} {more}".strip(), f"{text} {more}".strip())


def tally(reviews: Sequence[Review], required: int | None) -> str:
    """`1 of 2 approvals` (or `1 approval` when the threshold is unknown), plus denials when there are any."""
    approvals = sum(r.proposed_state is RequestState.APPROVED for r in reviews)
    denials = sum(r.proposed_state is RequestState.DENIED for r in reviews)
    if required:
        text = f"{approvals} of {required} approval" + ("" if required == 1 else "s")
    else:
        text = f"{approvals} approval" + ("" if approvals == 1 else "s")
    if denials:
        text += f", {denials} denial" + ("" if denials == 1 else "s")
    return text


def review_line(review: Review, cap: int, reason_cap: int) -> tuple[str, str]:
    """One review on one line: `✅ \\`bob\\` approved at 2025-01-02 15:10 UTC: \\`reason\\``, and its plain form."""
    emoji, verb, _ = review_look(review.proposed_state)
    head = f"{emoji} {code(review.author, cap)} {verb} at {utc_minute(review.created)}"
    text = f"{emoji} {plain(review.author, cap)} {verb} at {utc_minute(review.created)}"
    if review.reason.strip() and reason_cap > 0:
        reason_md, reason_text = code(review.reason, reason_cap, note=True), plain(review.reason, reason_cap, note=True)
        return f"{head}: {reason_md}", f"{text}: {reason_text}"
    return head, text


def tsh_review_commands(request_id: str) -> tuple[str, str]:
    """The approve and deny commands, for clusters without a Web UI link."""
    approve = f"tsh request review --approve {request_id}"
    deny = f"tsh request review --deny {request_id}"
    return f"{code(approve, 200)}\n{code(deny, 200)}", f"{plain(approve, 200)} / {plain(deny, 200)}"


def _resource(resource: ResourceView, view: RequestView, cap: int) -> tuple[str, str]:
    label = _KIND_LABEL.get(resource.kind)
    kind_md = label or (code(resource.kind, cap) if resource.kind else "")
    kind_text = label or (plain(resource.kind, cap) if resource.kind else "")
    if resource.friendly_name.strip():
        markdown = f"{code(resource.friendly_name, cap)} ({code(resource.name, cap)})"
        text = f"{plain(resource.friendly_name, cap)} ({plain(resource.name, cap)})"
    else:
        markdown, text = code(resource.name, cap), plain(resource.name, cap)
    if resource.sub_resource:
        markdown += f" \u203a {code(resource.sub_resource, cap)}"
        text += f" \u203a {plain(resource.sub_resource, cap)}"
    if resource.cluster and resource.cluster != view.cluster:
        markdown += f" in cluster {code(resource.cluster, cap)}"
        text += f" in cluster {plain(resource.cluster, cap)}"
    return f"{kind_md} {markdown}".strip(), f"{kind_text} {text}".strip()


def _resources(view: RequestView, detail: Detail) -> Fact:
    shown = view.resources[: detail.resources]
    lines = [_resource(r, view, detail.name) for r in shown]
    more = _more(len(view.resources) - len(shown), "resources")
    markdown = "\n".join(f"- {md}" for md, _ in lines) + (f"\n{more}" if more else "")
    text = "; ".join(t for _, t in lines) + (f" {more}" if more else "")
    return Fact(f"Resources ({len(view.resources)})", markdown, text, short=False)


def _logins(view: RequestView, detail: Detail) -> Fact | None:
    entries = [(role, logins) for role, logins in view.logins_by_role.items() if logins]
    if not entries:
        return None
    shown = entries[: detail.roles]
    md_lines, text_parts = [], []
    for role, logins in shown:
        md, text = names(logins, detail.name, detail.logins, "logins")
        md_lines.append(f"{code(role, detail.name)}: {md}")
        text_parts.append(f"{plain(role, detail.name)}: {text}")
    more = _more(len(entries) - len(shown), "roles")
    markdown = "\n".join(md_lines) + (f"\n{more}" if more else "")
    return Fact("Logins by role", markdown, "; ".join(text_parts) + (f" {more}" if more else ""), short=False)


def _reviews(view: RequestView, detail: Detail) -> Fact:
    shown = view.reviews[-detail.reviews :] if detail.reviews else ()
    earlier = len(view.reviews) - len(shown)
    lines = [review_line(r, detail.name, detail.review_reason) for r in shown]
    note = f"\u2026 and {earlier} earlier reviews" if earlier else ""
    markdown = "\n".join(([note] if note else []) + [md for md, _ in lines])
    text = "; ".join(([note] if note else []) + [t for _, t in lines])
    return Fact("Reviews", markdown, text, short=False)


def _status(view: RequestView) -> Fact:
    status = STATUS[view.resolution]
    value = f"{status.emoji} {status.word}"
    if view.resolution is Resolution.UNRESOLVED or view.reviews:
        value += " \u00b7 " + tally(view.reviews, view.approvals_required)
    return Fact("Status", value, value)


def _access(view: RequestView) -> Fact | None:
    parts = []
    if view.access_start is not None:
        parts.append("from " + dated(view.access_start, view.now))
    if view.access_expires is not None:
        parts.append("until " + dated(view.access_expires, view.now))
    if not parts:
        return None
    value = " ".join(parts)
    return Fact("Access", value, value)


def request_facts(view: RequestView, detail: Detail) -> list[Fact]:
    """The facts the root post shows, in order, at `detail`."""
    pending = view.resolution is Resolution.UNRESOLVED
    roles_md, roles_text = names(view.roles, detail.name, detail.roles, "roles")
    facts: list[Fact | None] = [
        Fact("Requester", code(view.requester, detail.name), plain(view.requester, detail.name)),
        Fact("Cluster", code(view.cluster, detail.name), plain(view.cluster, detail.name)) if view.cluster else None,
        Fact("Roles", roles_md, roles_text, short=len(view.roles) <= 3),
        _status(view),
    ]
    if pending and view.request_expires is not None:
        value = relative(view.request_expires, view.now)
        facts.append(Fact("Request expires", value, value))
    facts.append(_access(view))
    facts.append(Fact("Request ID", code(view.request_id, 100), plain(view.request_id, 100)))
    if view.resources:
        facts.append(_resources(view, detail))
    facts.append(_logins(view, detail))
    if view.reason.strip():
        block = code_block(view.reason, detail.reason, detail.reason_lines)
        facts.append(Fact("Reason", block, plain(view.reason, detail.reason, note=True), short=False))
    if view.suggested_reviewers:
        md, text = reviewers(view.suggested_reviewers, detail.name, detail.reviewers)
        facts.append(Fact("Suggested reviewers", md, text, short=False))
    if view.reviews:
        facts.append(_reviews(view, detail))
    if not pending and view.resolve_reason.strip():
        block = code_block(view.resolve_reason, detail.resolve_reason, detail.reason_lines)
        text = plain(view.resolve_reason, detail.resolve_reason, note=True)
        facts.append(Fact("Resolution reason", block, text, short=False))
    if pending and view.link is None:
        md, text = tsh_review_commands(view.request_id)
        facts.append(Fact("Review with", md, text, short=False))
    return [fact for fact in facts if fact is not None]
