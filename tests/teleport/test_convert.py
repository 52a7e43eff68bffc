"""Protobuf ↔ domain conversion."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from google.protobuf import timestamp_pb2

from sidecar.domain.errors import ConversionError
from sidecar.domain.model import AccessRequest, EventOp, RequestEvent, RequestState, Review
from sidecar.teleport.convert import (
    GO_ZERO_TIME,
    GO_ZERO_TIME_SECONDS,
    access_request_from_proto,
    access_request_to_proto,
    datetime_to_timestamp,
    request_event_from_proto,
    request_event_to_proto,
    resource_id_string,
    state_from_proto,
    timestamp_to_datetime,
)
from sidecar.teleport.wire import event_pb2, types_pb2, wrappers_pb2

CREATED = datetime(2026, 11, 26, 4, 0, 0, 123456, tzinfo=UTC)


def _wire_request() -> types_pb2.AccessRequestV3:
    spec = types_pb2.AccessRequestSpecV3(
        User="requester@example.com",
        Roles=["editor", "auditor"],
        State=types_pb2.APPROVED,
        Created=timestamp_pb2.Timestamp(seconds=int(CREATED.timestamp()), nanos=123456789),
        Expires=timestamp_pb2.Timestamp(seconds=GO_ZERO_TIME_SECONDS),
        RequestReason="deploy *now*",
        ResolveReason="ok",
        SuggestedReviewers=["reviewer@example.com"],
        Reviews=[
            types_pb2.AccessReview(
                Author="reviewer@example.com",
                ProposedState=types_pb2.APPROVED,
                Reason="fine",
                Created=timestamp_pb2.Timestamp(seconds=int(CREATED.timestamp()) + 60),
            ),
            types_pb2.AccessReview(Author="bot", ProposedState=types_pb2.DENIED),
        ],
        RequestedResourceIDs=[
            types_pb2.ResourceID(ClusterName="c.example", Kind="node", Name="uuid-1"),
            types_pb2.ResourceID(ClusterName="c.example", Kind="kube_cluster", Name="k8s", SubResourceName="ns/pod"),
        ],
        SystemAnnotations=wrappers_pb2.LabelValues(
            Values={"mattermost": wrappers_pb2.StringValues(Values=["team/chan", "a@b.c"])}
        ),
    )
    return types_pb2.AccessRequestV3(
        Kind="access_request", Version="v3", Metadata=types_pb2.Metadata(Name="req-1", Namespace="default"), Spec=spec
    )


def test_access_request_from_proto() -> None:
    request = access_request_from_proto(_wire_request())
    assert request.id == "req-1"
    assert request.user == "requester@example.com"
    assert request.roles == ("editor", "auditor")
    assert request.state is RequestState.APPROVED
    assert (request.request_reason, request.resolve_reason) == ("deploy *now*", "ok")
    assert request.suggested_reviewers == ("reviewer@example.com",)
    assert request.created == CREATED
    assert request.expires is None  # Go zero time means unset
    assert request.resources == ("/c.example/node/uuid-1", "/c.example/kube_cluster/k8s/ns/pod")
    assert request.system_annotations == {"mattermost": ("team/chan", "a@b.c")}
    assert request.reviews == (
        Review("reviewer@example.com", RequestState.APPROVED, "fine", datetime.fromtimestamp(
            int(CREATED.timestamp()) + 60, UTC)),
        Review("bot", RequestState.DENIED, "", GO_ZERO_TIME),
    )


def test_absent_timestamps_are_unset() -> None:
    wire = types_pb2.AccessRequestV3(Kind="access_request", Metadata=types_pb2.Metadata(Name="x"))
    request = access_request_from_proto(wire)
    assert (request.created, request.expires, request.state) == (None, None, RequestState.NONE)


def test_round_trip_through_proto() -> None:
    original = AccessRequest(
        id="req-2",
        user="u",
        roles=("r",),
        state=RequestState.PENDING,
        request_reason="because",
        suggested_reviewers=("s",),
        reviews=(Review("a", RequestState.DENIED, "no", CREATED),),
        system_annotations={"k": ("v1", "v2")},
        resources=("/c/node/n1", "/c/db/d/sub"),
        created=CREATED,
        expires=None,
    )
    wire = access_request_to_proto(original)
    assert (wire.Kind, wire.Version, wire.Metadata.Namespace) == ("access_request", "v3", "default")
    assert wire.Spec.Expires.seconds == GO_ZERO_TIME_SECONDS  # written like a Go sender writes a zero time
    assert access_request_from_proto(wire) == original


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, (GO_ZERO_TIME_SECONDS, 0)), (CREATED, (int(CREATED.timestamp()), 123456000)),
     (datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC), (-1, 0)), (datetime(2000, 1, 1), (946684800, 0))],
)
def test_datetime_to_timestamp(value: datetime | None, expected: tuple[int, int]) -> None:
    ts = datetime_to_timestamp(value)
    assert (ts.seconds, ts.nanos) == expected


def test_timestamp_to_datetime() -> None:
    assert timestamp_to_datetime(None) is None
    assert timestamp_to_datetime(timestamp_pb2.Timestamp(seconds=GO_ZERO_TIME_SECONDS)) is None
    assert timestamp_to_datetime(timestamp_pb2.Timestamp(seconds=0)) == datetime(1970, 1, 1, tzinfo=UTC)


def test_resource_id_string() -> None:
    assert resource_id_string(types_pb2.ResourceID(ClusterName="c", Kind="app", Name="grafana")) == "/c/app/grafana"


def test_unknown_state_and_bad_resources() -> None:
    with pytest.raises(ConversionError, match="unknown access request state 42"):
        state_from_proto(42)
    bad = AccessRequest(id="x", user="u", roles=(), state=RequestState.PENDING, resources=("node/n1",))
    with pytest.raises(ConversionError, match="not /<cluster>/<kind>/<name>"):
        access_request_to_proto(bad)


def test_wrong_kind_or_missing_id() -> None:
    with pytest.raises(ConversionError, match="expected kind 'access_request', got 'role'"):
        access_request_from_proto(types_pb2.AccessRequestV3(Kind="role", Metadata=types_pb2.Metadata(Name="x")))
    with pytest.raises(ConversionError, match="without an id"):
        access_request_from_proto(types_pb2.AccessRequestV3(Kind="access_request"))


def test_events() -> None:
    put = event_pb2.Event(Type=event_pb2.PUT, AccessRequest=_wire_request())
    converted = request_event_from_proto(put)
    assert converted.op is EventOp.PUT and converted.request_id == "req-1"
    assert converted.request == access_request_from_proto(_wire_request())
    header = types_pb2.ResourceHeader(Kind="access_request", Version="v3", Metadata=types_pb2.Metadata(Name="req-9"))
    deleted = request_event_from_proto(event_pb2.Event(Type=event_pb2.DELETE, ResourceHeader=header))
    assert deleted == RequestEvent(op=EventOp.DELETE, request_id="req-9")
    assert request_event_from_proto(request_event_to_proto(deleted)) == deleted
    assert request_event_from_proto(request_event_to_proto(converted)) == converted


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (event_pb2.Event(Type=event_pb2.INIT), "INIT is not an access request change"),
        (event_pb2.Event(Type=event_pb2.PUT), "PUT event carries no resource"),
        (
            event_pb2.Event(Type=event_pb2.PUT, ResourceHeader=types_pb2.ResourceHeader(Kind="role")),
            "PUT event carries ResourceHeader",
        ),
        (
            event_pb2.Event(Type=event_pb2.DELETE, ResourceHeader=types_pb2.ResourceHeader(Kind="role")),
            "DELETE event for 'role'",
        ),
        (
            event_pb2.Event(Type=event_pb2.DELETE, ResourceHeader=types_pb2.ResourceHeader(Kind="access_request")),
            "DELETE event without a request id",
        ),
    ],
)
def test_events_that_are_not_request_changes(event: event_pb2.Event, message: str) -> None:
    with pytest.raises(ConversionError, match=message):
        request_event_from_proto(event)
