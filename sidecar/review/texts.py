"""What the clicker reads, and the outcome names the log line carries, in one place.

Every refusal says that nothing was submitted and what to do next. Values that come from outside (request
ids, user names) go through `render.inert.code`, so they stay inert in Markdown; a value taken from a context
whose signature did not verify is never echoed.
"""

from __future__ import annotations

import enum
from typing import Final

from sidecar.domain.errors import ClickRefused
from sidecar.render.inert import code

__all__ = ["Outcome", "refused", "shown"]


class Outcome(enum.StrEnum):
    """How one click or dialog submission ended (the `outcome` field of its log line)."""

    SUBMITTED = "submitted"
    DIALOG_OPENED = "dialog_opened"
    CANCELLED = "cancelled"
    REASON_MISSING = "reason_missing"
    # the signed context or dialog state
    MALFORMED = "malformed"
    FORGED = "forged"
    UNKNOWN_KEY = "unknown_key"
    EXPIRED = "expired"
    WRONG_CHANNEL = "wrong_channel"
    WRONG_POST = "wrong_post"
    WRONG_USER = "wrong_user"
    REPLAYED = "replayed"
    # Mattermost's trigger id
    TRIGGER_MISSING = "trigger_missing"
    TRIGGER_INVALID = "trigger_invalid"
    TRIGGER_USER_MISMATCH = "trigger_user_mismatch"
    TRIGGER_EXPIRED = "trigger_expired"
    TRIGGER_KEY_MISSING = "trigger_key_missing"
    TRIGGER_KEY_UNAVAILABLE = "trigger_key_unavailable"
    # abuse guards
    RATE_LIMITED = "rate_limited"
    BUSY = "busy"
    # the post, the clicker, the request
    NOT_OUR_POST = "not_our_post"
    CHAT_USER_UNKNOWN = "chat_user_unknown"
    CHAT_USER_DEACTIVATED = "chat_user_deactivated"
    CHAT_USER_BOT = "chat_user_bot"
    REQUEST_GONE = "request_gone"
    REQUEST_RESOLVED = "request_resolved"
    LONG_TERM = "long_term"
    # the binding
    NOT_LINKED = "not_linked"
    MULTIPLE_LINKED = "multiple_linked"
    EMAIL_MISSING = "email_missing"
    EMAIL_UNVERIFIED = "email_unverified"
    EMAIL_NOT_SSO = "email_not_sso"
    EMAIL_DOMAIN = "email_domain"
    EMAIL_CONFLICT = "email_conflict"
    SELF_REVIEW = "self_review"
    # Teleport's answer to the review
    NOT_ALLOWED = "not_allowed"
    ALREADY_REVIEWED = "already_reviewed"
    ALREADY_RESOLVED = "already_resolved"
    SERVER_TOO_OLD = "server_too_old"
    MFA_REQUIRED = "mfa_required"
    AUTHOR_UNKNOWN = "author_unknown"
    PLUGIN_NOT_ALLOWED = "plugin_not_allowed"
    UNAVAILABLE = "unavailable"
    TIMEOUT = "timeout"
    ERROR = "error"

    @property
    def suspicious(self) -> bool:
        """True for outcomes a genuine click through Mattermost does not produce: logged as a warning."""
        return self in _SUSPICIOUS


_SUSPICIOUS: Final = frozenset(
    {
        Outcome.MALFORMED,
        Outcome.FORGED,
        Outcome.UNKNOWN_KEY,
        Outcome.WRONG_CHANNEL,
        Outcome.WRONG_POST,
        Outcome.WRONG_USER,
        Outcome.REPLAYED,
        Outcome.TRIGGER_MISSING,
        Outcome.TRIGGER_INVALID,
        Outcome.TRIGGER_USER_MISMATCH,
        Outcome.NOT_OUR_POST,
        Outcome.CHAT_USER_UNKNOWN,
        Outcome.CHAT_USER_DEACTIVATED,
        Outcome.CHAT_USER_BOT,
    }
)

_NAME_LIMIT: Final = 100
NOTHING: Final = "Nothing was submitted."
IN_TELEPORT: Final = "review it in Teleport instead (the Web UI, or `tsh request review`)"


def shown(value: str) -> str:
    """`value` as an inert inline code span for an ephemeral text."""
    return code(value, _NAME_LIMIT)


def refused(outcome: Outcome, text: str, *, detail: str = "", submitted_nothing: bool = True) -> ClickRefused:
    """The refusal for `outcome`: `text`, then "Nothing was submitted." when that is certain; `detail` is for the
    log only."""
    return ClickRefused(outcome.value, f"{text} {NOTHING}" if submitted_nothing else text, detail=detail)


# --- the signed context and dialog state -----------------------------------------------------------

INVALID_BUTTON: Final = f"This button could not be verified, so it was ignored: {IN_TELEPORT}."
BUTTON_EXPIRED: Final = "These buttons have expired: {how}."
WRONG_PLACE: Final = f"This button does not belong to this message: {IN_TELEPORT}."
DIALOG_INVALID: Final = "This form could not be verified or has expired: click Approve or Deny again."
DIALOG_REPLAYED: Final = "This form was already submitted: click Approve or Deny again to review once more."

# --- Mattermost's trigger id -------------------------------------------------------------------------

