"""Resource requests, ListResources, ListUsers and reviews on behalf of others on the wire, at Teleport's numbers.

Sources: teleport-wire.md §3.4, §3.8 and in-chat-review.md §1.2, §1.3 (Teleport 18's `types.proto`,
`authservice.proto`, `users_service.proto`, and the upstream change that added fields 11/12 of AccessReview,
field 5 of AccessReviewConditions, fields 2/3 of UserFilter and field 24 of AccessRequestSpecV3). The sidecar and
the fake Auth both rely on these numbers, so a slip in our minimal .proto files must fail here.
"""

from __future__ import annotations

import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from sidecar.teleport.wire import authservice_pb2, types_pb2, users_service_pb2


@pytest.mark.parametrize(
    ("message", "field", "number"),
    [
        # Access requests: resources, thresholds, times and kind.
        (types_pb2.AccessRequestSpecV3, "Thresholds", 10),
        (types_pb2.AccessRequestSpecV3, "RoleThresholdMapping", 11),
        (types_pb2.AccessRequestSpecV3, "Reviews", 12),
        (types_pb2.AccessRequestSpecV3, "RequestedResourceIDs", 14),
        (types_pb2.AccessRequestSpecV3, "MaxDuration", 17),
        (types_pb2.AccessRequestSpecV3, "AssumeStartTime", 21),
        (types_pb2.AccessRequestSpecV3, "RequestKind", 24),
        (types_pb2.AccessReviewThreshold, "Name", 1),
        (types_pb2.AccessReviewThreshold, "Filter", 2),
        (types_pb2.AccessReviewThreshold, "Approve", 3),
        (types_pb2.AccessReviewThreshold, "Deny", 4),
        (types_pb2.ThresholdIndexSet, "Indexes", 1),
        (types_pb2.ThresholdIndexSets, "Sets", 1),
        (types_pb2.ResourceID, "ClusterName", 1),
        (types_pb2.ResourceID, "Kind", 2),
        (types_pb2.ResourceID, "Name", 3),
        (types_pb2.ResourceID, "SubResourceName", 4),
        # Reviews on behalf of others.
        (types_pb2.AccessReview, "Author", 1),
        (types_pb2.AccessReview, "ProposedState", 3),
        (types_pb2.AccessReview, "Reason", 4),
        (types_pb2.AccessReview, "Created", 5),
        (types_pb2.AccessReview, "ThresholdIndexes", 7),
        (types_pb2.AccessReview, "SubmittedBy", 11),
        (types_pb2.AccessReview, "submitted_on_behalf_of_author", 12),
        (types_pb2.AccessReviewSubmission, "RequestID", 1),
        (types_pb2.AccessReviewSubmission, "Review", 2),
        (types_pb2.RoleConditions, "Logins", 1),
        (types_pb2.RoleConditions, "ReviewRequests", 15),
        (types_pb2.AccessReviewConditions, "Roles", 1),
        (types_pb2.AccessReviewConditions, "Where", 3),
        (types_pb2.AccessReviewConditions, "PreviewAsRoles", 4),
        (types_pb2.AccessReviewConditions, "SubmitForUsers", 5),
        # ListUsers and its filter.
        (types_pb2.UserFilter, "SearchKeywords", 1),
        (types_pb2.UserFilter, "SkipSystemUsers", 2),
        (types_pb2.UserFilter, "Traits", 3),
        (users_service_pb2.ListUsersRequest, "page_size", 1),
        (users_service_pb2.ListUsersRequest, "page_token", 2),
        (users_service_pb2.ListUsersRequest, "with_secrets", 3),
        (users_service_pb2.ListUsersRequest, "filter", 4),
        (users_service_pb2.ListUsersResponse, "users", 1),
        (users_service_pb2.ListUsersResponse, "next_page_token", 2),
        # ListResources.
        (authservice_pb2.ListResourcesRequest, "ResourceType", 1),
        (authservice_pb2.ListResourcesRequest, "Namespace", 2),
        (authservice_pb2.ListResourcesRequest, "Limit", 3),
        (authservice_pb2.ListResourcesRequest, "StartKey", 4),
        (authservice_pb2.ListResourcesRequest, "Labels", 5),
        (authservice_pb2.ListResourcesRequest, "PredicateExpression", 6),
        (authservice_pb2.ListResourcesRequest, "SearchKeywords", 7),
        (authservice_pb2.ListResourcesRequest, "NeedTotalCount", 9),
        (authservice_pb2.ListResourcesRequest, "UseSearchAsRoles", 11),
        (authservice_pb2.ListResourcesRequest, "UsePreviewAsRoles", 12),
        (authservice_pb2.ListResourcesRequest, "IncludeLogins", 13),
        (authservice_pb2.ListResourcesResponse, "Resources", 1),
        (authservice_pb2.ListResourcesResponse, "NextKey", 2),
        (authservice_pb2.ListResourcesResponse, "TotalCount", 3),
        (authservice_pb2.PaginatedResource, "DatabaseServer", 1),
        (authservice_pb2.PaginatedResource, "AppServer", 2),
        (authservice_pb2.PaginatedResource, "Node", 3),
        (authservice_pb2.PaginatedResource, "KubernetesServer", 7),
        # The resources themselves.
        (types_pb2.ServerV2, "Metadata", 4),
        (types_pb2.ServerV2, "Spec", 5),
        (types_pb2.ServerSpecV2, "Addr", 1),
        (types_pb2.ServerSpecV2, "Hostname", 3),
        (types_pb2.ServerSpecV2, "Version", 7),
        (types_pb2.AppServerV3, "Spec", 5),
        (types_pb2.AppServerSpecV3, "Version", 1),
        (types_pb2.AppServerSpecV3, "Hostname", 2),
        (types_pb2.AppServerSpecV3, "HostID", 3),
        (types_pb2.AppServerSpecV3, "App", 5),
        (types_pb2.AppV3, "Metadata", 4),
        (types_pb2.AppSpecV3, "URI", 1),
        (types_pb2.AppSpecV3, "PublicAddr", 2),
        (types_pb2.DatabaseServerV3, "Spec", 5),
        (types_pb2.DatabaseServerSpecV3, "Version", 6),
        (types_pb2.DatabaseServerSpecV3, "Hostname", 7),
        (types_pb2.DatabaseServerSpecV3, "HostID", 8),
        (types_pb2.DatabaseServerSpecV3, "Database", 12),
        (types_pb2.DatabaseV3, "Metadata", 4),
        (types_pb2.DatabaseSpecV3, "Protocol", 1),
        (types_pb2.DatabaseSpecV3, "URI", 2),
        (types_pb2.KubernetesServerV3, "Spec", 5),
        (types_pb2.KubernetesServerSpecV3, "Version", 1),
        (types_pb2.KubernetesServerSpecV3, "Hostname", 2),
        (types_pb2.KubernetesServerSpecV3, "HostID", 3),
        (types_pb2.KubernetesServerSpecV3, "Cluster", 5),
        (types_pb2.KubernetesClusterV3, "Metadata", 4),
        (types_pb2.Metadata, "Description", 3),
        (types_pb2.Metadata, "Labels", 5),
    ],
)
def test_field_numbers_match_teleport(message: type[Message], field: str, number: int) -> None:
    assert message.DESCRIPTOR.fields_by_name[field].number == number


