"""The checked-in generated code must match the .proto sources, and the wire must match Teleport's."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf.message import Message

from sidecar.teleport.wire import authservice_pb2, event_pb2, types_pb2, users_service_pb2
from tools import gen_protos


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    produced = gen_protos.generate(tmp_path)
    assert produced, "protoc produced nothing"
    stale = [
        p.name for p in produced if p.read_bytes() != (gen_protos.WIRE / p.name).read_bytes()
    ]
    assert not stale, f"generated code is stale, run `make protos`: {stale}"
    committed = {p.name for p in gen_protos.WIRE.iterdir() if p.name.endswith(gen_protos.GENERATED_SUFFIXES)}
    assert committed == {p.name for p in produced}, "generated files differ from what `make protos` writes"


@pytest.mark.parametrize(
    ("message", "field", "number"),
    [
        (authservice_pb2.PingResponse, "ServerFeatures", 3),
        (authservice_pb2.PingResponse, "ProxyPublicAddr", 4),
        (authservice_pb2.Features, "AdvancedAccessWorkflows", 7),
        (event_pb2.Event, "AccessRequest", 14),
        (event_pb2.Event, "WatchStatus", 43),
        (event_pb2.Event, "ResourceHeader", 2),
        (event_pb2.Event, "AccessMonitoringRule", 54),  # the rest: tests/teleport/test_wire_numbers_amr.py
        (types_pb2.AccessRequestSpecV3, "SuggestedReviewers", 13),
        (types_pb2.AccessRequestSpecV3, "SessionTTL", 18),
        (types_pb2.AccessRequestSpecV3, "ResourceExpiry", 22),
        (types_pb2.AccessReview, "AssumeStartTime", 10),
        (types_pb2.PluginDataUpdateParams, "Expect", 5),
        (users_service_pb2.GetUserResponse, "user", 1),
    ],
)
def test_field_numbers_match_teleport(message: type[Message], field: str, number: int) -> None:
    assert message.DESCRIPTOR.fields_by_name[field].number == number


def test_method_paths_match_teleport() -> None:
    auth = authservice_pb2.DESCRIPTOR.services_by_name["AuthService"]
    assert auth.full_name == "proto.AuthService"
    assert set(auth.methods_by_name) == {
        "Ping", "WatchEvents", "GetPluginData", "UpdatePluginData", "CreateAccessRequestV2",
        "DeleteAccessRequest", "SetAccessRequestState", "SubmitAccessReview", "ListAccessRequests",
        "GetAccessRequestsV2", "GetRole", "ListResources",
    }
    users = users_service_pb2.DESCRIPTOR.services_by_name["UsersService"]
    assert users.full_name == "teleport.users.v1.UsersService"
