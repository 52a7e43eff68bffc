"""`teleport-mattermost check`: validate the config, reach Teleport and Mattermost, resolve every recipient, and,
with `[review]` enabled, check in-chat review (sidecar/check/review.py).

Prints one line per check (`ok` or `FAIL`, with a fix under each failure) and exits 0 only when all pass.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from typing import TextIO

from sidecar.app import PLUGIN_NAME, check_credentials, check_teleport, identity_source
from sidecar.check.mattermost import diagnose_mattermost
from sidecar.check.review import review_findings
from sidecar.config import Config
from sidecar.domain.errors import SidecarError
from sidecar.mattermost.client import MattermostClient
from sidecar.messages_text import UNKNOWN_KEY
from sidecar.teleport.client import TeleportClient
from sidecar.teleport.wire import event_pb2

WATCH_INIT_TIMEOUT = 15.0
UNKNOWN_KEY_PREFIX = UNKNOWN_KEY.split("{", 1)[0]


@dataclass(frozen=True)
class Line:
    """One reported check."""

    subject: str
    ok: bool
    detail: str
    fix: str = ""


def configured_recipients(config: Config) -> list[str]:
    """Every recipient string the config names, once each, in config order."""
    seen: dict[str, None] = {}
    for values in config.role_to_recipients.values():
        for value in values:
            seen.setdefault(value, None)
    return list(seen)


async def check_teleport_side(config: Config) -> list[Line]:
    """Credentials, connection, version, and that the plugin identity may watch access requests."""
    tc = config.teleport
    try:
        identity = await check_credentials(identity_source(tc), wait=0)
    except SidecarError as exc:
        return [Line("teleport.credentials", False, str(exc),
                     "sign a new identity (tctl auth sign or tbot) and point teleport.identity at it")]
    lines = [Line("teleport.credentials", True,
                  f"user {identity.username}, roles {', '.join(identity.roles) or '-'}, valid until "
                  f"{identity.not_after:%Y-%m-%d %H:%M:%S} UTC")]
    try:
        async with asyncio.timeout(10):
            client = await TeleportClient.connect(
                tc.addr,
                identity_file=tc.identity or None,
                key_pair=None if tc.identity else (tc.client_key, tc.client_crt, tc.root_cas),
            )
    except (SidecarError, TimeoutError) as exc:
        return [*lines, Line("teleport.addr", False, f"cannot connect to {tc.addr}: {exc or 'timed out'}",
                             "check teleport.addr (Auth :3025 or the Proxy's web address)")]
    async with client:
        try:
            async with asyncio.timeout(10):
                cluster = await check_teleport(client)
        except (SidecarError, TimeoutError) as exc:
            return [*lines, Line("teleport.addr", False, str(exc) or "no answer from Teleport",
                                 "check teleport.addr and that the identity belongs to this cluster")]
        link = f", Web UI links to {cluster.web_proxy_url}" if cluster.web_proxy_url else ", OSS (tsh commands)"
        lines.append(Line("teleport.addr", True, f"cluster {cluster.name}, version {cluster.version}{link}"))
        lines.append(await _check_watch(client))
    return lines


async def _check_watch(client: TeleportClient) -> Line:
    stream = client.watch_events()
    try:
        async with asyncio.timeout(WATCH_INIT_TIMEOUT):
            first = await anext(stream)
    except (SidecarError, TimeoutError, StopAsyncIteration) as exc:
        return Line("teleport.watch", False, f"cannot watch access requests: {exc or 'no INIT event'}",
                    "give the plugin's role list and read on access_request")
    finally:
        await stream.aclose()
    kinds = {k.Kind for k in first.WatchStatus.Spec.Kinds} if first.Type == event_pb2.INIT else set()
    if "access_request" not in kinds:
        return Line("teleport.watch", False, "the server did not allow watching access_request",
                    "give the plugin's role list and read on access_request, and update on access_plugin_data")
    return Line("teleport.watch", True, f"watching access requests as plugin {PLUGIN_NAME!r}")


async def check_mattermost_side(config: Config) -> list[Line]:
    """The token, and every configured recipient with a fix for each problem."""
    mm = config.mattermost
    try:
        async with MattermostClient(mm.url, mm.token) as client:
            results = await diagnose_mattermost(client, configured_recipients(config))
    except SidecarError as exc:
        return [Line("mattermost.url", False, str(exc), "check mattermost.url")]
    lines = []
    for r in results:
        detail = r.note if r.ok else r.problem
        if r.ok and not detail:
            detail = f"channel {r.channel_id}" if r.channel_id else "ok"
        lines.append(Line(r.recipient, r.ok, detail, r.fix))
    if len(results) == 1 and results[0].ok:
        lines.append(Line("recipients", False, "no recipients are configured: only suggested reviewers get messages",
                          "set mattermost.recipients or [role_to_recipients] with a \"*\" entry"))
    return lines


async def check_review_side(config: Config) -> list[Line]:
    """In-chat review: its settings, the network path, Mattermost's trigger key, Teleport's version and the
    plugin role's `submit_for_users` (warnings are ok lines marked as such)."""
    findings = await review_findings(config)
    return [
        Line(f.subject, f.ok, f"warning: {f.detail}" if f.warning else f.detail, f.fix)
        for f in findings
        if f.detail not in config.warnings  # the settings' warnings are already the config's lines
    ]


def print_lines(lines: list[Line], out: TextIO) -> None:
    """Human-readable report."""
    for line in lines:
        print(f"{'ok  ' if line.ok else 'FAIL'} {line.subject}: {line.detail}", file=out)
        if not line.ok and line.fix:
            print(f"     fix: {line.fix}", file=out)


async def run_check(config: Config, out: TextIO | None = None) -> int:
    """Run every check, print the report, and return the exit code (0 only when everything passed)."""
    stream = out or sys.stdout
    lines = [Line("config", True, "loaded" + (f" with {len(config.warnings)} warning(s)" if config.warnings else ""))]
    # Unknown keys are almost always typos, so they fail the check; other warnings are advice.
    lines += [
        Line("config", not w.startswith(UNKNOWN_KEY_PREFIX), w, "fix the key's spelling or remove it")
        for w in config.warnings
    ]
    lines += await check_teleport_side(config)
    lines += await check_mattermost_side(config)
    if config.review.enabled:
        lines += await check_review_side(config)
    print_lines(lines, stream)
    failed = sum(not line.ok for line in lines)
    print(f"{len(lines) - failed} passed, {failed} failed" if failed else "all checks passed", file=stream)
    return 1 if failed else 0
