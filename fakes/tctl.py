"""`tctl` for the fake (and any Auth server): access requests and access monitoring rules through the real RPCs.

    python -m fakes.tctl --addr HOST:PORT --identity FILE [--timeout S] <command>

Access monitoring rules, as Teleport's `tctl` manages them (the YAML of docs/ and `tctl get`: kind, version,
metadata, spec; several resources in one file are separated by `---`):

    create [-f] FILE                                  create each rule in FILE (CreateAccessMonitoringRule), or
                                                      with -f create-or-replace it (UpsertAccessMonitoringRule);
                                                      prints `access monitoring rule "<name>" has been created`
    get access_monitoring_rule[/NAME] [--format yaml|json]
                                                      one rule (GetAccessMonitoringRule) or all of them
                                                      (ListAccessMonitoringRules, page size 0, until the token is
                                                      empty); YAML documents separated by `---`, or a JSON array
    rm access_monitoring_rule/NAME                    DeleteAccessMonitoringRule; prints
                                                      `access monitoring rule "<name>" has been deleted`

`requests <command>` drives the access-request workflow; each prints JSON on stdout. Every command exits 0; a
refused call, a bad file or a bad identity prints one line on stderr (`error: <RPC>: <gRPC code>: <message>`, or
the problem with the file) and exits 1:

    ls [--user U] [--state PENDING|APPROVED|DENIED]   summaries of the requests the identity may see, oldest first
    get ID                                            one request, the full message as JSON
    create [--roles editor[,..]] [--resource /CLUSTER/KIND/NAME]... [--reason R] [--reviewers a@x,b@y]
           [--long-term]                              create a request as the identity's user: for roles, for
                                                      resources (node, app, db, kube_cluster; without --roles the
                                                      server picks the roles from search_as_roles), or both
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
from pathlib import Path
from typing import Any

import yaml
from google.protobuf import json_format

from fakes.teleport_harness import HarnessClient
from sidecar.domain.errors import ConfigError, ConversionError, SidecarError
from sidecar.domain.model import RequestState
from sidecar.teleport.client import TeleportClient
from sidecar.teleport.convert import resource_id_from_string, resource_id_string
from sidecar.teleport.resources import (
    KIND_ACCESS_MONITORING_RULE,
    access_monitoring_rule_from_dict,
    access_monitoring_rule_to_dict,
    yaml_documents,
)
from sidecar.teleport.transport import TransportKind
from sidecar.teleport.wire import access_monitoring_rules_pb2 as amr_pb2
from sidecar.teleport.wire import types_pb2

_STATES = ("PENDING", "APPROVED", "DENIED")
_RESOURCE_GROUPS = ("create", "get", "rm")


def _csv(text: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values:
        raise argparse.ArgumentTypeError("expected a comma-separated list with at least one value")
    return values


def _resource_id(text: str) -> str:
    try:
        resource_id_from_string(text)
    except ConversionError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    """The CLI: global connection options, then `create`, `get`, `rm` or `requests <command>`."""
    parser = argparse.ArgumentParser(
        prog="python -m fakes.tctl",
        description="Drive access requests and access monitoring rules through the Teleport Auth gRPC API",
    )
    parser.add_argument("--addr", required=True, help="Auth address HOST:PORT")
    parser.add_argument("--identity", required=True, help="identity file (from `sign` or tbot)")
    parser.add_argument("--timeout", type=float, default=10.0, help="per-call timeout in seconds")
    groups = parser.add_subparsers(dest="group", required=True)
    _add_resource_commands(groups)
    requests = groups.add_parser("requests", help="access requests")
    cmds = requests.add_subparsers(dest="action", required=True)

    ls = cmds.add_parser("ls", help="list requests")
    ls.add_argument("--user", default="", help="only requests by this user")
    ls.add_argument("--state", choices=_STATES, default=None, help="only requests in this state")

    get = cmds.add_parser("get", help="show one request")
    get.add_argument("id")

    create = cmds.add_parser("create", help="create a request as the identity's user")
    create.add_argument("--roles", type=_csv, default=[], help="comma-separated roles to request")
    create.add_argument(
        "--resource",
        dest="resources",
        action="append",
        type=_resource_id,
        default=[],
        help="a resource to request, /CLUSTER/KIND/NAME (repeatable)",
    )
    create.add_argument("--reason", default="", help="request reason")
    create.add_argument("--reviewers", type=_csv, default=[], help="comma-separated suggested reviewers")
    create.add_argument("--long-term", action="store_true", help="a long-term (access list) request")

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


def _add_resource_commands(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    create = groups.add_parser("create", help="create resources from a YAML file")
    create.add_argument("-f", "--force", action="store_true", help="replace resources that already exist")
    create.add_argument("file", help="YAML file with one or more resources")
    get = groups.add_parser("get", help="print resources: access_monitoring_rule[/NAME]")
    get.add_argument("ref", help="access_monitoring_rule or access_monitoring_rule/NAME")
    get.add_argument("--format", choices=("yaml", "json"), default="yaml", help="output format (default yaml)")
    rm = groups.add_parser("rm", help="delete a resource: access_monitoring_rule/NAME")
    rm.add_argument("ref", help="access_monitoring_rule/NAME")


def _parse_ref(ref: str, *, name_required: bool) -> str:
    """The name in `access_monitoring_rule[/NAME]` ("" for none); ConfigError for another kind."""
    kind, _, name = ref.partition("/")
    if kind != KIND_ACCESS_MONITORING_RULE:
        raise ConfigError(f"resource kind {kind!r} is not supported here (only {KIND_ACCESS_MONITORING_RULE!r})")
    if name_required and not name:
        raise ConfigError(f"expected {KIND_ACCESS_MONITORING_RULE}/NAME, got {ref!r}")
    return name


def load_rules(path: str) -> list[amr_pb2.AccessMonitoringRule]:
    """The resources of a YAML file as rules (all read before any call); ConfigError for another kind."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    rules = []
    for index, doc in enumerate(yaml_documents(text, path), start=1):
        if doc.get("kind") != KIND_ACCESS_MONITORING_RULE:
            raise ConfigError(f'creating resources of type "{doc.get("kind")}" is not supported')
        rules.append(access_monitoring_rule_from_dict(doc, f"{path}: document {index}"))
    return rules