@pytest.mark.parametrize(
    ("message", "field", "type_name"),
    [
        (types_pb2.AccessRequestSpecV3, "RequestedResourceIDs", "types.ResourceID"),
        (types_pb2.UserFilter, "Traits", "wrappers.LabelValues"),
        (types_pb2.RoleConditions, "ReviewRequests", "types.AccessReviewConditions"),
        (users_service_pb2.ListUsersRequest, "filter", "types.UserFilter"),
        (users_service_pb2.ListUsersResponse, "users", "types.UserV2"),
        (authservice_pb2.PaginatedResource, "Node", "types.ServerV2"),
        (authservice_pb2.PaginatedResource, "AppServer", "types.AppServerV3"),
        (authservice_pb2.PaginatedResource, "DatabaseServer", "types.DatabaseServerV3"),
        (authservice_pb2.PaginatedResource, "KubernetesServer", "types.KubernetesServerV3"),
        (types_pb2.AppServerSpecV3, "App", "types.AppV3"),
        (types_pb2.DatabaseServerSpecV3, "Database", "types.DatabaseV3"),
        (types_pb2.KubernetesServerSpecV3, "Cluster", "types.KubernetesClusterV3"),
    ],
)
def test_message_types_match_teleport(message: type[Message], field: str, type_name: str) -> None:
    message_type = message.DESCRIPTOR.fields_by_name[field].message_type
    assert message_type is not None
    assert message_type.full_name == type_name


