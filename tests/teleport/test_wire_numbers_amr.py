"""The access monitoring rule wire (resource, service, watch event) pinned to Teleport 18.0's field numbers.

The numbers come from Teleport's own protos (docs: access-monitoring-rules.md §1-§3); the sidecar and the fake
Auth both rely on them, so a slip in our minimal .proto files must fail here rather than on a real cluster.
"""

from __future__ import annotations

import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from sidecar.teleport.wire import (
    access_monitoring_rules_pb2 as amr_pb2,
)
from sidecar.teleport.wire import (
    access_monitoring_rules_service_pb2 as amr_service_pb2,
)
from sidecar.teleport.wire import (
    event_pb2,
    header_metadata_pb2,
    types_pb2,
    users_service_pb2,
    wrappers_pb2,
)

AMR_PACKAGE = "teleport.accessmonitoringrules.v1"
SERVICE = f"{AMR_PACKAGE}.AccessMonitoringRulesService"


@pytest.mark.parametrize(
    ("message", "field", "number"),
    [
        (amr_pb2.AccessMonitoringRule, "metadata", 1),
        (amr_pb2.AccessMonitoringRule, "kind", 2),
        (amr_pb2.AccessMonitoringRule, "sub_kind", 3),
        (amr_pb2.AccessMonitoringRule, "version", 4),
        (amr_pb2.AccessMonitoringRule, "spec", 5),
        (amr_pb2.AccessMonitoringRuleSpec, "subjects", 1),
        (amr_pb2.AccessMonitoringRuleSpec, "states", 2),
        (amr_pb2.AccessMonitoringRuleSpec, "condition", 3),
        (amr_pb2.AccessMonitoringRuleSpec, "notification", 4),
        (amr_pb2.AccessMonitoringRuleSpec, "automatic_review", 6),
        (amr_pb2.AccessMonitoringRuleSpec, "desired_state", 7),
        (amr_pb2.Notification, "name", 1),
        (amr_pb2.Notification, "recipients", 2),
        (amr_pb2.AutomaticReview, "integration", 1),
        (amr_pb2.AutomaticReview, "decision", 2),
        (header_metadata_pb2.Metadata, "name", 1),
        (header_metadata_pb2.Metadata, "namespace", 2),
        (header_metadata_pb2.Metadata, "description", 3),
        (header_metadata_pb2.Metadata, "labels", 5),
        (header_metadata_pb2.Metadata, "expires", 6),
        (header_metadata_pb2.Metadata, "revision", 8),
        (amr_service_pb2.CreateAccessMonitoringRuleRequest, "rule", 1),
        (amr_service_pb2.UpdateAccessMonitoringRuleRequest, "rule", 1),
        (amr_service_pb2.UpsertAccessMonitoringRuleRequest, "rule", 1),
        (amr_service_pb2.GetAccessMonitoringRuleRequest, "name", 1),
        (amr_service_pb2.DeleteAccessMonitoringRuleRequest, "name", 1),
        (amr_service_pb2.ListAccessMonitoringRulesRequest, "page_size", 1),
        (amr_service_pb2.ListAccessMonitoringRulesRequest, "page_token", 2),
        (amr_service_pb2.ListAccessMonitoringRulesResponse, "rules", 1),
        (amr_service_pb2.ListAccessMonitoringRulesResponse, "next_page_token", 2),
        (amr_service_pb2.ListAccessMonitoringRulesWithFilterRequest, "page_size", 1),
        (amr_service_pb2.ListAccessMonitoringRulesWithFilterRequest, "page_token", 2),
        (amr_service_pb2.ListAccessMonitoringRulesWithFilterRequest, "subjects", 3),
        (amr_service_pb2.ListAccessMonitoringRulesWithFilterRequest, "notification_name", 4),
        (amr_service_pb2.ListAccessMonitoringRulesWithFilterRequest, "automatic_review_name", 6),
        (amr_service_pb2.ListAccessMonitoringRulesWithFilterResponse, "rules", 1),
        (amr_service_pb2.ListAccessMonitoringRulesWithFilterResponse, "next_page_token", 2),
        (event_pb2.Event, "Type", 1),
        (event_pb2.Event, "ResourceHeader", 2),
        (event_pb2.Event, "WatchStatus", 43),
        (event_pb2.Event, "AccessMonitoringRule", 54),
        (types_pb2.ResourceHeader, "Kind", 1),
        (types_pb2.ResourceHeader, "Version", 3),
        (types_pb2.ResourceHeader, "Metadata", 4),
        (types_pb2.Metadata, "Name", 1),
        (types_pb2.Metadata, "Namespace", 2),
        (types_pb2.WatchStatusV1, "Spec", 5),
        (types_pb2.WatchStatusSpecV1, "Kinds", 1),
        (types_pb2.WatchKind, "Kind", 1),
        (types_pb2.UserV2, "Kind", 1),
        (types_pb2.UserV2, "Version", 3),
        (types_pb2.UserV2, "Metadata", 4),
        (types_pb2.UserV2, "Spec", 5),
        (types_pb2.UserSpecV2, "Traits", 5),
        (wrappers_pb2.LabelValues, "Values", 1),
        (wrappers_pb2.StringValues, "Values", 1),
        (users_service_pb2.GetUserRequest, "name", 1),
        (users_service_pb2.GetUserRequest, "current_user", 2),
        (users_service_pb2.GetUserRequest, "with_secrets", 3),
        (users_service_pb2.GetUserResponse, "user", 1),
    ],
)
def test_field_numbers_match_teleport(message: type[Message], field: str, number: int) -> None:
    assert message.DESCRIPTOR.fields_by_name[field].number == number


