"""A request as the rich texts show it: the stored record, its kept facts and the latest request → RequestView. Pure.

The facts Go's keys lack (cluster, resolved usernames, friendly names, times, reviews) are gathered when the
request is announced (`announced_facts`) and kept in the record (`tm_view`), so every later edit or message
can be written after a restart or once Teleport has deleted the request. Where the latest request is known it
is preferred for the reviews (full reasons); the record decides what is shown (user, roles, reason, status),
as for the classic texts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime

from sidecar.domain.model import AccessRequest, Review
from sidecar.domain.record import Facts, PluginData
from sidecar.render.classic import request_link
from sidecar.render.view import RequestView, ReviewerView, resource_from_id

__all__ = ["FACT_REASON_LIMIT", "announced_facts", "counted_reviews", "request_view", "with_reviews"]

#: Review reasons are kept this long in the record (the rich texts show at most 500 characters of them).
FACT_REASON_LIMIT = 500


def _kept(review: Review) -> Review:
    if len(review.reason) <= FACT_REASON_LIMIT:
        return review
    return dataclasses.replace(review, reason=review.reason[:FACT_REASON_LIMIT] + "\u2026")


def announced_facts(
    request: AccessRequest,
    *,
    cluster: str,
    recipients: Sequence[str],
    usernames: Mapping[str, str],
    friendly_names: Mapping[str, str],
) -> Facts:
    """The facts kept from the announcement on: `usernames` maps suggested reviewers to Mattermost usernames."""
    return Facts(
        cluster=cluster,
        recipients=tuple(recipients),
        reviewers=tuple((name, usernames.get(name, "")) for name in request.suggested_reviewers),
        friendly_names={rid: name for rid, name in friendly_names.items() if rid in request.resources},
        approvals_required=request.approvals_required,
        created=request.created,
        access_start=request.assume_start_time,
        access_expires=request.expires,
        request_expires=request.expiry,
        reviews=tuple(_kept(review) for review in request.reviews),
    )


def with_reviews(facts: Facts | None, request: AccessRequest, count: int) -> Facts | None:
    """`facts` with the first `count` reviews of `request` kept (never fewer than already kept)."""
    if facts is None or len(request.reviews) < count or count < len(facts.reviews):
        return facts
    return dataclasses.replace(facts, reviews=tuple(_kept(review) for review in request.reviews[:count]))


def counted_reviews(record: PluginData, request: AccessRequest | None) -> tuple[Review, ...]:
    """The reviews the record counts, from the latest request when it has them all, else from the kept facts."""
    count = record.reviews_count
    if request is not None and len(request.reviews) >= count:
        return tuple(request.reviews[:count])
    kept = record.facts.reviews if record.facts is not None else ()
    return tuple(kept[:count])


def _pick(kept: datetime | None, latest: datetime | None) -> datetime | None:
    return kept if kept is not None else latest


def _pick_count(kept: int | None, request: AccessRequest | None) -> int | None:
    return kept if kept is not None else (request.approvals_required if request is not None else None)


def request_view(
    request_id: str,
    record: PluginData,
    request: AccessRequest | None,
    *,
    now: datetime,
    cluster: str = "",
    web_proxy_url: str | None = None,
) -> RequestView:
    """The view of the request as the record shows it at `now` (`cluster` when the record kept none)."""
    facts = record.facts or Facts()
    if facts.reviewers:
        reviewers = tuple(ReviewerView(name, username or None) for name, username in facts.reviewers)
    elif request is not None:
        reviewers = tuple(ReviewerView(name) for name in request.suggested_reviewers)
    else:
        reviewers = ()
    resources = tuple(resource_from_id(rid, facts.friendly_names.get(rid, "")) for rid in record.resources)
    return RequestView(
        request_id=request_id,
        requester=record.user,
        roles=record.roles,
        now=now,
        resolution=record.resolution,
        cluster=facts.cluster or cluster,
        resources=resources,
        logins_by_role=dict(record.logins_by_role),
        reason=record.request_reason,
        suggested_reviewers=reviewers,
        reviews=counted_reviews(record, request),
        approvals_required=_pick_count(facts.approvals_required, request),
        resolve_reason=record.resolve_reason,
        created=_pick(facts.created, request.created if request is not None else None),
        access_start=_pick(facts.access_start, request.assume_start_time if request is not None else None),
        access_expires=_pick(facts.access_expires, request.expires if request is not None else None),
        request_expires=_pick(facts.request_expires, request.expiry if request is not None else None),
        link=request_link(web_proxy_url, request_id) if web_proxy_url else None,
    )
