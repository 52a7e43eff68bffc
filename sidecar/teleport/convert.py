"""Protobuf messages ↔ the engine's domain values (sidecar/domain/model.py).

Wire facts applied here (upstream `api/proto/teleport/legacy/types/types.proto` and Go's protobuf conventions):
* a Timestamp that is absent, or holds Go's zero time (seconds == -62135596800), means "unset";
* resource IDs are shown as Teleport's canonical `/<cluster>/<kind>/<name>[/<sub-resource>]`;
* the approvals a request needs come from its thresholds as Teleport evaluates them: a requested role is approved
  when each of its threshold sets (RoleThresholdMapping) has a threshold whose `Approve` count is met (an
  `Approve` of 0 never is), and the request when every role is;
* `wrappers.LabelValues` is Go's `map[string][]string`;
* an access monitoring rule (`teleport.accessmonitoringrules.v1`) arrives whole in a PUT (Event #54) and as a
  bare `ResourceHeader` (#2) in a DELETE; its `kind` must be `access_monitoring_rule` (the Go plugin rejects
  anything else with "expected access_monitoring_rule resource kind").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from google.protobuf import timestamp_pb2

from sidecar.domain.errors import ConversionError
from sidecar.domain.model import (
    AccessRequest,
    EventOp,
    MonitoringRule,
    RequestEvent,
    RequestState,
    Review,
    RuleChange,
)
from sidecar.teleport.wire import access_monitoring_rules_pb2, event_pb2, types_pb2, wrappers_pb2

GO_ZERO_TIME_SECONDS = -62135596800
GO_ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)
KIND_ACCESS_REQUEST = "access_request"
KIND_ACCESS_MONITORING_RULE = "access_monitoring_rule"
ACCESS_REQUEST_VERSION = "v3"
DEFAULT_NAMESPACE = "default"


def timestamp_to_datetime(ts: timestamp_pb2.Timestamp | None) -> datetime | None:
    """An aware UTC datetime, or None for an absent Timestamp or Go's zero time."""
    if ts is None or ts.seconds == GO_ZERO_TIME_SECONDS:
        return None
    return datetime.fromtimestamp(ts.seconds, UTC).replace(microsecond=ts.nanos // 1000)


def datetime_to_timestamp(value: datetime | None) -> timestamp_pb2.Timestamp:
    """A Timestamp for `value`; None becomes Go's zero time, as a Go sender writes it. Naive values count as UTC."""
    if value is None:
        return timestamp_pb2.Timestamp(seconds=GO_ZERO_TIME_SECONDS)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    seconds = delta.days * 86400 + delta.seconds
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=delta.microseconds * 1000)


def state_from_proto(value: int) -> RequestState:
    """types.RequestState number → RequestState. Raises ConversionError for numbers we do not know."""
    try:
        return RequestState[types_pb2.RequestState.Name(value)]  # type: ignore[arg-type]
    except (ValueError, KeyError):
        raise ConversionError(f"unknown access request state {value}") from None


def state_to_proto(state: RequestState) -> types_pb2.RequestState.ValueType:
    """RequestState → types.RequestState number."""
    return types_pb2.RequestState.Value(state.value)


def label_values_to_dict(values: wrappers_pb2.LabelValues) -> dict[str, tuple[str, ...]]:
    """wrappers.LabelValues → {key: (values...)}."""
    return {key: tuple(v.Values) for key, v in values.Values.items()}


def dict_to_label_values(values: Mapping[str, Sequence[str]]) -> wrappers_pb2.LabelValues:
    """{key: [values...]} → wrappers.LabelValues."""
    result = wrappers_pb2.LabelValues()
    for key, items in values.items():
        result.Values[key].Values.extend(items)
    return result


