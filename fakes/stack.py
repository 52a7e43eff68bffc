"""A whole deployment as separate processes: fake Teleport, tbot emulator, fake Mattermost, the sidecar.

Used by the end-to-end tests and `make demo`. Everything is driven through public interfaces only: the
command lines, the sidecar's TOML config, the fakes' gRPC and HTTP APIs (including their admin routes).
"""

from __future__ import annotations

import abc
import asyncio
import base64
import contextlib
import json
import os
import re
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self, TypeVar

import aiohttp

from fakes.launch import ManagedProcess, ProcessFailed, python_module
from sidecar.engine.dispatcher import EVENT_HANDLED, SOURCE_WATCH
from sidecar.teleport.client import TeleportClient

T = TypeVar("T")

PLUGIN_USER = "access-plugin"
BOT_TOKEN = "teleport-bot-token"
HUMAN_USERS = ("admin", "myuser", "requester@example.com", "reviewer@example.com", "reviewer2@example.com")
REVIEW_KEY_ID = "e2e-1"
TRAIT = "mattermost_user_id"  # [review] trait's default
REVIEW_TELEPORT_VERSION = "18.11.0"  # what the fake Auth reports with review on: a release with the feature


class StackError(RuntimeError):
    """A component failed or a command returned an error; the message says which and why."""


@dataclass(frozen=True)
class ReviewOptions:
    """In-chat review for a stack: the sidecar's `[review]` table beyond where it listens and its keys.

    The stack chooses the listener (loopback, or the sidecar container's network alias), tells the fake
    Mattermost to allow calls to it (`--allowed-untrusted-internal-connections`) and writes the HMAC keys file.
    """

    reason: str = "off"
    verify_trigger_id: bool = True
    extra: str = ""  # more `key = value` lines for the [review] table


@dataclass(frozen=True)
class ReviewEndpoint:
    """Where a stack's sidecar listens for Mattermost's callbacks, as its config names it."""

    listen_addr: str
    public_url: str
    keys_file: str


@dataclass
class StackOptions:
    """How to assemble the stack. Defaults: Enterprise edition, direct Auth connection, static identity."""

    edition: str = "enterprise"
    teleport_seed: Path | None = None
    mattermost_seed: Path | None = None
    via_proxy: bool = False
    tbot_renewal: str | None = None  # e.g. "3s": run the tbot emulator with this renewal interval
    tbot_ttl: str = "1h"
    recipients: Sequence[str] = ()
    role_to_recipients: Mapping[str, Sequence[str]] = field(default_factory=dict)
    rate_limit: float | None = None
    rate_burst: int | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)
    sidecar_debug: bool = True
    health: bool = False  # [health] listen_addr = "127.0.0.1:0": the sidecar logs the port it picked
    review: ReviewOptions | None = None  # in-chat review on (the sidecar's [review] table), see ReviewOptions
    plugin_user: str = PLUGIN_USER  # the Teleport user the sidecar's identity (or tbot's) is signed for


def _toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid TOML basic string


def _toml_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(_toml_string(v) for v in values) + "]"


def sidecar_config(
    options: StackOptions, *, addr: str, identity: str, mm_url: str, refresh: bool,
    review: ReviewEndpoint | None = None,
) -> str:
    """The sidecar's TOML for a stack: where Teleport and Mattermost are, recipients, debug logs to stderr, and
    `[review]` when the options ask for it (`review` says where it listens)."""
    lines = ["[teleport]", f"addr = {_toml_string(addr)}", f"identity = {_toml_string(identity)}"]
    if refresh:
        lines += ["refresh_identity = true", 'refresh_identity_interval = "1s"']
    lines += ["", "[mattermost]", f"url = {_toml_string(mm_url)}", f"token = {_toml_string(BOT_TOKEN)}"]
    if options.recipients:
        lines.append(f"recipients = {_toml_list(options.recipients)}")
    if options.role_to_recipients:
        lines += ["", "[role_to_recipients]"]
        lines += [f"{_toml_string(k)} = {_toml_list(v)}" for k, v in options.role_to_recipients.items()]
    severity = "debug" if options.sidecar_debug else "info"
    lines += ["", "[log]", 'output = "stderr"', f'severity = "{severity}"']
    if options.health:
        lines += ["", "[health]", 'listen_addr = "127.0.0.1:0"']
    if options.review is not None and review is not None:
        lines += [
            "", "[review]", "enabled = true", f"listen_addr = {_toml_string(review.listen_addr)}",
            f"public_url = {_toml_string(review.public_url)}", f"hmac_keys_file = {_toml_string(review.keys_file)}",
            f"reason = {_toml_string(options.review.reason)}",
            f"verify_trigger_id = {'true' if options.review.verify_trigger_id else 'false'}",
        ]
        if options.review.extra:
            lines.append(options.review.extra.rstrip("\n"))
    return "\n".join(lines) + "\n"


