"""`AccessMonitoringRulesService` semantics over the rule store: RBAC first, then validation, storage and events.

Teleport's service checks the caller's verbs on `access_monitoring_rule` before anything else, then its storage
layer validates the rule (so a bad rule from a caller without the verbs is a PermissionDenied, not an
InvalidArgument). Every successful write publishes one watch event; a failed one publishes nothing.

Verbs (all of them are required): Create `create`; Update `update`; Upsert `create` and `update`; Get `read`;
Delete `delete`; List and ListWithFilter `read` and `list`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sidecar.teleport.wire import access_monitoring_rules_pb2 as amr_pb2
from sidecar.teleport.wire import access_monitoring_rules_service_pb2 as amr_service_pb2

from .rbac import Caller, Policy
from .rule_store import MATCH_ALL, RuleFilter, RuleStore
from .rule_validation import KIND_ACCESS_MONITORING_RULE, RULE_VERSION, ConditionCheck, validate_rule
from .seed import MonitoringRuleDef
from .watch import Fanout

Rule = amr_pb2.AccessMonitoringRule


class AccessMonitoringRules:
    """The rules of one fake cluster as its RPCs and its test face see them."""

    def __init__(
        self,
        policy: Policy,
        fanout: Fanout,
        clock: Callable[[], datetime],
        condition_error: ConditionCheck,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._policy = policy
        self._fanout = fanout
        self._condition_error = condition_error
        self._on_change = on_change  # wakes the expiry task when a rule with a TTL is written
        self.store = RuleStore(clock)
        #: Test switch: ListAccessMonitoringRulesWithFilter ignores its filter, as Teleport does when its cache is
        #: unhealthy and the call falls back to the unfiltered upstream list (clients must filter again).
        self.ignore_filter = False

    # ----------------------------------------------------------------- RPCs (the caller's verbs are checked)

    def create(self, caller: Caller, rule: Rule) -> Rule:
        """CreateAccessMonitoringRule."""
        self._require(caller, "create")
        return self._write(self.store.create, rule)

    def update(self, caller: Caller, rule: Rule) -> Rule:
        """UpdateAccessMonitoringRule (unconditional: the revision sent is not compared)."""
        self._require(caller, "update")
        return self._write(self.store.update, rule)

    def upsert(self, caller: Caller, rule: Rule) -> Rule:
        """UpsertAccessMonitoringRule."""
        self._require(caller, "create", "update")
        return self._write(self.store.upsert, rule)

    def get(self, caller: Caller, name: str) -> Rule:
        """GetAccessMonitoringRule."""
        self._require(caller, "read")
        return self.store.get(name)

    def delete(self, caller: Caller, name: str) -> None:
        """DeleteAccessMonitoringRule."""
        self._require(caller, "delete")
        self.remove(name)

    def list_page(
        self, caller: Caller, request: amr_service_pb2.ListAccessMonitoringRulesRequest
    ) -> amr_service_pb2.ListAccessMonitoringRulesResponse:
        """ListAccessMonitoringRules: one page in name order."""
        self._require(caller, "read", "list")
        rules, token = self.store.page(request.page_size, request.page_token)
        return amr_service_pb2.ListAccessMonitoringRulesResponse(rules=rules, next_page_token=token)

    def list_filtered_page(
        self, caller: Caller, request: amr_service_pb2.ListAccessMonitoringRulesWithFilterRequest
    ) -> amr_service_pb2.ListAccessMonitoringRulesWithFilterResponse:
        """ListAccessMonitoringRulesWithFilter: one page of the matching rules in name order."""
        self._require(caller, "read", "list")
        rule_filter = MATCH_ALL if self.ignore_filter else RuleFilter.from_request(request)
        rules, token = self.store.page(request.page_size, request.page_token, rule_filter)
        return amr_service_pb2.ListAccessMonitoringRulesWithFilterResponse(rules=rules, next_page_token=token)

    # ----------------------------------------------------------------- test face (no RBAC; validated, published)

    def put(self, rule: Rule) -> Rule:
        """Upsert with validation and a PUT event, as an admin would (seed and admin API)."""
        return self._write(self.store.upsert, rule)

    def remove(self, name: str) -> None:
        """Delete and publish the DELETE; NotFound when absent (also how a TTL expiry ends)."""
        self.store.delete(name)
        self._fanout.publish_rule_delete(name)

    def sweep(self) -> list[str]:
        """Delete the rules past their `metadata.expires`, publishing a DELETE for each; their names."""
        names = []
        for rule in self.store.sweep():
            self._fanout.publish_rule_delete(rule.metadata.name)
            names.append(rule.metadata.name)
        return names

    # ----------------------------------------------------------------- helpers

    def _require(self, caller: Caller, *verbs: str) -> None:
        self._policy.require(caller, KIND_ACCESS_MONITORING_RULE, *verbs)

    def _write(self, store_write: Callable[[Rule], Rule], rule: Rule) -> Rule:
        validate_rule(rule, self._condition_error)
        stored = store_write(rule)
        self._fanout.publish_rule_put(stored)
        if stored.metadata.HasField("expires"):
            self._on_change()
        return stored


def rule_from_def(rule_def: MonitoringRuleDef) -> amr_pb2.AccessMonitoringRule:
    """The rule a seed entry describes, as a client would send it (no revision)."""
    rule = amr_pb2.AccessMonitoringRule(kind=KIND_ACCESS_MONITORING_RULE, version=RULE_VERSION)
    rule.metadata.SetInParent()
    rule.metadata.name = rule_def.name
    rule.metadata.description = rule_def.description
    rule.metadata.labels.update(rule_def.labels)
    spec = rule.spec
    spec.SetInParent()
    spec.subjects.extend(rule_def.subjects)
    spec.states.extend(rule_def.states)
    spec.condition = rule_def.condition
    spec.desired_state = rule_def.desired_state
    if rule_def.notification is not None:
        spec.notification.SetInParent()  # present even with an empty name (which validation then refuses)
        spec.notification.name = rule_def.notification[0]
        spec.notification.recipients.extend(rule_def.notification[1])
    if rule_def.automatic_review is not None:
        spec.automatic_review.SetInParent()
        spec.automatic_review.integration, spec.automatic_review.decision = rule_def.automatic_review
    return rule