def resource_id_string(rid: types_pb2.ResourceID) -> str:
    """Teleport's canonical resource ID text: `/<cluster>/<kind>/<name>`, plus `/<sub-resource>` when set."""
    text = f"/{rid.ClusterName}/{rid.Kind}/{rid.Name}"
    return f"{text}/{rid.SubResourceName}" if rid.SubResourceName else text


def review_from_proto(review: types_pb2.AccessReview) -> Review:
    """types.AccessReview → Review; an unset creation time becomes Go's zero time (0001-01-01 UTC)."""
    return Review(
        author=review.Author,
        proposed_state=state_from_proto(review.ProposedState),
        reason=review.Reason,
        created=(timestamp_to_datetime(review.Created) if review.HasField("Created") else None) or GO_ZERO_TIME,
        submitted_by=review.SubmittedBy,
    )


def review_to_proto(review: Review) -> types_pb2.AccessReview:
    """Review → types.AccessReview."""
    return types_pb2.AccessReview(
        Author=review.author,
        ProposedState=state_to_proto(review.proposed_state),
        Reason=review.reason,
        Created=datetime_to_timestamp(None if review.created == GO_ZERO_TIME else review.created),
        SubmittedBy=review.submitted_by,
    )


def access_request_from_proto(message: types_pb2.AccessRequestV3) -> AccessRequest:
    """types.AccessRequestV3 → AccessRequest. Raises ConversionError when it is not a usable access request."""
    if message.Kind and message.Kind != KIND_ACCESS_REQUEST:
        raise ConversionError(f"expected kind {KIND_ACCESS_REQUEST!r}, got {message.Kind!r}")
    request_id = message.Metadata.Name
    if not request_id:
        raise ConversionError("access request without an id (Metadata.Name)")
    spec = message.Spec
    return AccessRequest(
        id=request_id,
        user=spec.User,
        roles=tuple(spec.Roles),
        state=state_from_proto(spec.State),
        request_reason=spec.RequestReason,
        resolve_reason=spec.ResolveReason,
        suggested_reviewers=tuple(spec.SuggestedReviewers),
        reviews=tuple(review_from_proto(r) for r in spec.Reviews),
        system_annotations=label_values_to_dict(spec.SystemAnnotations),
        resources=tuple(resource_id_string(r) for r in spec.RequestedResourceIDs),
        created=timestamp_to_datetime(spec.Created) if spec.HasField("Created") else None,
        expires=timestamp_to_datetime(spec.Expires) if spec.HasField("Expires") else None,
        expiry=_access_expiry(message),
        approvals_required=approvals_required(spec),
        max_duration=timestamp_to_datetime(spec.MaxDuration) if spec.HasField("MaxDuration") else None,
        assume_start_time=timestamp_to_datetime(spec.AssumeStartTime) if spec.HasField("AssumeStartTime") else None,
        long_term=spec.RequestKind == types_pb2.LONG_TERM,
    )


def approvals_required(spec: types_pb2.AccessRequestSpecV3) -> int | None:
    """The approvals that resolve a request, counting each approval toward every threshold; None when unknown.

    Per role, each threshold set needs as many approvals as its easiest threshold, and the role as many as its
    hardest set; the request needs what its hardest role does. Unknown: no thresholds or no role mapping, an
    index out of range, a set no approval can satisfy, or a threshold with a filter (only some reviews count).
    """
    thresholds = spec.Thresholds
    if not thresholds or not spec.RoleThresholdMapping:
        return None
    needed = 0
    for sets in spec.RoleThresholdMapping.values():
        for index_set in sets.Sets:
            counts = []
            for index in index_set.Indexes:
                if index >= len(thresholds) or thresholds[index].Filter:
                    return None
                if thresholds[index].Approve:
                    counts.append(thresholds[index].Approve)
            if not counts:
                return None
            needed = max(needed, min(counts))
    return needed or None


