"""Teleport's checks on an access monitoring rule before it is stored (`services.ValidateAccessMonitoringRule`).

The checks run in Teleport's order and stop at the first failure, with Teleport's texts, so a client sees the
same InvalidArgument message from the fake as from a real cluster. The condition is parsed only when the subjects
contain `access_request`, as upstream does; the parser is injected (`ConditionCheck`) so this module stays pure.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from sidecar.teleport.wire import access_monitoring_rules_pb2 as amr_pb2

from .errors import BadParameter

KIND_ACCESS_MONITORING_RULE = "access_monitoring_rule"
RULE_VERSION = "v1"
SUBJECT_ACCESS_REQUEST = "access_request"
DECISIONS = ("APPROVED", "DENIED")
#: `types.AccessMonitoringRuleStateReviewed`, or unset.
DESIRED_STATES = ("", "reviewed")

#: Returns the parser's error text for a condition that does not parse, or None when it parses.
ConditionCheck = Callable[[str], str | None]


def go_quote(text: str) -> str:
    """Go's `%q` of a string, close enough for messages (JSON escaping, non-ASCII kept as is)."""
    return json.dumps(text, ensure_ascii=False)


def validate_rule(rule: amr_pb2.AccessMonitoringRule, condition_error: ConditionCheck) -> None:
    """Raise BadParameter (InvalidArgument) with Teleport's message for the first check the rule fails."""
    if rule.kind != KIND_ACCESS_MONITORING_RULE:
        raise BadParameter(f"invalid kind for access monitoring rule: {go_quote(rule.kind)}")
    if not rule.HasField("metadata"):
        raise BadParameter("accessMonitoringRule metadata is missing")
    if rule.version != RULE_VERSION:
        raise BadParameter(f"accessMonitoringRule version {go_quote(rule.version)} is not supported")
    if not rule.HasField("spec"):
        raise BadParameter("accessMonitoringRule spec is missing")
    spec = rule.spec
    if not spec.subjects:
        raise BadParameter("accessMonitoringRule subject is missing")
    if not spec.condition:
        raise BadParameter("accessMonitoringRule condition is missing")
    if spec.HasField("notification") and not spec.notification.name:
        raise BadParameter("accessMonitoringRule notification plugin name is missing")
    if spec.HasField("automatic_review"):
        _check_automatic_review(spec.automatic_review)
    if SUBJECT_ACCESS_REQUEST in spec.subjects:
        problem = condition_error(spec.condition)
        if problem is not None:
            raise BadParameter(f"accessMonitoringRule condition is invalid: {problem}")
        if spec.desired_state not in DESIRED_STATES:
            raise BadParameter(f"accessMonitoringRule desired_state {go_quote(spec.desired_state)} is not supported")
        if not (spec.HasField("notification") or spec.HasField("automatic_review")):
            raise BadParameter(
                'one of notification or automatic_review must be configured if subjects contain "access_request"'
            )
    # Not one of Teleport's checks (whether its backend takes an empty key is unconfirmed): the fake keys rules
    # by name, so it refuses a nameless one instead of storing it under "".
    if not rule.metadata.name:
        raise BadParameter("missing parameter name")


def _check_automatic_review(review: amr_pb2.AutomaticReview) -> None:
    if not review.integration:
        raise BadParameter("accessMonitoringRule automatic_review integration is missing")
    if not review.decision:
        raise BadParameter("accessMonitoringRule automatic_review decision is missing")
    if review.decision not in DECISIONS:
        raise BadParameter(
            f"accessMonitoringRule automatic_review decision {go_quote(review.decision)} is not supported"
        )
