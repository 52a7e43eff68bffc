"""Message texts, byte-identical to the Go plugin's templates (TP `integrations/access/mattermost/bot.go`).

Root posts are rendered from the STORED plugin data (what the request looked like when it was announced)
plus the stored resolution, never from the latest request object, so every edit of a post keeps its
original user, roles and reason. The Mattermost texts show no cluster name, so none is taken here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit, urlunsplit

from sidecar.domain.model import RequestState, Review
from sidecar.domain.record import PluginData, Resolution
from sidecar.render.escape import markdown_escape
from sidecar.render.inert import code

__all__ = [
    "RenderSettings",
    "go_rfc822",
    "on_behalf_line",
    "request_link",
    "review_reply_text",
    "root_post_text",
    "web_url_from_addr",
]

# Limits the Go plugin passes to MarkdownEscape (Mattermost caps a post at 4000 or 16383 characters).
REQUEST_REASON_LIMIT = 500
RESOLUTION_REASON_LIMIT = 500
REVIEW_REASON_LIMIT = 500
SUBMITTER_LIMIT = 100  # a Teleport user name; longer ones are cut

_STATUS_EMOJI: dict[Resolution, str] = {
    Resolution.UNRESOLVED: "\u23f3",
    Resolution.APPROVED: "\u2705",
    Resolution.DENIED: "\u274c",
    Resolution.EXPIRED: "\u231b",
    Resolution.PROMOTED: "",
}

_REVIEW_EMOJI: dict[RequestState, str] = {
    RequestState.APPROVED: "\u2705",
    RequestState.DENIED: "\u274c",
}

# Go's url.PathEscape keeps these besides letters, digits and "-._~".
_PATH_SEGMENT_SAFE = "$&+:=@"

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class RenderSettings:
    """What the texts depend on besides the request: the Web UI base URL (Enterprise only) or None."""

    web_proxy_url: str | None = None


def web_url_from_addr(addr: str) -> str:
    """Go's lib.AddrToURL: prepend https:// when there is no scheme and drop an explicit :443 on https."""
    url = addr if addr.startswith(("http://", "https://")) else "https://" + addr
    parts = urlsplit(url)
    if not parts.hostname:
        raise ValueError(f"web proxy address {addr!r} has no host")
    if parts.scheme == "https" and parts.port == 443:
        host = parts.netloc.rsplit(":", 1)[0]
        parts = parts._replace(netloc=host)
    return urlunsplit(parts)


def request_link(web_proxy_url: str, request_id: str) -> str:
    """The Web UI page of a request: the proxy URL with its path replaced, as Go's bot does."""
    parts = urlsplit(web_proxy_url)
    path = "/web/requests/" + quote(request_id, safe=_PATH_SEGMENT_SAFE)
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _status(resolution: Resolution) -> str:
    return "PENDING" if resolution is Resolution.UNRESOLVED else resolution.value


def root_post_text(request_id: str, data: PluginData, settings: RenderSettings) -> str:
    """The root post for a request in the state recorded by `data.resolution`."""
    status = _status(data.resolution)
    pending = data.resolution is Resolution.UNRESOLVED
    lines = [
        "*You have new pending request to review!*" if pending else "",
        f"**User**: {data.user}",
        f"**Roles**: {', '.join(data.roles)}",
        f"**Request ID**: {request_id}",
        f"**Reason**: {markdown_escape(data.request_reason, REQUEST_REASON_LIMIT)}" if data.request_reason else "",
        f"**Status**: {_STATUS_EMOJI[data.resolution]} {status}",
        (
            f"**Resolution reason**: {markdown_escape(data.resolve_reason, RESOLUTION_REASON_LIMIT)}"
            if data.resolve_reason
            else ""
        ),
    ]
    text = "\n".join(lines) + "\n"
    if settings.web_proxy_url:
        link = request_link(settings.web_proxy_url, request_id)
        return text + f"**Link**: [{link}]({link})\n"
    if pending:
        return (
            text
            + f"**Approve**: `tsh request review --approve {request_id}`\n"
            + f"**Deny**: `tsh request review --deny {request_id}`"
        )
    return text


def go_rfc822(moment: datetime) -> str:
    """Go's `02 Jan 06 15:04 MST` layout in UTC (a naive time is taken as UTC); locale-independent."""
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return f"{utc.day:02d} {_MONTHS[utc.month - 1]} {utc.year % 100:02d} {utc.hour:02d}:{utc.minute:02d} UTC"


def review_reply_text(review: Review) -> str:
    """The threaded reply announcing one review.

    Deviation from Go: a review submitted on its author's behalf (in-chat review, or another plugin) gets one more
    line naming who submitted it; every other reply is the Go text, byte for byte.
    """
    text = (
        f"{review.author} reviewed the request at {go_rfc822(review.created)}.\n"
        f"Resolution: {_REVIEW_EMOJI.get(review.proposed_state, '')} {review.proposed_state.value}.\n"
    )
    if review.reason:
        text += f"Reason: {markdown_escape(review.reason, REVIEW_REASON_LIMIT)}."
    if review.submitted_by:
        text += ("" if text.endswith("\n") else "\n") + on_behalf_line(review.submitted_by)
    return text


def on_behalf_line(submitted_by: str) -> str:
    """The line a reply adds for a review submitted on its author's behalf (the name as inert inline code)."""
    return f"Submitted on the reviewer's behalf by {code(submitted_by, SUBMITTER_LIMIT)}."