def _access_expiry(message: types_pb2.AccessRequestV3) -> datetime | None:
    # Teleport's AccessRequestV3.Expiry(): the resource expiry when set, else the metadata's expiry.
    if message.Spec.HasField("ResourceExpiry"):
        resource_expiry = timestamp_to_datetime(message.Spec.ResourceExpiry)
        if resource_expiry is not None:
            return resource_expiry
    return timestamp_to_datetime(message.Metadata.Expires) if message.Metadata.HasField("Expires") else None


def resource_id_from_string(text: str) -> types_pb2.ResourceID:
    """Teleport's `/<cluster>/<kind>/<name>[/<sub-resource>]` → types.ResourceID; ConversionError otherwise."""
    parts = text.split("/", 4)
    if len(parts) < 4 or parts[0] != "" or not all(parts[1:4]):
        raise ConversionError(f"resource id {text!r} is not /<cluster>/<kind>/<name>")
    sub = parts[4] if len(parts) == 5 else ""
    return types_pb2.ResourceID(ClusterName=parts[1], Kind=parts[2], Name=parts[3], SubResourceName=sub)


def access_request_to_proto(request: AccessRequest) -> types_pb2.AccessRequestV3:
    """AccessRequest → types.AccessRequestV3 with Kind, Version and Namespace filled in as Teleport sends them."""
    spec = types_pb2.AccessRequestSpecV3(
        User=request.user,
        Roles=list(request.roles),
        State=state_to_proto(request.state),
        Created=datetime_to_timestamp(request.created),
        Expires=datetime_to_timestamp(request.expires),
        RequestReason=request.request_reason,
        ResolveReason=request.resolve_reason,
        Reviews=[review_to_proto(r) for r in request.reviews],
        SuggestedReviewers=list(request.suggested_reviewers),
        RequestedResourceIDs=[resource_id_from_string(r) for r in request.resources],
    )
    if request.system_annotations:
        spec.SystemAnnotations.CopyFrom(dict_to_label_values(request.system_annotations))
    if request.expiry is not None:
        spec.ResourceExpiry.CopyFrom(datetime_to_timestamp(request.expiry))
    if request.approvals_required is not None:
        # One threshold every role maps to: the simplest thresholds that need that many approvals.
        spec.Thresholds.add(Name="default", Approve=request.approvals_required, Deny=1)
        for role in request.roles:
            spec.RoleThresholdMapping[role].Sets.add(Indexes=[0])
    if request.max_duration is not None:
        spec.MaxDuration.CopyFrom(datetime_to_timestamp(request.max_duration))
    if request.assume_start_time is not None:
        spec.AssumeStartTime.CopyFrom(datetime_to_timestamp(request.assume_start_time))
    if request.long_term:
        spec.RequestKind = types_pb2.LONG_TERM
    return types_pb2.AccessRequestV3(
        Kind=KIND_ACCESS_REQUEST,
        Version=ACCESS_REQUEST_VERSION,
        Metadata=types_pb2.Metadata(Name=request.id, Namespace=DEFAULT_NAMESPACE),
        Spec=spec,
    )


def request_event_from_proto(event: event_pb2.Event) -> RequestEvent:
    """A PUT or DELETE watch event for an access request → RequestEvent.

    Raises ConversionError for INIT events, other resource kinds and malformed events, so a caller can skip them.
    """
    if event.Type == event_pb2.PUT:
        if not event.HasField("AccessRequest"):
            carried = event.WhichOneof("Resource") or "no resource"
            raise ConversionError(f"PUT event carries {carried}, not an access request")
        request = access_request_from_proto(event.AccessRequest)
        return RequestEvent(op=EventOp.PUT, request_id=request.id, request=request)
    if event.Type == event_pb2.DELETE:
        header = event.ResourceHeader
        if not event.HasField("ResourceHeader") or header.Kind != KIND_ACCESS_REQUEST:
            raise ConversionError(f"DELETE event for {header.Kind or 'an unknown kind'!r}, not an access request")
        if not header.Metadata.Name:
            raise ConversionError("DELETE event without a request id (Metadata.Name)")
        return RequestEvent(op=EventOp.DELETE, request_id=header.Metadata.Name)
    raise ConversionError(f"{event_pb2.Operation.Name(event.Type)} is not an access request change")


