"""The deployment of `fakes.stack.Stack`, with every component in its own container (testcontainers).

The layout is the one of a Kubernetes pod with tbot as a sidecar (deploy/kubernetes/):

- one user-defined Docker network per stack; containers find each other by the aliases `teleport` and
  `mattermost`;
- volume `<id>-auth`: the fake Auth's state directory (its CAs). The tbot emulator mounts it read-only and signs
  with it, as the real tbot would get certificates from Auth;
- volume `<id>-identity`: tbot's output directory. The sidecar mounts it read-only and reads `identity` from it
  with `refresh_identity = true`;
- the sidecar's TOML: a host file bind-mounted at `/etc/teleport-mattermost.toml`, the image's default path,
  and the container runs the image's default command (`start`);
- with in-chat review (`StackOptions.review`), the sidecar container has the network alias `sidecar` and listens
  for Mattermost's callbacks on `0.0.0.0:8443` (`public_url = "http://sidecar:8443"`, which the fake Mattermost
  is told to allow with `--allowed-untrusted-internal-connections sidecar`); the port is also published on
  127.0.0.1 so a test can call the listener directly, and the HMAC keys file is bind-mounted read-only.

Every container runs as the image's non-root user with a read-only root filesystem, a tmpfs `/tmp`, all
capabilities dropped and no-new-privileges. The test process plays the people: it reaches the containers only
through ports published on 127.0.0.1, signs user identities with a copy of the fake Auth's CA and runs `tctl`
and the gRPC client on the host.

Each component is a `fakes.container_process.ContainerProcess`. `fakes.compose_stack.ComposeStack` is the same
client side (`fakes.stack.BaseStack`) for docker-compose.test.yml.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import tarfile
import uuid
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, cast

from fakes.container_process import ContainerProcess
from fakes.launch import python_module
from fakes.stack import (
    HUMAN_USERS,
    REVIEW_TELEPORT_VERSION,
    BaseStack,
    ReviewEndpoint,
    StackError,
    StackOptions,
    sidecar_config,
    write_review_keys,
)

if TYPE_CHECKING:  # imported when a ContainerStack starts: compose's test runner has no Docker libraries
    import docker
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.network import Network

IMAGE_ENV = "TM_IMAGE"
DEFAULT_IMAGE = "teleport-mattermost:dev"
LABEL = "teleport-mattermost.e2e"  # on every container, network and volume: CI removes leftovers by it

AUTH_STATE_DIR = "/var/lib/fake-teleport"
IDENTITY_DIR = "/var/lib/teleport-mattermost/identity"
CONFIG_PATH = "/etc/teleport-mattermost.toml"
SEED_DIR = "/etc/fake-seeds"
STATIC_IDENTITY = "/etc/teleport-mattermost-identity/identity"  # a host identity file chosen by a test
REVIEW_KEYS = "/etc/teleport-mattermost-review/keys"  # the [review] HMAC keys, bind-mounted from the host
AUTH_PORT, PROXY_PORT, ADMIN_PORT, MATTERMOST_PORT, REVIEW_PORT = 3025, 3080, 3090, 8065, 8443
REVIEW_ALIAS = "sidecar"  # the sidecar's name on the stack's network, which Mattermost calls back
# Without an explicit renewal interval tbot still runs (as in a pod) but renews rarely.
DEFAULT_TBOT_RENEWAL = "20m"


def default_image() -> str:
    """The image under test: $TM_IMAGE, else teleport-mattermost:dev."""
    return os.environ.get(IMAGE_ENV) or DEFAULT_IMAGE


class ContainerStack(BaseStack):
    """Async context manager like `fakes.stack.Stack` (same methods and attributes), components in containers.

    As in Stack, `auth` and `mm` hold the addresses the host uses (published ports), `identities` are host
    files and `tbot`/`sidecar` are the running components (`ContainerProcess`). `plugin_identity` is where the
    sidecar's identity comes from: by default tbot's output inside the shared volume; a test may set it to a
    host file (e.g. a signed, short-lived identity), which is then mounted into the sidecar container instead.
    Commands of the sidecar's CLI given to `run_cli` run in the image too (see `run_cli`).
    """

    def __init__(self, workdir: Path, options: StackOptions | None = None, *, image: str | None = None) -> None:
        super().__init__(workdir, options)
        self.image = image or default_image()
        self.id = f"tm-e2e-{uuid.uuid4().hex[:10]}"
        self.containers: list[ContainerProcess] = []
        self.plugin_identity: Path | PurePosixPath | None = None
        self.sidecar: ContainerProcess | None = None
        self.sidecars: list[ContainerProcess] = []  # every sidecar container started, stopped ones included
        self.tbot: ContainerProcess | None = None
        self.auth_container: ContainerProcess | None = None
        self.config_path = workdir / "teleport-mattermost.toml"
        self.network: Network | None = None
        self.volumes: list[str] = []
        self._docker: docker.DockerClient | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------

    async def start(self, *, sidecar: bool = True) -> None:
        """Network and volumes, the fakes, user identities, the tbot container, and the sidecar."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        await self._open_http()
        import docker
        from testcontainers.core.config import testcontainers_config

        # The reaper image cannot be pulled on machines without a registry; the stack removes what it creates.
        testcontainers_config.ryuk_disabled = True
        self._docker = docker.from_env()
        await asyncio.to_thread(self._create_network_and_volumes)
        await asyncio.gather(self._start_auth(), self._start_mattermost())
        await self._export_auth_state()
        await self.sign_all(HUMAN_USERS)
        await self._start_tbot()
        if self.options.review is not None:
            write_review_keys(self.review_keys).chmod(0o644)  # read by the image's non-root user
        if sidecar:
            self.write_config()
            await self.start_sidecar()

    async def stop(self) -> None:
        """Stop every container (sidecar first), then remove the network and volumes; close the HTTP session."""
        for proc in reversed(self.containers):
            with contextlib.suppress(Exception):
                await proc.stop()
        self.containers.clear()
        if self.network is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.network.remove)
            self.network = None
        if self._docker is not None:
            for name in self.volumes:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self._docker.volumes.get(name).remove, force=True)
            self.volumes.clear()
            self._docker.close()
            self._docker = None
        await self._close_http()

    def _create_network_and_volumes(self) -> None:
        from testcontainers.core.network import Network

        assert self._docker is not None
        self.network = Network(docker_network_kw={"labels": {LABEL: self.id}}).create()
        for suffix in ("auth", "identity"):
            name = f"{self.id}-{suffix}"
            self._docker.volumes.create(name, labels={LABEL: self.id})
            self.volumes.append(name)

    def _container(
        self, name: str, command: list[str] | None, *, entrypoint: list[str] | None = None,
        alias: str | None = None, ports: Sequence[int] = (),
    ) -> ContainerProcess:
        """A hardened container on the stack's network (not started yet)."""
        from testcontainers.core.container import DockerContainer

        assert self.network is not None
        container = DockerContainer(self.image).with_name(f"{self.id}-{name}").with_network(self.network)
        if command is not None:
            container.with_command(command)
        if alias:
            container.with_network_aliases(alias)
        for port in ports:  # published on loopback only
            cast(dict[str, Any], container.ports)[f"{port}/tcp"] = ("127.0.0.1", None)
        container.with_tmpfs_mount("/tmp", "size=64m,mode=1777")
        kwargs: dict[str, Any] = {
            "read_only": True,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "labels": {LABEL: self.id},
        }
        if entrypoint is not None:
            kwargs["entrypoint"] = entrypoint
        container.with_kwargs(**kwargs)
        proc = ContainerProcess(name, container, self.workdir / "logs" / f"{name}.log")
        self.containers.append(proc)
        return proc

    def _seed(self, container: DockerContainer, path: Path | None, name: str) -> list[str]:
        if path is None:
            return []
        container.with_volume_mapping(str(path.resolve()), f"{SEED_DIR}/{name}", "ro")
        return ["--seed", f"{SEED_DIR}/{name}"]

    async def _start_auth(self) -> None:
        o = self.options
        proc = self._container(
            "teleport-auth", None, entrypoint=["python3", "-m", "fakes.teleport_auth"], alias="teleport",
            ports=(AUTH_PORT, PROXY_PORT, ADMIN_PORT),
        )
        command = [
            "serve", "--state-dir", AUTH_STATE_DIR, "--listen", f"0.0.0.0:{AUTH_PORT}",
            "--proxy-listen", f"0.0.0.0:{PROXY_PORT}", "--admin-listen", f"0.0.0.0:{ADMIN_PORT}",
            "--edition", o.edition, "--proxy-public-addr", f"teleport:{PROXY_PORT}",
            *self._seed(proc.container, o.teleport_seed, "teleport.toml"),
            *(["--server-version", REVIEW_TELEPORT_VERSION] if o.review is not None else []),
        ]
        proc.container.with_command(command)
        proc.container.with_volume_mapping(self.volumes[0], AUTH_STATE_DIR, "rw")
        await proc.start()
        ready = await proc.wait_json_line()
        ports = await asyncio.to_thread(lambda: {p: proc.host_port(p) for p in (AUTH_PORT, PROXY_PORT, ADMIN_PORT)})
        self.auth = {
            **ready,
            "auth_addr": f"127.0.0.1:{ports[AUTH_PORT]}",
            "proxy_addr": f"127.0.0.1:{ports[PROXY_PORT]}",
            "admin_addr": f"127.0.0.1:{ports[ADMIN_PORT]}",
            "network_auth_addr": f"teleport:{AUTH_PORT}",
            "network_proxy_addr": f"teleport:{PROXY_PORT}",
        }
        self.auth_container = proc

    async def _start_mattermost(self) -> None:
        o = self.options
        proc = self._container(
            "mattermost", None, entrypoint=["python3", "-m", "fakes.mattermost"], alias="mattermost",
            ports=(MATTERMOST_PORT,),
        )
        command = ["serve", "--listen", f"0.0.0.0:{MATTERMOST_PORT}",
                   *self._seed(proc.container, o.mattermost_seed, "mattermost.toml")]
        if o.rate_limit is not None:
            command += ["--rate-limit", str(o.rate_limit)]
        if o.rate_burst is not None:
            command += ["--rate-burst", str(o.rate_burst)]
        if o.review is not None:
            # The sidecar's address on the stack's network is private: Mattermost calls it only when allowed.
            command += ["--allowed-untrusted-internal-connections", REVIEW_ALIAS]
        proc.container.with_command(command)
        await proc.start()
        ready = await proc.wait_json_line()
        port = await asyncio.to_thread(proc.host_port, MATTERMOST_PORT)
        self.mm = {**ready, "url": f"http://127.0.0.1:{port}", "network_url": f"http://mattermost:{MATTERMOST_PORT}"}

    async def _export_auth_state(self) -> None:
        """Copy the fake Auth's state directory (CAs, users.toml) to `workdir/auth` for host-side signing."""
        assert self.auth_container is not None
        wrapped = self.auth_container.container.get_wrapped_container()
        stream, _ = await asyncio.to_thread(wrapped.get_archive, AUTH_STATE_DIR)
        data = await asyncio.to_thread(lambda: b"".join(stream))
        target = self.workdir / "auth-export"
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            archive.extractall(target, filter="data")
        (target / PurePosixPath(AUTH_STATE_DIR).name).rename(self.auth_state_dir)

    async def _start_tbot(self) -> None:
        o = self.options
        proc = self._container("tbot", [
            "tbot", "--state-dir", AUTH_STATE_DIR, "--user", o.plugin_user, "--destination", IDENTITY_DIR,
            "--ttl", o.tbot_ttl, "--renewal-interval", o.tbot_renewal or DEFAULT_TBOT_RENEWAL,
        ], entrypoint=["python3", "-m", "fakes.teleport_auth"])
        proc.container.with_volume_mapping(self.volumes[0], AUTH_STATE_DIR, "ro")
        proc.container.with_volume_mapping(self.volumes[1], IDENTITY_DIR, "rw")
        await proc.start()
        await proc.wait_json_line()
        self.tbot = proc
        self.plugin_identity = PurePosixPath(IDENTITY_DIR) / "identity"

    # -- the sidecar -------------------------------------------------------------------------------------------

    def _identity_in_container(self) -> str:
        """The identity path the sidecar's config names: tbot's output, or the mounted host file."""
        if isinstance(self.plugin_identity, Path):
            return STATIC_IDENTITY
        return str(self.plugin_identity)

    def _sidecar_mounts(self, container: DockerContainer) -> None:
        """The tbot volume (read-only, as in the pod) and, when a test chose one, a host identity file."""
        container.with_volume_mapping(self.volumes[1], IDENTITY_DIR, "ro")
        if isinstance(self.plugin_identity, Path):
            # Signed files are 0600 and owned by the test's user; the image's user reads a 0644 copy.
            copy = self.workdir / "static-identity"
            copy.write_bytes(self.plugin_identity.read_bytes())
            copy.chmod(0o644)
            container.with_volume_mapping(str(copy.resolve()), STATIC_IDENTITY, "ro")
        if self.options.review is not None:
            container.with_volume_mapping(str(self.review_keys.resolve()), REVIEW_KEYS, "ro")
        for key, value in self.options.extra_env.items():
            container.with_env(key, value)

    def write_config(self, *, addr: str | None = None, extra: str = "") -> Path:
        """Write the sidecar's TOML (container-network addresses, identity from the tbot volume) on the host."""
        target = addr or (self.auth["network_proxy_addr"] if self.options.via_proxy else self.auth["network_auth_addr"])
        review = ReviewEndpoint(
            listen_addr=f"0.0.0.0:{REVIEW_PORT}", public_url=f"http://{REVIEW_ALIAS}:{REVIEW_PORT}",
            keys_file=REVIEW_KEYS,
        )
        text = sidecar_config(self.options, addr=target, identity=self._identity_in_container(),
                              mm_url=self.mm["network_url"], refresh=True, review=review)
        self.config_path.write_text(text + extra)
        self.config_path.chmod(0o644)  # read by the image's non-root user through the bind mount
        return self.config_path

    async def start_sidecar(self, *, wait_ready: bool = True) -> ContainerProcess:
        """Run the image's default command (`start`) with the config and the tbot volume; wait for readiness."""
        review = self.options.review is not None
        proc = self._container(
            f"sidecar{uuid.uuid4().hex[:6]}", None, alias=REVIEW_ALIAS if review else None,
            ports=(REVIEW_PORT,) if review else (),
        )
        proc.container.with_volume_mapping(str(self.config_path.resolve()), CONFIG_PATH, "ro")
        self._sidecar_mounts(proc.container)
        await proc.start()
        self.sidecar = proc
        self.sidecars.append(proc)
        if review:
            port = await asyncio.to_thread(proc.host_port, REVIEW_PORT)
            self.review_url = f"http://127.0.0.1:{port}"
        if wait_ready:
            await proc.wait_log("Plugin is ready", timeout=60)
        return proc

    async def stop_sidecar(self) -> int | None:
        """SIGTERM the sidecar container and return its exit code."""
        if self.sidecar is None:
            return None
        code = await self.sidecar.stop()
        self.containers.remove(self.sidecar)
        self.sidecar = None
        return code

    async def sidecar_log(self) -> str:
        """The stderr of every sidecar container of this stack, oldest first (kept in files once removed)."""
        texts = []
        for proc in self.sidecars:
            if not proc.removed:
                texts.append(await asyncio.to_thread(proc.read_log))
            elif proc.log_path.exists():
                texts.append(proc.log_path.read_text(errors="replace"))
        return "\n".join(texts)

    async def run_cli(self, *argv: str, check: bool = True) -> tuple[int, str, str]:
        """Run a command to completion; the sidecar's own CLI (`python -m sidecar ...`) runs in the image.

        Every other command (the fakes' sign and tctl) runs on the host. For the sidecar, arguments naming
        existing host files are mounted read-only into the container and replaced by their paths there, and
        the container joins the stack's network with the tbot volume, like the sidecar itself.
        """
        if list(argv[:3]) != python_module("sidecar"):
            return await super().run_cli(*argv, check=check)
        proc = self._container(f"cli{uuid.uuid4().hex[:6]}", None)
        args = _mount_file_args(proc.container, argv[3:])
        proc.container.with_command(args)
        self._sidecar_mounts(proc.container)
        try:
            await proc.start()
            code = await proc.wait(60)
            out, err = await asyncio.to_thread(lambda: (proc.read_stdout(), proc.read_log()))
        finally:
            await proc.stop()
            self.containers.remove(proc)
        if check and code != 0:
            raise StackError(f"sidecar {' '.join(args[:2])} failed ({code}): {err.strip()}")
        return code, out, err


def _mount_file_args(container: DockerContainer, argv: Sequence[str]) -> list[str]:
    """Mount arguments that name host files read-only into the container; return the arguments as seen there."""
    args: list[str] = []
    for i, arg in enumerate(argv):
        if arg.startswith("/") and Path(arg).is_file():
            inside = f"/mnt/cli-args/{i}/{Path(arg).name}"
            container.with_volume_mapping(str(Path(arg).resolve()), inside, "ro")
            args.append(inside)
        else:
            args.append(arg)
    return args


__all__ = ["ContainerStack", "default_image"]