TRIGGER_INVALID: Final = (
    "Mattermost's signature on this click could not be verified: click again, and if it keeps failing, "
    "ask your Mattermost admin to check the sidecar's logs."
)
TRIGGER_EXPIRED: Final = "This click arrived too late to be trusted: click again."
TRIGGER_UNAVAILABLE: Final = "The sidecar cannot check Mattermost's signature on clicks now: try again in a minute."
TRIGGER_KEY_MISSING: Final = (
    "This Mattermost server does not publish the key that signs clicks, so the sidecar cannot trust them: "
    f"{IN_TELEPORT}, and ask your admin to see the sidecar's `review.verify_trigger_id` documentation."
)
REPLAYED: Final = "This click was already handled."

# --- abuse guards ------------------------------------------------------------------------------------

RATE_LIMITED: Final = "Too many clicks in a short time: wait a minute, then try again."
BUSY: Final = "The sidecar is handling too many reviews at once: try again in a minute."

# --- the post, the clicker, the request --------------------------------------------------------------

NOT_OUR_POST: Final = f"This message is not one the sidecar posted for this request: {IN_TELEPORT}."
CHAT_USER_UNKNOWN: Final = "Mattermost does not know the account that clicked."
CHAT_USER_DEACTIVATED: Final = "Deactivated Mattermost accounts cannot review access requests."
CHAT_USER_BOT: Final = "Bot accounts cannot review access requests."
REQUEST_GONE: Final = "Access request {rid} no longer exists in Teleport: it was resolved and expired, or was deleted."
REQUEST_RESOLVED: Final = "Access request {rid} is already {state}."
LONG_TERM: Final = (
    "Access request {rid} asks for long-term access, which is reviewed in Teleport only: open it in the Web UI or "
    "run `tsh request review`."
)

# --- the binding -------------------------------------------------------------------------------------

NOT_LINKED_TRAIT: Final = (
    "Your Mattermost account is not linked to a Teleport user: no Teleport user has the trait {trait} set to your "
    "Mattermost user id {uid}. Ask your Teleport admin to add it to your user (or your identity provider's claims), "
    f"or {IN_TELEPORT}."
)
MULTIPLE_LINKED: Final = (
    "Your Mattermost account is linked to {count} Teleport users (trait {trait} = {uid}), so the sidecar cannot tell "
    "which one you are. Ask your Teleport admin to keep the trait on exactly one user."
)
NOT_LINKED_EMAIL: Final = (
    "No Teleport user is named after your Mattermost email address. Ask your Teleport admin to link your account, "
    f"or {IN_TELEPORT}."
)
EMAIL_MISSING: Final = (
    "The sidecar cannot see your Mattermost email address, which reviews here are bound to. Ask your Mattermost admin "
    "to let the bot see email addresses, or " + IN_TELEPORT + "."
)
EMAIL_UNVERIFIED: Final = "Verify your Mattermost email address first: reviews here are bound to verified addresses."
EMAIL_NOT_SSO: Final = f"Only accounts that sign in to Mattermost through SSO can review here: {IN_TELEPORT}."
EMAIL_DOMAIN: Final = f"Reviews here are not enabled for your email domain: {IN_TELEPORT}."
EMAIL_CONFLICT: Final = (
    "The Teleport user named after your email is linked to a different Mattermost account. Ask your Teleport admin "
    "to check the user's trait {trait}."
)
SELF_REVIEW: Final = "You cannot review your own access request {rid}: another reviewer has to approve or deny it."

# --- Teleport's answer -------------------------------------------------------------------------------

SUBMITTED: Final = "Your {verb} of access request {rid} was recorded in Teleport as {user}."
NOT_ALLOWED: Final = (
    "Teleport does not allow {user} to review access request {rid}. If you should be able to, ask your Teleport "
    "admin for a role whose `review_requests` covers the requested roles."
)
ALREADY_REVIEWED: Final = "You ({user}) have already reviewed access request {rid}: Teleport keeps one review per user."
ALREADY_RESOLVED: Final = "Access request {rid} was already resolved."
SERVER_TOO_OLD: Final = (
    "Teleport refused a review sent on your behalf: the cluster may be older than the first version with reviews "
    f"from chat, or the sidecar's role lacks `review_requests.submit_for_users`. For now, {IN_TELEPORT}, and tell "
    "your Teleport admin."
)
MFA_REQUIRED: Final = (
    "Teleport requires MFA for admin actions, which a sidecar with a long-lived identity cannot pass. For now, "
    f"{IN_TELEPORT}, and ask your Teleport admin to run the sidecar under a Machine ID bot."
)
AUTHOR_UNKNOWN: Final = (
    "Teleport cannot load your user {user}: reviews from chat need a local or synced Teleport user. Sign in to "
    "Teleport once or ask your Teleport admin, or " + IN_TELEPORT + "."
)
PLUGIN_NOT_ALLOWED: Final = (
    "The sidecar's Teleport role may not do what reviews from chat need (read users and access requests, submit "
    f"reviews for users). For now, {IN_TELEPORT}, and tell your Teleport admin."
)
UNAVAILABLE: Final = "Teleport or Mattermost did not answer: try again in a minute."
UNCERTAIN: Final = (
    "Teleport did not answer in time, so your review may or may not have been recorded: check the request's thread, "
    "and if your review is not there in a minute, try again."
)
TIMEOUT: Final = (
    "Your review took too long and may or may not have been recorded: check the request's thread before clicking again."
)
ERROR: Final = f"Something went wrong: {IN_TELEPORT}, and ask your admin to check the sidecar's logs."
DIALOG_FAILED: Final = "The reason form could not be opened: click again."

# --- the reason dialog -------------------------------------------------------------------------------

REASON_REQUIRED: Final = "A reason is required."
REASON_TOO_LONG: Final = "Keep the reason under {limit} characters."