def request_event_to_proto(event: RequestEvent) -> event_pb2.Event:
    """RequestEvent → watch Event, as a Teleport Auth server would send it."""
    if event.op is EventOp.PUT:
        if event.request is None:
            raise ConversionError("a PUT event needs the request")
        return event_pb2.Event(Type=event_pb2.PUT, AccessRequest=access_request_to_proto(event.request))
    header = types_pb2.ResourceHeader(
        Kind=KIND_ACCESS_REQUEST,
        Version=ACCESS_REQUEST_VERSION,
        Metadata=types_pb2.Metadata(Name=event.request_id, Namespace=DEFAULT_NAMESPACE),
    )
    return event_pb2.Event(Type=event_pb2.DELETE, ResourceHeader=header)


def monitoring_rule_from_proto(rule: access_monitoring_rules_pb2.AccessMonitoringRule) -> MonitoringRule:
    """An AccessMonitoringRule → MonitoringRule. Raises ConversionError for another kind or a rule without a name."""
    if rule.kind != KIND_ACCESS_MONITORING_RULE:
        raise ConversionError(f"expected {KIND_ACCESS_MONITORING_RULE} resource kind, got {rule.kind!r}")
    name = rule.metadata.name
    if not name:
        raise ConversionError("access monitoring rule without a name (metadata.name)")
    spec = rule.spec
    notification = spec.notification if spec.HasField("notification") else None
    return MonitoringRule(
        name=name,
        subjects=tuple(spec.subjects),
        condition=spec.condition,
        notification_name=notification.name if notification is not None else "",
        recipients=tuple(notification.recipients) if notification is not None else (),
        revision=rule.metadata.revision,
    )


def event_kind(event: event_pb2.Event) -> str:
    """The kind of resource a watch event is about ("" for INIT and for events that carry nothing we know)."""
    carried = event.WhichOneof("Resource")
    if carried == "AccessRequest":
        return KIND_ACCESS_REQUEST
    if carried == "AccessMonitoringRule":
        return KIND_ACCESS_MONITORING_RULE
    if carried == "ResourceHeader":
        return event.ResourceHeader.Kind
    return ""


def rule_change_from_proto(event: event_pb2.Event) -> RuleChange:
    """A PUT or DELETE watch event for an access monitoring rule → RuleChange.

    Raises ConversionError for anything else, including a PUT whose rule has another (or no) kind.
    """
    if event.Type == event_pb2.PUT:
        if not event.HasField("AccessMonitoringRule"):
            carried = event.WhichOneof("Resource") or "no resource"
            raise ConversionError(f"PUT event carries {carried}, not an access monitoring rule")
        rule = monitoring_rule_from_proto(event.AccessMonitoringRule)
        return RuleChange(op=EventOp.PUT, name=rule.name, rule=rule)
    if event.Type == event_pb2.DELETE:
        header = event.ResourceHeader
        if not event.HasField("ResourceHeader") or header.Kind != KIND_ACCESS_MONITORING_RULE:
            kind = header.Kind or "an unknown kind"
            raise ConversionError(f"DELETE event for {kind!r}, not an access monitoring rule")
        if not header.Metadata.Name:
            raise ConversionError("DELETE event without a rule name (Metadata.Name)")
        return RuleChange(op=EventOp.DELETE, name=header.Metadata.Name)
    raise ConversionError(f"{event_pb2.Operation.Name(event.Type)} is not an access monitoring rule change")


def user_traits_from_proto(user: types_pb2.UserV2) -> dict[str, tuple[str, ...]]:
    """A user's traits (`UserV2.Spec.Traits`, Go's `map[string][]string`)."""
    return label_values_to_dict(user.Spec.Traits)