@pytest.mark.parametrize(
    ("message", "field", "type_name"),
    [
        (amr_pb2.AccessMonitoringRule, "metadata", "teleport.header.v1.Metadata"),
        (amr_pb2.AccessMonitoringRule, "spec", f"{AMR_PACKAGE}.AccessMonitoringRuleSpec"),
        (amr_pb2.AccessMonitoringRuleSpec, "notification", f"{AMR_PACKAGE}.Notification"),
        (amr_pb2.AccessMonitoringRuleSpec, "automatic_review", f"{AMR_PACKAGE}.AutomaticReview"),
        (event_pb2.Event, "AccessMonitoringRule", f"{AMR_PACKAGE}.AccessMonitoringRule"),
        (event_pb2.Event, "ResourceHeader", "types.ResourceHeader"),
        (types_pb2.UserSpecV2, "Traits", "wrappers.LabelValues"),
        (users_service_pb2.GetUserResponse, "user", "types.UserV2"),
    ],
)
def test_message_types_match_teleport(message: type[Message], field: str, type_name: str) -> None:
    message_type = message.DESCRIPTOR.fields_by_name[field].message_type
    assert message_type is not None
    assert message_type.full_name == type_name


def test_scalar_types_match_teleport() -> None:
    # page_size is an int64 on the wire; a narrower type would still decode but would differ in the descriptor.
    for message in (
        amr_service_pb2.ListAccessMonitoringRulesRequest,
        amr_service_pb2.ListAccessMonitoringRulesWithFilterRequest,
    ):
        assert message.DESCRIPTOR.fields_by_name["page_size"].type == FieldDescriptor.TYPE_INT64
    rule = amr_pb2.AccessMonitoringRuleSpec(subjects=["a", "b"], states=["c"])
    assert (list(rule.subjects), list(rule.states)) == (["a", "b"], ["c"])


def test_event_rule_is_in_the_resource_oneof() -> None:
    field = event_pb2.Event.DESCRIPTOR.fields_by_name["AccessMonitoringRule"]
    assert field.containing_oneof is not None
    assert field.containing_oneof.name == "Resource"


def test_removed_fields_stay_reserved() -> None:
    # Teleport removed automatic_approval (5) and automatic_approval_name (5); reusing 5 would misread old data.
    assert 5 not in amr_pb2.AccessMonitoringRuleSpec.DESCRIPTOR.fields_by_number
    assert 5 not in amr_service_pb2.ListAccessMonitoringRulesWithFilterRequest.DESCRIPTOR.fields_by_number
    assert not {4, 7} & set(header_metadata_pb2.Metadata.DESCRIPTOR.fields_by_number)


def test_method_paths_match_teleport() -> None:
    service = amr_service_pb2.DESCRIPTOR.services_by_name["AccessMonitoringRulesService"]
    assert service.full_name == SERVICE
    methods = {
        "CreateAccessMonitoringRule": ("CreateAccessMonitoringRuleRequest", "AccessMonitoringRule"),
        "UpdateAccessMonitoringRule": ("UpdateAccessMonitoringRuleRequest", "AccessMonitoringRule"),
        "UpsertAccessMonitoringRule": ("UpsertAccessMonitoringRuleRequest", "AccessMonitoringRule"),
        "GetAccessMonitoringRule": ("GetAccessMonitoringRuleRequest", "AccessMonitoringRule"),
        "DeleteAccessMonitoringRule": ("DeleteAccessMonitoringRuleRequest", "google.protobuf.Empty"),
        "ListAccessMonitoringRules": ("ListAccessMonitoringRulesRequest", "ListAccessMonitoringRulesResponse"),
        "ListAccessMonitoringRulesWithFilter": (
            "ListAccessMonitoringRulesWithFilterRequest",
            "ListAccessMonitoringRulesWithFilterResponse",
        ),
    }
    assert set(service.methods_by_name) == set(methods)
    for name, (request, response) in methods.items():
        method = service.methods_by_name[name]
        assert f"/{SERVICE}/{name}" == f"/{method.full_name.rsplit('.', 1)[0]}/{method.name}"
        assert method.input_type.full_name == f"{AMR_PACKAGE}.{request}"
        expected = response if "." in response else f"{AMR_PACKAGE}.{response}"
        assert method.output_type.full_name == expected
        assert not method.client_streaming and not method.server_streaming
    get_user = users_service_pb2.DESCRIPTOR.services_by_name["UsersService"].methods_by_name["GetUser"]
    assert get_user.full_name == "teleport.users.v1.UsersService.GetUser"
