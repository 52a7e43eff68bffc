"""`ComposeStack`: the stack of docker-compose.test.yml, as its test runner (one of its containers) sees it.

The deployment is already running when the runner starts. Compose deploys the image with the layout of
`fakes.container_stack` (service names, ports, the fake Auth's state directory), so the defaults come from
there; $TM_COMPOSE_* variables override them.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import aiohttp

from fakes.container_stack import ADMIN_PORT, AUTH_PORT, AUTH_STATE_DIR, MATTERMOST_PORT, PROXY_PORT
from fakes.stack import HUMAN_USERS, BaseStack, StackError, StackOptions

#: Where docker-compose.test.yml's sidecar writes its log (deploy/compose/teleport-mattermost.toml).
SIDECAR_LOG = "/var/lib/teleport-mattermost/logs/sidecar.log"


class ComposeStack(BaseStack):
    """The stack of docker-compose.test.yml, already running; the test runner is one of its containers.

    Compose runs ONE fixed deployment (`deployed_options()`), so `unsupported()` tells the e2e fixture which
    tests need another one and must be skipped in this mode. Addresses come from $TM_COMPOSE_* variables.
    """

    def __init__(self, workdir: Path, options: StackOptions | None = None) -> None:
        super().__init__(workdir, options)
        env = os.environ
        self.auth = {
            "auth_addr": env.get("TM_COMPOSE_AUTH_ADDR", f"teleport:{AUTH_PORT}"),
            "proxy_addr": env.get("TM_COMPOSE_PROXY_ADDR", f"teleport:{PROXY_PORT}"),
            "admin_addr": env.get("TM_COMPOSE_ADMIN_ADDR", f"teleport:{ADMIN_PORT}"),
        }
        self.mm = {
            "url": env.get("TM_COMPOSE_MATTERMOST_URL", f"http://mattermost:{MATTERMOST_PORT}"),
            "admin_token": env.get("TM_COMPOSE_MATTERMOST_ADMIN_TOKEN", "admin-token"),
        }
        self.auth_state_dir = Path(env.get("TM_COMPOSE_AUTH_STATE", AUTH_STATE_DIR))
        self.sidecar_log_path = Path(env.get("TM_COMPOSE_SIDECAR_LOG", SIDECAR_LOG))

    @staticmethod
    def deployed_options() -> StackOptions:
        """What docker-compose.test.yml deploys: $TM_COMPOSE_EDITION, the seed in $TM_COMPOSE_TELEPORT_SEED."""
        seed = os.environ.get("TM_COMPOSE_TELEPORT_SEED")
        edition = os.environ.get("TM_COMPOSE_EDITION", "oss")
        return StackOptions(edition=edition, teleport_seed=Path(seed) if seed else None)

    @classmethod
    def unsupported(cls, options: StackOptions, *, sidecar: bool) -> str | None:
        """Why a test asking for `options` cannot run against the compose deployment (None: it can)."""
        if not sidecar:
            return "compose mode: the deployment's sidecar always runs; this test manages its own"
        deployed = cls.deployed_options()
        differences = []
        for name in ("edition", "via_proxy", "recipients", "role_to_recipients", "rate_limit", "rate_burst",
                     "mattermost_seed", "tbot_renewal", "extra_env", "review", "plugin_user"):
            wanted, have = getattr(options, name), getattr(deployed, name)
            if (list(wanted) if isinstance(wanted, tuple) else wanted) != (
                    list(have) if isinstance(have, tuple) else have):
                differences.append(f"{name}={wanted!r} (deployed: {have!r})")
        if options.teleport_seed != deployed.teleport_seed and not _same_file(options.teleport_seed,
                                                                              deployed.teleport_seed):
            differences.append(f"teleport_seed={options.teleport_seed} (deployed: {deployed.teleport_seed})")
        if not differences:
            return None
        return "compose mode runs a fixed deployment; this test needs " + ", ".join(differences)

    async def start(self, *, sidecar: bool = True) -> None:
        """Sign the users' identities and wait until the deployment's sidecar is watching."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        await self._open_http()
        await self.sign_all(HUMAN_USERS)

        async def watching() -> bool:
            try:
                return bool((await self.auth_admin("GET", "/watchers"))["count"] >= 1)
            except (StackError, aiohttp.ClientError):
                return False

        async with asyncio.timeout(60):
            while True:
                if await watching():
                    break
                await asyncio.sleep(0.2)

    async def stop(self) -> None:
        """Close the HTTP session; the deployment itself belongs to docker-compose."""
        await self._close_http()

    async def sidecar_log(self) -> str:
        """The deployment's sidecar log: a file on the sidecar-logs volume, mounted read-only here."""
        try:
            return self.sidecar_log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


def _same_file(a: Path | None, b: Path | None) -> bool:
    if a is None or b is None:
        return False
    try:
        return a.read_bytes() == b.read_bytes()
    except OSError:
        return False


__all__ = ["ComposeStack"]