async def execute_resource(harness: HarnessClient, args: argparse.Namespace) -> str:
    """Run `create` (of `args.rules`, see `load_rules`), `get` or `rm`; the text to print.

    Raises SidecarError when a call is refused."""
    if args.group == "create":
        lines = []
        for rule in args.rules:
            if args.force:
                await harness.upsert_access_monitoring_rule(rule)
            else:
                await harness.create_access_monitoring_rule(rule)
            lines.append(f'access monitoring rule "{rule.metadata.name}" has been created\n')
        return "".join(lines)
    if args.group == "get":
        name = _parse_ref(args.ref, name_required=False)
        if name:
            rules = [await harness.get_access_monitoring_rule(name)]
        else:
            rules = await harness.list_access_monitoring_rules(page_size=0)
        docs = [access_monitoring_rule_to_dict(rule) for rule in rules]
        if args.format == "json":
            return json.dumps(docs, indent=4) + "\n"
        return "---\n".join(yaml.safe_dump(doc, sort_keys=True, allow_unicode=True) for doc in docs)
    if args.group == "rm":
        name = _parse_ref(args.ref, name_required=True)
        await harness.delete_access_monitoring_rule(name)
        return f'access monitoring rule "{name}" has been deleted\n'
    raise ValueError(f"unknown command {args.group!r}")


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
        "resources": [resource_id_string(r) for r in spec.RequestedResourceIDs],
        "reviews": [_review_summary(r) for r in spec.Reviews],
        "created": spec.Created.ToJsonString(),
        "expires": req.Metadata.Expires.ToJsonString(),
    }


def _review_summary(review: types_pb2.AccessReview) -> dict[str, Any]:
    out = {"author": review.Author, "state": types_pb2.RequestState.Name(review.ProposedState), "reason": review.Reason}
    if review.SubmittedBy:
        out["submitted_by"] = review.SubmittedBy
    return out


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
        created = await harness.create(
            args.roles, reason=args.reason, reviewers=args.reviewers, resources=args.resources, long_term=args.long_term
        )
        return summary(created)
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
        if args.group in _RESOURCE_GROUPS:
            return await execute_resource(HarnessClient(client), args)
        return await execute(HarnessClient(client), args)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run the command, print its output; the exit status (1 when a call is refused)."""
    args = build_parser().parse_args(argv)
    try:
        if args.group == "create":
            args.rules = load_rules(args.file)
        result = asyncio.run(_run(args))
    except SidecarError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.group in _RESOURCE_GROUPS:
        print(result, end="")
    else:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