def test_scalar_types_match_teleport() -> None:
    review = types_pb2.AccessReview.DESCRIPTOR.fields_by_name
    assert review["SubmittedBy"].type == FieldDescriptor.TYPE_STRING
    assert review["submitted_on_behalf_of_author"].type == FieldDescriptor.TYPE_BOOL
    assert types_pb2.AccessReviewThreshold.DESCRIPTOR.fields_by_name["Approve"].type == FieldDescriptor.TYPE_UINT32
    assert authservice_pb2.ListResourcesRequest.DESCRIPTOR.fields_by_name["Limit"].type == FieldDescriptor.TYPE_INT32
    assert users_service_pb2.ListUsersRequest.DESCRIPTOR.fields_by_name["page_size"].type == FieldDescriptor.TYPE_INT32
    kind = types_pb2.AccessRequestSpecV3.DESCRIPTOR.fields_by_name["RequestKind"].enum_type
    assert kind is not None and kind.full_name == "types.AccessRequestKind"
    assert {v.name: v.number for v in types_pb2.AccessRequestKind.DESCRIPTOR.values} == {
        "UNDEFINED": 0, "SHORT_TERM": 1, "LONG_TERM": 2,
    }


def test_paginated_resource_members_share_one_oneof() -> None:
    fields = authservice_pb2.PaginatedResource.DESCRIPTOR.fields
    assert {f.containing_oneof.name for f in fields if f.containing_oneof is not None} == {"resource"}
    assert len(fields) == 4


def test_reserved_numbers_are_not_reused() -> None:
    # ServerSpecV2 #2 was PublicAddr; DatabaseServerSpecV3 #1-5, 9, 11 moved into DatabaseV3.
    assert 2 not in types_pb2.ServerSpecV2.DESCRIPTOR.fields_by_number
    assert not {1, 2, 3, 4, 5, 9, 11} & set(types_pb2.DatabaseServerSpecV3.DESCRIPTOR.fields_by_number)


def test_method_paths_match_teleport() -> None:
    auth = authservice_pb2.DESCRIPTOR.services_by_name["AuthService"].methods_by_name["ListResources"]
    assert auth.full_name == "proto.AuthService.ListResources"
    assert auth.input_type.full_name == "proto.ListResourcesRequest"
    assert auth.output_type.full_name == "proto.ListResourcesResponse"
    users = users_service_pb2.DESCRIPTOR.services_by_name["UsersService"].methods_by_name["ListUsers"]
    assert users.full_name == "teleport.users.v1.UsersService.ListUsers"
    assert users.input_type.full_name == "teleport.users.v1.ListUsersRequest"
    assert users.output_type.full_name == "teleport.users.v1.ListUsersResponse"
    for method in (auth, users):
        assert not method.client_streaming and not method.server_streaming
