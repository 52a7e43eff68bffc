"""`teleport-mattermost route`: explain who would get one request's root posts, and why.

    route -c CONFIG (--request-id ID | --request FILE) [--rules FILE] [--user FILE] [--json]

The request, the access monitoring rules and the requester's traits come from the files given (Teleport's
resource shapes, sidecar/route/files.py) or else from Teleport with the configured identity (the request by
id, ListAccessMonitoringRulesWithFilter as the plugin lists them, GetUser when a rule applies). Routing is
the running plugin's (sidecar/engine/routing.py `explain`): every rule with its verdict, the recipients with
where each comes from, and whether the static fallback decided. Recipients are not looked up in Mattermost
("not resolved"); their shape is checked as the plugin checks it (an email or `team/channel`). The running
plugin also leaves out a rule recipient Mattermost does not know, and falls back to the static recipients
when none is left; `check` resolves the configured ones.

Exit status: 0 when the explanation was printed, 1 with a one-line reason when it could not be made (a bad
file, Teleport unreachable, the request not found).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from sidecar.app import PLUGIN_NAME, check_credentials, identity_source
from sidecar.config import Config
from sidecar.domain.email import is_email
from sidecar.domain.errors import AccessDenied, ConfigError, NotFound, SidecarError, StartupError
from sidecar.domain.model import AccessRequest, MonitoringRule, RequestState
from sidecar.engine.routing import TRAITS_DENIED, TRAITS_FAILED, Candidate, Explanation, RuleVerdict, explain
from sidecar.engine.rule_cache import why_not_applying
from sidecar.mattermost.bot import format_error_text, split_team_channel
from sidecar.route.files import request_from_file, rules_from_file, traits_from_file
from sidecar.teleport.client import TeleportClient, TeleportRules, TeleportTraits
from sidecar.teleport.convert import access_request_from_proto
from sidecar.teleport.wire import types_pb2

__all__ = ["Gathered", "RouteInputs", "gather", "recipient_problem", "run_route"]

CONNECT_TIMEOUT = 10.0
CALL_TIMEOUT = 15.0
NOT_RESOLVED = "not resolved in Mattermost"


@dataclass(frozen=True)
class RouteInputs:
    """What the command line named: the request (by id or file) and the optional files."""

    request_id: str | None = None
    request_file: Path | None = None
    rules_file: Path | None = None
    user_file: Path | None = None


@dataclass
class Gathered:
    """The inputs of routing, each with where it came from."""

    request: AccessRequest
    request_source: str
    rules: list[MonitoringRule]
    rules_source: str
    traits: dict[str, tuple[str, ...]] = field(default_factory=dict)
    traits_source: str = ""
    notes: list[str] = field(default_factory=list)


def recipient_problem(recipient: str) -> str:
    """Why the plugin cannot use `recipient` at all (FetchRecipient's error), or "" for an email or team/channel."""
    if is_email(recipient) or split_team_channel(recipient) is not None:
        return ""
    return format_error_text(recipient)


class _Teleport:
    """Connects on first use only, so routing from files alone needs no Teleport."""

    def __init__(self, config: Config, stack: contextlib.AsyncExitStack) -> None:
        self._config = config
        self._stack = stack
        self._client: TeleportClient | None = None

    async def client(self) -> TeleportClient:
        if self._client is None:
            tc = self._config.teleport
            await check_credentials(identity_source(tc), wait=0)
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    client = await TeleportClient.connect(
                        tc.addr,
                        identity_file=tc.identity or None,
                        key_pair=None if tc.identity else (tc.client_key, tc.client_crt, tc.root_cas),
                        timeout=CALL_TIMEOUT,
                    )
            except TimeoutError:
                raise StartupError(f"cannot connect to Teleport at {tc.addr} within {CONNECT_TIMEOUT:.0f} s") from None
            self._client = await self._stack.enter_async_context(client)
        return self._client


async def _request_by_id(teleport: _Teleport, request_id: str) -> AccessRequest:
    client = await teleport.client()
    found = await client.list_access_requests(types_pb2.AccessRequestFilter(ID=request_id))
    matching = [message for message in found if message.Metadata.Name == request_id]
    if not matching:
        raise NotFound(f"access request {request_id} not found")
    return access_request_from_proto(matching[0])


async def gather(config: Config, inputs: RouteInputs, stack: contextlib.AsyncExitStack) -> Gathered:
    """Read the files and ask Teleport for the rest. Raises SidecarError when something cannot be had."""
    teleport = _Teleport(config, stack)
    if inputs.request_file is not None:
        request, request_source = request_from_file(inputs.request_file), str(inputs.request_file)
    elif inputs.request_id:
        request, request_source = await _request_by_id(teleport, inputs.request_id), "Teleport"
    else:
        raise ConfigError("name the request: --request-id ID or --request FILE")
    notes: list[str] = []
    if request.state is not RequestState.PENDING:
        notes.append(
            f"the request is {request.state.value}: the plugin routes a request when it first sees it pending; "
            "later updates go to the posts made then, whatever the rules say now"
        )
    if inputs.rules_file is not None:
        rules, rules_source = rules_from_file(inputs.rules_file), str(inputs.rules_file)
    else:
        rules_source = f"Teleport (subject access_request, notification name {PLUGIN_NAME!r})"
        try:
            rules = await TeleportRules(await teleport.client(), PLUGIN_NAME).list_rules()
        except AccessDenied as exc:
            rules = []
            notes.append(
                f"cannot list access monitoring rules ({exc}): routed without rules. The plugin needs "
                "access_monitoring_rule: [read, list]; with read alone it does not start, without read it routes "
                "by the static configuration only"
            )
    gathered = Gathered(request, request_source, rules, rules_source, notes=notes)
    if not any(not why_not_applying(rule, PLUGIN_NAME) for rule in rules):
        gathered.traits_source = "not read: no rule applies"
    elif inputs.user_file is not None:
        name, gathered.traits = traits_from_file(inputs.user_file)
        gathered.traits_source = str(inputs.user_file)
        if name and name != request.user:
            notes.append(f"the user file is for {name!r}, the request is by {request.user!r}: its traits are used")
    else:
        await _read_traits(teleport, gathered)
    return gathered


async def _read_traits(teleport: _Teleport, gathered: Gathered) -> None:
    user = gathered.request.user
    try:
        gathered.traits = dict(await TeleportTraits(await teleport.client()).user_traits(user))
        gathered.traits_source = "Teleport"
    except (AccessDenied, NotFound) as exc:
        # What the plugin does: warn and evaluate with no traits.
        said = TRAITS_DENIED if isinstance(exc, AccessDenied) else TRAITS_FAILED
        gathered.traits_source = f"not read: {exc}"
        gathered.notes.append(f"{said}; the conditions saw no traits, as in the plugin")


# ------------------------------------------------------------------------------------------------ reporting


def _verdict_word(verdict: RuleVerdict) -> str:
    if verdict.skipped:
        return "skipped"
    if verdict.failure == "parse":
        return "parse error"
    if verdict.failure:
        return "evaluation error"
    return "matched" if verdict.matched else "not matched"


def _fallback_reason(explanation: Explanation) -> str:
    verdicts = explanation.verdicts
    if not verdicts:
        return "no access monitoring rules"
    if not any(v.applies for v in verdicts):
        return "no rule applies to this plugin"
    if not any(v.matched for v in verdicts):
        return "no rule matched"
    if not explanation.rule_candidates:
        return "the matching rules name no recipients"
    return "no recipient of the matching rules is an email or team/channel"


def _origins(candidate: Candidate) -> list[str]:
    return [origin.describe() for origin in candidate.origins]


def _left_out(explanation: Explanation) -> list[dict[str, Any]]:
    chosen = explanation.static_candidates if explanation.fallback else explanation.rule_candidates
    out = [{"recipient": c.recipient, "from": _origins(c), "problem": c.problem} for c in chosen if c.problem]
    if explanation.fallback:
        out += [
            {"recipient": r, "from": ["suggested reviewer"], "problem": "not an email address"}
            for r in explanation.invalid_reviewers
        ]
    return out


def as_json(gathered: Gathered, explanation: Explanation) -> dict[str, Any]:
    """The explanation as one JSON object (`route --json`)."""
    request = gathered.request
    recipients = [{"recipient": c.recipient, "from": _origins(c)} for c in explanation.recipients]
    unresolved_fallback: list[dict[str, Any]] = []
    if not explanation.fallback:
        unresolved_fallback = [
            {"recipient": c.recipient, "from": _origins(c)} for c in explanation.static_candidates if not c.problem
        ]
    return {
        "request": {
            "id": request.id,
            "user": request.user,
            "roles": list(request.roles),
            "state": request.state.value,
            "suggested_reviewers": list(request.suggested_reviewers),
            "source": gathered.request_source,
        },
        "traits": {
            "values": {key: list(values) for key, values in gathered.traits.items()},
            "source": gathered.traits_source,
        },
        "rules_source": gathered.rules_source,
        "rules": [
            {
                "name": v.name,
                "verdict": _verdict_word(v),
                "applies": v.applies,
                "skipped": v.skipped,
                "matched": v.matched,
                "failure": v.failure,
                "error": v.error,
                "recipients": list(v.recipients),
            }
            for v in explanation.verdicts
        ],
        "fallback": explanation.fallback,
        "fallback_reason": _fallback_reason(explanation) if explanation.fallback else "",
        "recipients": recipients,
        "resolved": False,
        "left_out": _left_out(explanation),
        "static_if_none_resolves": unresolved_fallback,
        "notes": gathered.notes,
    }


def print_text(gathered: Gathered, explanation: Explanation, out: TextIO) -> None:
    """The human-readable report."""
    request = gathered.request
    reviewers = f", suggested reviewers {', '.join(request.suggested_reviewers)}" if request.suggested_reviewers else ""
    print(f"request     {request.id} by {request.user}, roles {', '.join(request.roles) or '-'}, "
          f"{request.state.value}{reviewers} (from {gathered.request_source})", file=out)
    traits = ", ".join(f"{key}=[{', '.join(values)}]" for key, values in sorted(gathered.traits.items()))
    print(f"traits      {traits or '(none)'} ({gathered.traits_source})", file=out)
    print(f"rules       {len(explanation.verdicts)} from {gathered.rules_source}", file=out)
    for v in explanation.verdicts:
        detail = v.skipped or v.error or (", ".join(v.recipients) if v.matched else "")
        if v.matched and not v.recipients:
            detail = "(no recipients)"
        print(f"  {_verdict_word(v):<16} {v.name}" + (f": {detail}" if detail else ""), file=out)
    if explanation.fallback:
        print(f"routing     static fallback: {_fallback_reason(explanation)}", file=out)
    else:
        used = sorted({o.name for c in explanation.recipients for o in c.origins})
        print(f"routing     by access monitoring rules: {', '.join(used)}", file=out)
    print(f"recipients  {len(explanation.recipients)} ({NOT_RESOLVED})", file=out)
    for candidate in explanation.recipients:
        print(f"  {candidate.recipient:<32} from {', '.join(_origins(candidate))}", file=out)
    left = _left_out(explanation)
    if left:
        print("left out", file=out)
        for item in left:
            print(f"  {item['recipient']:<32} from {', '.join(item['from'])}: {item['problem']}", file=out)
    if not explanation.fallback:
        static = [c.recipient for c in explanation.static_candidates if not c.problem]
        print(f"fallback    if no rule recipient resolves in Mattermost, the plugin posts to the static recipients "
              f"instead: {', '.join(static) or '(none)'}", file=out)
    for note in gathered.notes:
        print(f"note        {note}", file=out)


async def run_route(config: Config, inputs: RouteInputs, *, as_json_output: bool = False,
                    out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Explain the routing of one request; return the exit code (0 printed, 1 could not)."""
    stream, errors = out or sys.stdout, err or sys.stderr
    try:
        async with contextlib.AsyncExitStack() as stack:
            gathered = await gather(config, inputs, stack)
    except SidecarError as exc:
        print(f"teleport-mattermost route: error: {' '.join(str(exc).split())}", file=errors)
        return 1
    explanation = explain(
        gathered.request,
        gathered.rules,
        gathered.traits,
        config.role_to_recipients,
        plugin_name=PLUGIN_NAME,
        problem_of=recipient_problem,
    )
    if as_json_output:
        json.dump(as_json(gathered, explanation), stream, indent=2, ensure_ascii=False)
        stream.write("\n")
    else:
        print_text(gathered, explanation, stream)
    return 0

