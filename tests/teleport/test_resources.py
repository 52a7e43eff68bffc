"""Teleport's resource YAML ↔ access monitoring rule protos (sidecar/teleport/resources.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml

from sidecar.domain.errors import ConfigError
from sidecar.teleport.resources import (
    access_monitoring_rule_from_dict,
    access_monitoring_rule_to_dict,
    access_monitoring_rules_from_yaml,
    yaml_documents,
)
from sidecar.teleport.wire import access_monitoring_rules_pb2 as amr_pb2

# The example of access-monitoring-rules.md §8.6, plus every other field.
FULL = """\
kind: access_monitoring_rule
version: v1
sub_kind: extra
metadata:
  name: mm-dev-requests
  namespace: default
  description: dev requests
  labels: {team: llama}
  expires: "2030-01-02T03:04:05Z"
  revision: abc
spec:
  subjects: [access_request]
  states: [approved]
  condition: 'access_request.spec.roles.contains("dev")'
  notification: {name: mattermost, recipients: ["team-llama/channel-llama", "reviewer1@example.com"]}
  automatic_review: {integration: builtin, decision: APPROVED}
  desired_state: reviewed
"""


def test_every_field_is_read_into_the_proto() -> None:
    (rule,) = access_monitoring_rules_from_yaml(FULL, "rule.yaml")
    expected = amr_pb2.AccessMonitoringRule(kind="access_monitoring_rule", version="v1", sub_kind="extra")
    meta = expected.metadata
    meta.name, meta.namespace, meta.description, meta.revision = "mm-dev-requests", "default", "dev requests", "abc"
    meta.labels["team"] = "llama"
    meta.expires.FromDatetime(datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC))
    spec = expected.spec
    spec.subjects.append("access_request")
    spec.states.append("approved")
    spec.condition = 'access_request.spec.roles.contains("dev")'
    spec.notification.name = "mattermost"
    spec.notification.recipients.extend(["team-llama/channel-llama", "reviewer1@example.com"])
    spec.automatic_review.integration, spec.automatic_review.decision = "builtin", "APPROVED"
    spec.desired_state = "reviewed"
    assert rule == expected


def test_writing_gives_back_the_same_document() -> None:
    doc = yaml.safe_load(FULL)
    assert access_monitoring_rule_to_dict(access_monitoring_rule_from_dict(doc, "x")) == doc


def test_absent_and_empty_fields_stay_apart() -> None:
    doc = {"kind": "access_monitoring_rule", "version": "v1", "metadata": {"name": "n"}, "spec": {"notification": {}}}
    rule = access_monitoring_rule_from_dict(doc, "x")
    assert rule.spec.HasField("notification") and not rule.spec.HasField("automatic_review")
    assert access_monitoring_rule_to_dict(rule) == doc
    bare = access_monitoring_rule_from_dict({"kind": "access_monitoring_rule"}, "x")
    assert not bare.HasField("metadata") and not bare.HasField("spec")
    assert access_monitoring_rule_to_dict(bare) == {"kind": "access_monitoring_rule"}
    nulls = access_monitoring_rule_from_dict({"spec": {"notification": None, "subjects": None}}, "x")
    assert not nulls.spec.HasField("notification") and list(nulls.spec.subjects) == []


def test_an_unquoted_timestamp_is_read_too() -> None:
    (rule,) = access_monitoring_rules_from_yaml(FULL.replace('"2030-01-02T03:04:05Z"', "2030-01-02T03:04:05Z"), "f")
    assert rule.metadata.expires.ToDatetime(tzinfo=UTC) == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("spec: {condition: true}", "f: spec.condition: expected a string, got a boolean (quote it: 'true')"),
        ("spec: {subjects: access_request}", "f: spec.subjects: expected a list of strings, got 'access_request'"),
        ("spec: {notification: {name: m, recipient: [a]}}", "f: unknown field(s) spec.notification.recipient"),
        ("metadata: {name: n, labels: {a: 1}}", "f: metadata.labels: expected string keys and values, got 'a': 1"),
        ("metadata: {expires: soon}", "f: metadata.expires: expected an RFC 3339 time, got 'soon'"),
        ("spec: [1]", "f: spec: expected a mapping, got a list"),
        ("kind: access_monitoring_rule\nextra: 1", "f: unknown field(s) extra"),
    ],
)
def test_wrong_shapes_are_config_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        access_monitoring_rule_from_dict(yaml.safe_load(text), "f")
    assert str(info.value).startswith(message)


def test_streams_skip_empty_documents_and_check_kinds() -> None:
    assert yaml_documents("---\n---\nkind: a\n---\n", "f") == [{"kind": "a"}]
    with pytest.raises(ConfigError, match=r"^f: document 1 is a list, expected a resource"):
        yaml_documents("- a\n", "f")
    with pytest.raises(ConfigError, match=r"^f: invalid YAML"):
        yaml_documents("a: [", "f")
    with pytest.raises(ConfigError, match=r"^f: document 2: kind is 'role', expected 'access_monitoring_rule'"):
        access_monitoring_rules_from_yaml(FULL + "---\nkind: role\n", "f")