def write_review_keys(path: Path) -> Path:
    """A fresh `[review]` HMAC keys file (one 32-byte key, id REVIEW_KEY_ID), readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    path.write_text(f"# test keys, made by fakes.stack\n{REVIEW_KEY_ID} {key}\n")
    path.chmod(0o600)
    return path


def free_loopback_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the review listener's, which its public URL must name up front)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class BaseStack(abc.ABC):
    """What the tests do as people: sign identities, drive requests, read Mattermost and plugin data.

    Shared by every way of running the stack (processes here, containers in fakes/container_stack.py and
    fakes/compose_stack.py).
    Subclasses set `auth` (auth_addr, admin_addr), `mm` (url, admin_token) and `auth_state_dir` (the fake
    Auth's state directory, or a copy of it: its CA signs the users' identities).
    """

    def __init__(self, workdir: Path, options: StackOptions | None = None) -> None:
        self.workdir = workdir
        self.options = options or StackOptions()
        self.auth: dict[str, Any] = {}
        self.mm: dict[str, Any] = {}
        self.identities: dict[str, Path] = {}
        self.auth_state_dir = workdir / "auth"
        # In-chat review: the keys file on the host, and the listener's URL as the host reaches it (for tests that
        # call the sidecar directly, as an attacker on Mattermost's network would).
        self.review_keys = workdir / "review-keys"
        self.review_url = ""
        self._http: aiohttp.ClientSession | None = None
        self._env = {**os.environ, **self.options.extra_env}

    @abc.abstractmethod
    async def start(self, *, sidecar: bool = True) -> None:
        """Bring every component up (and the sidecar unless `sidecar` is false)."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Stop everything this stack started; safe to call after a failed start."""

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _open_http(self) -> None:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))

    async def _close_http(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def run_cli(self, *argv: str, check: bool = True) -> tuple[int, str, str]:
        """Run a command to completion; return (exit code, stdout, stderr)."""
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=self._env,
            stdin=asyncio.subprocess.DEVNULL,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        code = proc.returncode if proc.returncode is not None else -1
        if check and code != 0:
            raise StackError(f"{' '.join(argv[2:5])} failed ({code}): {err.decode(errors='replace').strip()}")
        return code, out.decode(errors="replace"), err.decode(errors="replace")

    async def sign(self, user: str, ttl: str = "1h") -> Path:
        """Sign an identity file for `user` with the fake Auth's CA and remember it."""
        out = self.workdir / "identities" / f"{user}.identity"
        out.parent.mkdir(parents=True, exist_ok=True)
        await self.run_cli(*python_module(
            "fakes.teleport_auth", "sign", "--state-dir", str(self.auth_state_dir), "--user", user,
            "--ttl", ttl, "--out", str(out),
        ))
        self.identities[user] = out
        return out

    async def sign_all(self, users: Sequence[str]) -> None:
        """Sign identities for several users concurrently."""
        await asyncio.gather(*(self.sign(u) for u in users))

    async def tctl(self, user: str, *args: str) -> Any:
        """`python -m fakes.tctl ... requests <args>` as `user`; returns the parsed JSON output."""
        _, out, _ = await self.run_cli(*python_module(
            "fakes.tctl", "--addr", self.auth["auth_addr"], "--identity",
            str(self.identities[user]), "requests", *args,
        ))
        return json.loads(out)

    async def create_request(self, user: str, reason: str = "", reviewers: Sequence[str] = (),
                             roles: str = "editor") -> str:
        """Create an access request as `user` and return its id."""
        args = ["create", "--roles", roles]
        if reason:
            args += ["--reason", reason]
        if reviewers:
            args += ["--reviewers", ",".join(reviewers)]
        result = await self.tctl(user, *args)
        return str(result["id"])

    @contextlib.asynccontextmanager
    async def teleport_client(self, user: str) -> AsyncIterator[TeleportClient]:
        """A gRPC client of the fake Auth, authenticated as `user`."""
        client = await TeleportClient.connect(self.auth["auth_addr"], identity_file=self.identities[user])
        async with client:
            yield client

    async def auth_admin(self, method: str, path: str, body: Any = None) -> Any:
        """Call the fake Auth admin API."""
        return await self._json(method, f"http://{self.auth['admin_addr']}{path}", body)

    async def plugin_data(self, request_id: str) -> dict[str, str]:
        """The `mattermost` plugin data entry for a request (empty when none)."""
        return _plugin_entry(await self.auth_admin("GET", f"/plugin-data/{request_id}"))

    async def mm_admin(self, method: str, path: str, body: Any = None) -> Any:
        """Call the fake Mattermost with the admin token (API or /fake/ routes)."""
        return await self._json(method, f"{self.mm['url']}{path}", body, token=self.mm["admin_token"])

    async def mm_as(self, token: str, method: str, path: str, body: Any = None) -> Any:
        """Call the fake Mattermost's API with any token (e.g. the bot's)."""
        return await self._json(method, f"{self.mm['url']}{path}", body, token=token)

    async def mm_user_id(self, username: str) -> str:
        """The Mattermost user id of a seeded user or bot."""
        return str((await self.mm_admin("GET", f"/api/v4/users/username/{username}"))["id"])

    async def set_traits(self, user: str, traits: Mapping[str, Sequence[str]]) -> None:
        """Replace a Teleport user's traits (the fake Auth's admin API)."""
        await self.auth_admin("PUT", f"/users/{user}/traits", {"traits": {k: list(v) for k, v in traits.items()}})

    async def bind_reviewer(self, teleport_user: str, mattermost_username: str, trait: str = TRAIT) -> str:
        """Bind a Mattermost user to a Teleport user for in-chat review (the trait holds the Mattermost id); the id."""
        mm_id = await self.mm_user_id(mattermost_username)
        traits = dict((await self.auth_admin("GET", f"/users/{teleport_user}/traits"))["traits"])
        traits[trait] = [mm_id]
        await self.set_traits(teleport_user, traits)
        return mm_id

    async def review_call(self, body: Any) -> Any:
        """POST a click body straight to the sidecar's review listener (not through Mattermost) → its JSON answer."""
        if not self.review_url:
            raise StackError("this stack runs no review listener (StackOptions.review)")
        return await self._json("POST", f"{self.review_url}/review/v1/action", body)

    async def posts(self) -> list[dict[str, Any]]:
        """Every post with its write history (GET /fake/posts)."""
        return list(await self.mm_admin("GET", "/fake/posts"))

    async def sidecar_log(self) -> str:
        """Everything every sidecar of this stack has logged so far, restarts included."""
        raise StackError(f"{type(self).__name__} cannot read the sidecar's log")

    async def settled(self, *request_ids: str, timeout: float = 30.0) -> None:
        """Wait until the sidecar has finished with every watch event the fake Auth sent about these requests.

        The fake Auth counts the events it handed to watch streams per request (GET /watch-events/{id}); the
        sidecar logs `Event handled` (DEBUG) once per event it has finished. When the counts match, the sidecar
        has nothing left to do for these requests until the test acts again, so asserting that something did
        not happen (no extra post, no further edit) means something. Both counts cover every sidecar the stack
        has run, so a restart in between is fine. The sidecar must be the fake Auth's only watcher: another
        stream's events would be counted too and the wait would time out.
        """
        if not self.options.sidecar_debug:
            raise StackError("settled() counts the sidecar's debug lines: use StackOptions(sidecar_debug=True)")
        counts: dict[str, tuple[int, int]] = {}
        try:
            async with asyncio.timeout(timeout):
                while True:
                    # Sent first, then handled: while the test is not acting, handled can only catch up.
                    sent = {rid: int((await self.auth_admin("GET", f"/watch-events/{rid}"))["emitted"])
                            for rid in request_ids}
                    log = await self.sidecar_log()
                    counts = {rid: (handled_events(log, rid), sent[rid]) for rid in request_ids}
                    if any(handled > n for handled, n in counts.values()):
                        raise StackError(f"the sidecar handled more events than the fake Auth sent: {counts}")
                    if all(handled == n for handled, n in counts.values()):
                        return
                    await asyncio.sleep(0.05)
        except TimeoutError:
            unfinished = {rid: f"{h} of {n}" for rid, (h, n) in counts.items() if h != n}
            raise TimeoutError(f"sidecar still busy after {timeout} s; events handled: {unfinished}") from None

    async def _json(self, method: str, url: str, body: Any = None, token: str | None = None) -> Any:
        assert self._http is not None, "stack not started"
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self._http.request(method, url, json=body, headers=headers) as resp:
            text = await resp.text()
            if resp.status >= 400:
                raise StackError(f"{method} {url} → {resp.status}: {text[:300]}")
            return json.loads(text) if text.strip() else None


class Stack(BaseStack):
    """Async context manager that starts every component as a process and stops them all on exit, even after errors."""

    def __init__(self, workdir: Path, options: StackOptions | None = None) -> None:
        super().__init__(workdir, options)
        self.processes: list[ManagedProcess] = []
        self.plugin_identity: Path | None = None
        self.sidecar: ManagedProcess | None = None
        self.tbot: ManagedProcess | None = None
        self.config_path = workdir / "teleport-mattermost.toml"
        self._review_port = 0

    # -- lifecycle ---------------------------------------------------------------------------------------------

    async def start(self, *, sidecar: bool = True) -> None:
        """Start the fakes, sign identities, optionally the tbot emulator, and the sidecar."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        await self._open_http()
        await asyncio.gather(self._start_auth(), self._start_mattermost())
        await self.sign_all(HUMAN_USERS)
        if self.options.tbot_renewal:
            await self._start_tbot()
        else:
            self.plugin_identity = await self.sign(self.options.plugin_user)
        if self.options.review is not None:
            write_review_keys(self.review_keys)
            self._review_port = free_loopback_port()
            self.review_url = f"http://127.0.0.1:{self._review_port}"
        if sidecar:
            self.write_config()
            await self.start_sidecar()

    async def stop(self) -> None:
        """Stop every process (sidecar first) and close the HTTP session."""
        for proc in reversed(self.processes):
            with contextlib.suppress(ProcessFailed, TimeoutError, ProcessLookupError):
                await proc.stop()
        self.processes.clear()
        await self._close_http()

    def _spawn(self, name: str, argv: list[str]) -> ManagedProcess:
        proc = ManagedProcess(name, argv, log_path=self.workdir / "logs" / f"{name}.log", env=self._env)
        self.processes.append(proc)
        return proc

    async def _start_auth(self) -> None:
        args = [
            "serve", "--state-dir", str(self.auth_state_dir), "--listen", "127.0.0.1:0",
            "--proxy-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--edition", self.options.edition,
        ]
        if self.options.teleport_seed:
            args += ["--seed", str(self.options.teleport_seed)]
        if self.options.review is not None:
            args += ["--server-version", REVIEW_TELEPORT_VERSION]
        proc = self._spawn("teleport-auth", python_module("fakes.teleport_auth", *args))
        await proc.start()
        self.auth = await proc.wait_json_line()

    async def _start_mattermost(self) -> None:
        args = ["serve", "--listen", "127.0.0.1:0"]
        if self.options.mattermost_seed:
            args += ["--seed", str(self.options.mattermost_seed)]
        if self.options.rate_limit is not None:
            args += ["--rate-limit", str(self.options.rate_limit)]
        if self.options.rate_burst is not None:
            args += ["--rate-burst", str(self.options.rate_burst)]
        if self.options.review is not None:
            # The sidecar's callbacks are on loopback, which Mattermost refuses to call unless allowed.
            args += ["--allowed-untrusted-internal-connections", "127.0.0.1"]
        proc = self._spawn("mattermost", python_module("fakes.mattermost", *args))
        await proc.start()
        self.mm = await proc.wait_json_line()

    async def _start_tbot(self) -> None:
        destination = self.workdir / "tbot"
        proc = self._spawn("tbot", python_module(
            "fakes.teleport_auth", "tbot", "--state-dir", str(self.auth_state_dir), "--user", self.options.plugin_user,
            "--destination", str(destination), "--ttl", self.options.tbot_ttl,
            "--renewal-interval", str(self.options.tbot_renewal),
        ))
        await proc.start()
        await proc.wait_json_line()
        self.tbot = proc
        self.plugin_identity = destination / "identity"

    # -- the sidecar -------------------------------------------------------------------------------------------

    def write_config(self, *, addr: str | None = None, extra: str = "") -> Path:
        """Write the sidecar's TOML config for this stack."""
        target = addr or (self.auth["proxy_addr"] if self.options.via_proxy else self.auth["auth_addr"])
        review = None
        if self.options.review is not None:
            review = ReviewEndpoint(
                listen_addr=f"127.0.0.1:{self._review_port}", public_url=self.review_url,
                keys_file=str(self.review_keys),
            )
        text = sidecar_config(self.options, addr=target, identity=str(self.plugin_identity), mm_url=self.mm["url"],
                              refresh=bool(self.options.tbot_renewal), review=review)
        self.config_path.write_text(text + extra)
        return self.config_path

    async def start_sidecar(self, *, wait_ready: bool = True) -> ManagedProcess:
        """Start `python -m sidecar start -c <config>` and wait for "Plugin is ready"."""
        proc = self._spawn("sidecar", python_module("sidecar", "start", "-c", str(self.config_path)))
        offset = proc.log_size()
        await proc.start()
        self.sidecar = proc
        if wait_ready:
            await proc.wait_log("Plugin is ready", timeout=30, start=offset)
        return proc

    async def start_extra_sidecar(self, name: str = "sidecar-2") -> ManagedProcess:
        """Start another sidecar with the same config (a second replica) and wait for "Plugin is ready".

        It logs to `logs/<name>.log`, is stopped with the stack, and is not `sidecar`: `stop_sidecar()`,
        `sidecar_log()` and `settled()` (which assumes a single watcher) ignore it.
        """
        proc = self._spawn(name, python_module("sidecar", "start", "-c", str(self.config_path)))
        await proc.start()
        await proc.wait_log("Plugin is ready", timeout=30)
        return proc

    async def stop_sidecar(self) -> int | None:
        """SIGTERM the sidecar and return its exit code."""
        if self.sidecar is None:
            return None
        code = await self.sidecar.stop()
        self.processes.remove(self.sidecar)
        self.sidecar = None
        return code

    async def sidecar_log(self) -> str:
        """The sidecar's log file: every sidecar process of this stack appends to the same one."""
        try:
            return (self.workdir / "logs" / "sidecar.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""


RETRY = "retry"  # handled_events' source for RESUME events


def handled_events(log: str, request_id: str, source: str = SOURCE_WATCH) -> int:
    """How many `Event handled` lines about `request_id` from `source` a sidecar log has (text or JSON format).

    The default counts the events the watch stream delivered, which is what `settled()` compares with the fake
    Auth's count; the reconcile's events (`source:reconcile`) were never sent by it. A line without a source
    (an older sidecar) counts as a watch event. RESUME events (retries of owed work) go through the watch lane but
    were never sent by the fake Auth either: they count as source `retry`, whatever their line says.
    """
    text_line = re.compile(rf"\] {re.escape(EVENT_HANDLED)} (?:.* )?request_id:{re.escape(request_id)}(?: |$)")
    text_source = re.compile(r" source:(\S+)")
    text_resume = re.compile(r" request_op:resume(?: |$)")
    count = 0
    for line in log.splitlines():
        if EVENT_HANDLED not in line or request_id not in line:
            continue
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                declared = record.get("source", SOURCE_WATCH)
                count += (
                    record.get("message") == EVENT_HANDLED
                    and record.get("request_id") == request_id
                    and (RETRY if record.get("request_op") == "resume" else declared) == source
                )
        elif text_line.search(line):
            found = text_source.search(line)
            declared = found.group(1) if found else SOURCE_WATCH
            count += (RETRY if text_resume.search(line) else declared) == source
    return count


def _plugin_entry(data: Any) -> dict[str, str]:
    """Find the `mattermost` entry in the admin API's plugin-data answer, whatever its nesting."""
    if isinstance(data, dict):
        entry = data.get("mattermost")
        if isinstance(entry, dict):
            values = entry.get("Data", entry)  # PluginDataEntry as JSON: {"Data": {...}}
            return {str(k): str(v) for k, v in values.items()}
        for value in data.values():
            found = _plugin_entry(value)
            if found:
                return found
    if isinstance(data, list):
        for value in data:
            found = _plugin_entry(value)
            if found:
                return found
    return {}


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float = 20.0, interval: float = 0.1) -> T:
    """Poll `check` (across processes there is nothing to await) until it returns a value that is not None."""
    last: BaseException | None = None
    try:
        async with asyncio.timeout(timeout):
            while True:
                try:
                    value = await check()
                    if value is not None:
                        return value
                except (StackError, AssertionError, KeyError) as exc:
                    last = exc
                await asyncio.sleep(interval)
    except TimeoutError:
        # Keep the exception type callers catch, but say what was last seen.
        raise TimeoutError(f"condition not met within {timeout} s; last error: {last}") from None


__all__ = [
    "ReviewEndpoint", "ReviewOptions", "Stack", "StackError", "StackOptions", "eventually", "free_loopback_port",
    "handled_events", "write_review_keys",
]
