"""Teleport's answers to a review turned into texts for the reviewer, and the reason dialog's definition."""

from __future__ import annotations

from typing import Any, Final

from sidecar.domain.errors import (
    AccessDenied,
    AlreadyExists,
    ClickRefused,
    NotFound,
    SidecarError,
    TransientError,
    Unauthorized,
    Unimplemented,
)
from sidecar.review.settings import ReasonMode
from sidecar.review.texts import (
    ALREADY_RESOLVED,
    ALREADY_REVIEWED,
    AUTHOR_UNKNOWN,
    ERROR,
    LONG_TERM,
    MFA_REQUIRED,
    NOT_ALLOWED,
    PLUGIN_NOT_ALLOWED,
    REQUEST_GONE,
    SELF_REVIEW,
    SERVER_TOO_OLD,
    UNCERTAIN,
    Outcome,
    refused,
    shown,
)

__all__ = ["CALLBACK_ID", "REASON_FIELD", "REASON_MAX", "explain_submit_error", "reason_dialog"]

CALLBACK_ID: Final = "teleport-review"
REASON_FIELD: Final = "reason"
REASON_MAX: Final = 1000

# Auth's AccessDenied texts (lib/auth, lib/services), lower-cased, that say more than "not allowed".
_ACCESS_DENIED: Final = (
    ("mfa", Outcome.MFA_REQUIRED),  # "admin-level API request requires MFA verification"
    ("on behalf of", Outcome.SERVER_TOO_OLD),  # an Auth without field 12: "cannot submit reviews on behalf of"
    ("has been already", Outcome.ALREADY_RESOLVED),  # "the access request has been already approved"
    ("own request", Outcome.SELF_REVIEW),  # "user cannot review their own request"
    ("could not be fetched", Outcome.AUTHOR_UNKNOWN),  # the author is no local or synced user
    ("long-term", Outcome.LONG_TERM),  # "cannot review long-term request"
)


def explain_submit_error(exc: SidecarError, *, user: str, request_id: str) -> ClickRefused:
    """The refusal to show for the error SubmitAccessReview answered with (the error itself goes to the log)."""
    rid, who = shown(request_id), shown(user)
    detail = str(exc)
    if isinstance(exc, AlreadyExists):
        return refused(Outcome.ALREADY_REVIEWED, ALREADY_REVIEWED.format(user=who, rid=rid), detail=detail)
    if isinstance(exc, Unimplemented):
        return refused(Outcome.SERVER_TOO_OLD, SERVER_TOO_OLD, detail=detail)
    if isinstance(exc, NotFound):
        return refused(Outcome.REQUEST_GONE, REQUEST_GONE.format(rid=rid), detail=detail)
    if isinstance(exc, AccessDenied):
        lowered = detail.lower()
        outcome = next((o for needle, o in _ACCESS_DENIED if needle in lowered), Outcome.NOT_ALLOWED)
        texts = {
            Outcome.MFA_REQUIRED: MFA_REQUIRED,
            Outcome.SERVER_TOO_OLD: SERVER_TOO_OLD,
            Outcome.ALREADY_RESOLVED: ALREADY_RESOLVED,
            Outcome.SELF_REVIEW: SELF_REVIEW,
            Outcome.AUTHOR_UNKNOWN: AUTHOR_UNKNOWN,
            Outcome.LONG_TERM: LONG_TERM,
            Outcome.NOT_ALLOWED: NOT_ALLOWED,
        }
        return refused(outcome, texts[outcome].format(user=who, rid=rid), detail=detail)
    if isinstance(exc, Unauthorized):
        return refused(Outcome.PLUGIN_NOT_ALLOWED, PLUGIN_NOT_ALLOWED, detail=detail)
    if isinstance(exc, TransientError):
        # A timeout may come after Auth applied the review: do not claim that nothing was submitted.
        return refused(Outcome.UNAVAILABLE, UNCERTAIN, detail=detail, submitted_nothing=False)
    return refused(Outcome.ERROR, ERROR, detail=detail)


def reason_dialog(*, action: str, request_id: str, teleport_user: str, mode: ReasonMode, state: str) -> dict[str, Any]:
    """The interactive dialog asking for the review's reason (titles and labels within Mattermost's limits)."""
    verb = "Approve" if action == "approve" else "Deny"
    need = "required" if mode is ReasonMode.REQUIRED else "optional"
    return {
        "callback_id": CALLBACK_ID,
        "title": f"{verb} access request",
        "introduction_text": (
            f"You are reviewing access request {shown(request_id)} as Teleport user {shown(teleport_user)}. "
            f"The reason ({need}) is recorded with your review in Teleport and shown in the thread."
        ),
        "elements": [
            {
                "display_name": "Reason",
                "name": REASON_FIELD,
                "type": "textarea",
                "optional": mode is not ReasonMode.REQUIRED,
                "max_length": REASON_MAX,
                "placeholder": "Why?",
            }
        ],
        "submit_label": verb,
        "notify_on_cancel": False,
        "state": state,
    }
