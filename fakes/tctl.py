"""`tctl requests ...` for the fake (and any Auth server): drives the access-request workflow through the real RPCs.

    python -m fakes.tctl --addr HOST:PORT --identity FILE [--timeout S] requests <command>

Every command prints JSON on stdout and exits 0; a refused call or a bad identity prints one line on stderr
(`error: <RPC>: <gRPC code>: <message>`) and exits 1:

    ls [--user U] [--state PENDING|APPROVED|DENIED]   summaries of the requests the identity may see, oldest first
    get ID                                            one request, the full message as JSON
    create --roles editor[,..] --reason R [--reviewers a@x,b@y]
                                                      create a request as the identity's user
    review ID --approve|--deny [--reason R]           submit a review as the identity's user
    approve ID [--reason R] / deny ID [--reason R]    set the state directly (admin: SetAccessRequestState)
    rm ID                                             delete the request (admin: DeleteAccessRequest)

Built on the harness client (fakes/teleport_harness.py) over the product's TeleportClient: the connection is
direct mutual TLS to Auth with the identity file's key, certificate and CAs, verifying the server as
`teleport.cluster.local` like Teleport's Go client, and listing uses the client's ListAccessRequests paging.
This module lives outside `fakes/teleport_auth/` because it uses the sidecar's client, which the fake Auth
itself must not import (see `[tool.importlinter]` in pyproject.toml).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from typing import Any

from google.protobuf import json_format

from fakes.teleport_harness import HarnessClient
from sidecar.domain.errors import SidecarError
from sidecar.domain.model import RequestState
from sidecar.teleport.client import TeleportClient
from sidecar.teleport.transport import TransportKind
from sidecar.teleport.wire import types_pb2

_STATES = ("PENDING", "APPROVED", "DENIED")


def _csv(text: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values:
        raise argparse.ArgumentTypeError("expected a comma-separated list with at least one value")
    return values


def build_parser() -> argparse.ArgumentParser:
    """The CLI: global connection options, then `requests <command>`."""
    parser = argparse.ArgumentParser(
        prog="python -m fakes.tctl", description="Drive access requests through the Teleport Auth gRPC API"
    )
    parser.add_argument("--addr", required=True, help="Auth address HOST:PORT")
    parser.add_argument("--identity", required=True, help="identity file (from `sign` or tbot)")
    parser.add_argument("--timeout", type=float, default=10.0, help="per-call timeout in seconds")
    groups = parser.add_subparsers(dest="group", required=True)
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
    return parser


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


def _oldest_first(req: types_pb2.AccessRequestV3) -> tuple[int, str]:
    created = req.Spec.Created
    return created.seconds * 1_000_000_000 + created.nanos, req.Metadata.Name


async def execute(harness: HarnessClient, args: argparse.Namespace) -> Any:
    """Run one `requests` command; the JSON-ready result. Raises SidecarError when a call is refused."""
    action = args.action
    if action == "ls":
        flt = types_pb2.AccessRequestFilter(User=args.user)
        if args.state:
            flt.State = types_pb2.RequestState.Value(args.state)
        return [summary(r) for r in sorted(await harness.list_access_requests(flt), key=_oldest_first)]
    if action == "get":
        found = await harness.get_access_request(args.id)
        return json_format.MessageToDict(found, preserving_proto_field_name=True)
    if action == "create":
        return summary(await harness.create(args.roles, reason=args.reason, reviewers=args.reviewers))
    if action == "review":
        verdict = RequestState.APPROVED if args.approve else RequestState.DENIED
        return summary(await harness.submit_access_review(args.id, verdict, reason=args.reason))
    if action in ("approve", "deny"):
        state = RequestState.APPROVED if action == "approve" else RequestState.DENIED
        await harness.set_access_request_state(args.id, state, reason=args.reason)
        return {"id": args.id, "state": state.value}
    if action == "rm":
        await harness.delete_access_request(args.id)
        return {"id": args.id, "deleted": True}
    raise ValueError(f"unknown command {action!r}")


async def _run(args: argparse.Namespace) -> Any:
    client = await TeleportClient.connect(
        args.addr, identity_file=args.identity, transport=TransportKind.DIRECT, timeout=args.timeout
    )
    async with client:
        return await execute(HarnessClient(client), args)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run the command, print its JSON; the exit status (1 when a call is refused)."""
    args = build_parser().parse_args(argv)
    try:
        result = asyncio.run(_run(args))
    except SidecarError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
