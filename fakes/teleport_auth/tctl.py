"""`tctl requests ...` for the fake (and any Auth server): drives the access-request workflow through the real RPCs.

    python -m fakes.teleport_auth tctl --addr HOST:PORT --identity FILE requests <command>

Commands (JSON on stdout; errors as one line on stderr with exit status 1):

    ls [--user U] [--state PENDING|APPROVED|DENIED]   summaries of the requests the identity may see
    get ID                                            one request, the full message as JSON
    create --roles editor[,..] --reason R [--reviewers a@x,b@y]
                                                      create a request as the identity's user
    review ID --approve|--deny [--reason R]           submit a review as the identity's user
    approve ID [--reason R] / deny ID [--reason R]    set the state directly (admin: SetAccessRequestState)
    rm ID                                             delete the request (admin: DeleteAccessRequest)

The connection is direct mutual TLS to Auth with the identity file's key, certificate and CAs, verifying the
server as `teleport.cluster.local` like Teleport's Go client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import grpc
from google.protobuf import json_format

from sidecar.domain.errors import IdentityError
from sidecar.teleport.identity import load_identity_file
from sidecar.teleport.wire import authservice_pb2, authservice_pb2_grpc, types_pb2

API_DOMAIN = "teleport.cluster.local"
_STATES = ("PENDING", "APPROVED", "DENIED")


class TctlError(Exception):
    """A user-facing error: one line on stderr, exit status 1."""


def _csv(text: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values:
        raise argparse.ArgumentTypeError("expected a comma-separated list with at least one value")
    return values


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `tctl` subcommand (sets `func(args) -> exit status`)."""
    tctl = subparsers.add_parser("tctl", help="drive access requests through the Auth gRPC API")
    tctl.add_argument("--addr", required=True, help="Auth address HOST:PORT")
    tctl.add_argument("--identity", required=True, help="identity file (from `sign` or tbot)")
    tctl.add_argument("--timeout", type=float, default=10.0, help="per-call timeout in seconds")
    groups = tctl.add_subparsers(dest="group", required=True)
    requests = groups.add_parser("requests", help="access requests")
    cmds = requests.add_subparsers(dest="action", required=True)

    ls = cmds.add_parser("ls", help="list requests")
    ls.add_argument("--user", default="", help="only requests by this user")
    ls.add_argument("--state", choices=_STATES, default=None, help="only requests in this state")

    get = cmds.add_parser("get", help="show one request")
    get.add_argument("id")

    create = cmds.add_parser("create", help="create a request as the identity's user")
    create.add_argument("--roles", type=_csv, required=True, help="comma-separated roles to request")
    create.add_argument("--reason", default="", help="request reason")
    create.add_argument("--reviewers", type=_csv, default=[], help="comma-separated suggested reviewers")

    review = cmds.add_parser("review", help="review a request as the identity's user")
    review.add_argument("id")
    verdict = review.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--approve", action="store_true", help="propose APPROVED")
    verdict.add_argument("--deny", action="store_true", help="propose DENIED")
    review.add_argument("--reason", default="", help="review reason")

    for name in ("approve", "deny"):
        cmd = cmds.add_parser(name, help=f"{name} a request directly (admin)")
        cmd.add_argument("id")
        cmd.add_argument("--reason", default="", help="resolution reason")

    rm = cmds.add_parser("rm", help="delete a request (admin)")
    rm.add_argument("id")
    tctl.set_defaults(func=run)


def summary(req: types_pb2.AccessRequestV3) -> dict[str, Any]:
    """The fields a person wants to see, as JSON."""
    spec = req.Spec
    return {
        "id": req.Metadata.Name,
        "user": spec.User,
        "roles": list(spec.Roles),
        "state": types_pb2.RequestState.Name(spec.State),
        "request_reason": spec.RequestReason,
        "resolve_reason": spec.ResolveReason,
        "suggested_reviewers": list(spec.SuggestedReviewers),
        "reviews": [
            {"author": r.Author, "state": types_pb2.RequestState.Name(r.ProposedState), "reason": r.Reason}
            for r in spec.Reviews
        ],
        "created": spec.Created.ToJsonString(),
        "expires": req.Metadata.Expires.ToJsonString(),
    }


def _channel(args: argparse.Namespace) -> Any:
    try:
        ident = load_identity_file(args.identity)
    except IdentityError as exc:
        raise TctlError(str(exc)) from None
    creds = grpc.ssl_channel_credentials(
        root_certificates=b"".join(ident.ca_pems), private_key=ident.key_pem, certificate_chain=ident.cert_pem
    )
    return grpc.aio.secure_channel(args.addr, creds, options=(("grpc.ssl_target_name_override", API_DOMAIN),))


async def _execute(args: argparse.Namespace) -> Any:
    channel = _channel(args)
    stub = authservice_pb2_grpc.AuthServiceStub(channel)
    timeout = args.timeout
    try:
        action = args.action
        if action == "ls":
            flt = types_pb2.AccessRequestFilter(User=args.user)
            if args.state:
                flt.State = types_pb2.RequestState.Value(args.state)
            items: list[dict[str, Any]] = []
            key = ""
            while True:
                page = await stub.ListAccessRequests(
                    authservice_pb2.ListAccessRequestsRequest(
                        Filter=flt, Sort=authservice_pb2.CREATED, Limit=100, StartKey=key
                    ),
                    timeout=timeout,
                )
                items.extend(summary(r) for r in page.AccessRequests)
                key = page.NextKey
                if not key:
                    return items
        if action == "get":
            page = await stub.ListAccessRequests(
                authservice_pb2.ListAccessRequestsRequest(Filter=types_pb2.AccessRequestFilter(ID=args.id)),
                timeout=timeout,
            )
            if not page.AccessRequests:
                raise TctlError(f"access request {args.id} not found")
            return json_format.MessageToDict(page.AccessRequests[0], preserving_proto_field_name=True)
        if action == "create":
            req = types_pb2.AccessRequestV3(Kind="access_request", Version="v3")
            req.Spec.Roles.extend(args.roles)
            req.Spec.RequestReason = args.reason
            req.Spec.SuggestedReviewers.extend(args.reviewers)
            req.Spec.State = types_pb2.PENDING
            return summary(await stub.CreateAccessRequestV2(req, timeout=timeout))
        if action == "review":
            sub = types_pb2.AccessReviewSubmission(RequestID=args.id)
            sub.Review.ProposedState = types_pb2.APPROVED if args.approve else types_pb2.DENIED
            sub.Review.Reason = args.reason
            return summary(await stub.SubmitAccessReview(sub, timeout=timeout))
        if action in ("approve", "deny"):
            state = types_pb2.APPROVED if action == "approve" else types_pb2.DENIED
            setter = authservice_pb2.RequestStateSetter(ID=args.id, State=state, Reason=args.reason)
            await stub.SetAccessRequestState(setter, timeout=timeout)
            return {"id": args.id, "state": types_pb2.RequestState.Name(state)}
        if action == "rm":
            await stub.DeleteAccessRequest(authservice_pb2.RequestID(ID=args.id), timeout=timeout)
            return {"id": args.id, "deleted": True}
        raise TctlError(f"unknown command {action!r}")
    except grpc.aio.AioRpcError as exc:
        raise TctlError(f"{exc.code().name}: {exc.details()}") from None
    finally:
        await channel.close()


def run(args: argparse.Namespace) -> int:
    """Entry point of the `tctl` subcommand."""
    try:
        result = asyncio.run(_execute(args))
    except TctlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0
