"""`teleport-mattermost check` for `[review]`: the findings of `sidecar.review.check.check_review`, with what it
needs read from Teleport (the version, the plugin's roles) and Mattermost (the trigger-signing key).

Only run when review is enabled; a side that cannot be reached is left out of the review findings (its own
lines already say why), so nothing here is reported twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

from sidecar.app import check_credentials, check_teleport, identity_source
from sidecar.config import Config
from sidecar.domain.errors import SidecarError
from sidecar.mattermost.client import MattermostClient
from sidecar.review.check import Finding, check_review
from sidecar.review.mattermost_api import MattermostReviewApi
from sidecar.review.ports import SubmitForUsers
from sidecar.teleport.client import TeleportClient

__all__ = ["TeleportReviewPermissions", "review_findings"]

TIMEOUT = 10.0


class TeleportReviewPermissions:
    """`ReviewPermissions` over GetRole: `review_requests.submit_for_users` of every role the identity carries."""

    def __init__(self, client: TeleportClient, roles: Sequence[str]) -> None:
        self._client = client
        self._roles = tuple(roles)

    async def submit_for_users(self) -> SubmitForUsers:
        """The allow and deny entries of every role, each once (AccessDenied without `role: read`)."""
        allow: dict[str, None] = {}
        deny: dict[str, None] = {}
        for name in self._roles:
            role = await self._client.get_role(name)
            allow.update(dict.fromkeys(role.Spec.Allow.ReviewRequests.SubmitForUsers))
            deny.update(dict.fromkeys(role.Spec.Deny.ReviewRequests.SubmitForUsers))
        return SubmitForUsers(allow=tuple(allow), deny=tuple(deny))


@contextlib.asynccontextmanager
async def _teleport(config: Config) -> AsyncIterator[tuple[TeleportClient, tuple[str, ...]] | None]:
    """A connected client and the identity's roles, or None when Teleport cannot be reached (reported elsewhere)."""
    tc = config.teleport
    try:
        identity = await check_credentials(identity_source(tc), wait=0)
        async with asyncio.timeout(TIMEOUT):
            client = await TeleportClient.connect(
                tc.addr,
                identity_file=tc.identity or None,
                key_pair=None if tc.identity else (tc.client_key, tc.client_crt, tc.root_cas),
            )
    except (SidecarError, TimeoutError):
        yield None
        return
    async with client:
        yield client, tuple(identity.roles)


async def review_findings(config: Config) -> list[Finding]:
    """Every review finding for `config` (one line saying it is off when `[review]` is disabled)."""
    settings = config.review
    if not settings.enabled:
        return await check_review(settings, mattermost_url=config.mattermost.url)
    async with _teleport(config) as teleport, MattermostClient(config.mattermost.url, config.mattermost.token) as mm:
        version = ""
        permissions = None
        if teleport is not None:
            client, roles = teleport
            try:
                async with asyncio.timeout(TIMEOUT):
                    version = (await check_teleport(client)).version
            except (SidecarError, TimeoutError):
                version = ""
            if version:
                permissions = TeleportReviewPermissions(client, roles)
        return await check_review(
            settings,
            mattermost_url=config.mattermost.url,
            signing_key=MattermostReviewApi(mm),
            permissions=permissions,
            teleport_version=version,
        )
