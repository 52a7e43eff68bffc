"""Wiring and lifecycle of the running plugin (`teleport-mattermost start`).

Startup, in the Go plugin's order (TP `integrations/access/common/app.go` and `accessrequest/app.go`):
  credentials (expiry) → Teleport connection → Ping + minimum version (within 10 s) → cluster name and, on
  Enterprise, the Web UI link → Mattermost health check → watcher (ready after INIT and, when the server lets
  the plugin watch access monitoring rules, after listing them) → "Plugin is ready".
The watch covers `access_request` and `access_monitoring_rule`: rule events keep the routing rules current
(sidecar/engine/rule_cache.py), and every INIT lists them again; when the rules cannot be listed at start-up
the plugin does not start, as in Go. After every INIT, the first included, the reconcile lists the requests
and hands them to the engine in the background (sidecar/engine/reconcile.py).
Shutdown: SIGTERM or a first SIGINT stop intake, let in-flight events finish (15 s in all), close the
clients; a second SIGINT exits at once.
With `[health] listen_addr` set, the health listener (/livez, /readyz, /metrics) starts before everything else,
so /livez answers during start-up, and stops last; every component reports to its telemetry.
With `[review] enabled`, in-chat review (sidecar/review/) is wired after the Mattermost health check: its buttons
decorate the engine's root posts, and its callback listener runs until shutdown, stopping (clicks in flight get a
few seconds) before the clients close. Off, none of it is built: no listener, no buttons, the same posts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sidecar import __version__
from sidecar.config import Config, TeleportConfig
from sidecar.domain.backoff import Backoff
from sidecar.domain.errors import ConfigError, DurationError, IdentityError, SidecarError, StartupError, Unimplemented
from sidecar.domain.model import RequestEvent
from sidecar.domain.ports import RootDecorator, RootTarget
from sidecar.domain.telemetry import NullTelemetry, Telemetry
from sidecar.duration import parse_duration
from sidecar.engine.dispatcher import Dispatcher
from sidecar.engine.engine import Engine, EngineSettings
from sidecar.engine.reconcile import ReconcileFindings, Reconciler
from sidecar.engine.reminders import DueTimer, ReminderSettings
from sidecar.engine.retries import RETRY_BASE, RETRY_CAP, RetryScheduler
from sidecar.engine.routing import Router
from sidecar.engine.rule_cache import RuleCache, RuleSync
from sidecar.mattermost.bot import MattermostBot
from sidecar.mattermost.client import MattermostClient
from sidecar.observability.reachability import check_reachability
from sidecar.observability.server import health_listener
from sidecar.render.classic import RenderSettings, web_url_from_addr
from sidecar.review.buttons import ButtonTarget, ReviewButtons, resolved_attachments
from sidecar.review.mattermost_api import MattermostReviewApi
from sidecar.review.pipeline import ReviewPorts
from sidecar.review.posts import StoredPosts
from sidecar.review.service import ReviewService
from sidecar.teleport.client import TeleportClient, TeleportPluginData, TeleportRoles, TeleportRules, TeleportTraits
from sidecar.teleport.convert import KIND_ACCESS_MONITORING_RULE, KIND_ACCESS_REQUEST, request_event_from_proto
from sidecar.teleport.identity import Identity
from sidecar.teleport.inventory import ListResourcesCall, TeleportResourceNames
from sidecar.teleport.requests import TeleportRequestSource
from sidecar.teleport.reviews import TeleportReviews
from sidecar.teleport.transport import IdentitySource
from sidecar.teleport.version import MIN_SERVER_VERSION, check_min_version
from sidecar.teleport.watcher import ConnectedHook, Watcher

log = logging.getLogger("sidecar.app")

PLUGIN_NAME = "mattermost"
# With AllowPartialSuccess: a role that may not read access monitoring rules still watches requests.
WATCH_KINDS = (KIND_ACCESS_REQUEST, KIND_ACCESS_MONITORING_RULE)
INIT_TIMEOUT = 10.0
SHUTDOWN_TIMEOUT = 15.0
# Go gives each event 5 s. We allow more because rate-limit pauses and retries happen inside the handler, and a
# handler cut short mid-broadcast is what loses notifications.
EVENT_TIMEOUT = 30.0
# tbot may still be writing the first identity when both containers start together.
IDENTITY_WAIT = 60.0
# /readyz fails once the identity has less than one refresh interval left (at least this): past that point a
# renewal may not even be read before the certificate expires.
IDENTITY_MARGIN_MIN = 60.0

NO_VALID_CREDENTIALS = (
    "No valid credentials found, this likely means credentials are expired. "
    "In this case, please sign new credentials and increase their TTL if needed."
)


def identity_source(teleport: TeleportConfig) -> IdentitySource:
    """Where the credentials come from: the identity file, or the key pair trio."""
    if teleport.identity:
        return IdentitySource(identity_file=teleport.identity)
    return IdentitySource(key_pair=(teleport.client_key, teleport.client_crt, teleport.root_cas))


async def check_credentials(source: IdentitySource, *, wait: float = IDENTITY_WAIT) -> Identity:
    """Load the credentials, waiting briefly for files that do not exist yet; refuse expired ones."""
    deadline = asyncio.get_running_loop().time() + wait
    while any(not p.exists() for p in source.paths) and asyncio.get_running_loop().time() < deadline:
        missing = ", ".join(str(p) for p in source.paths if not p.exists())
        log.info("Waiting for credentials to appear", extra={"path": missing})
        await asyncio.sleep(1.0)
    try:
        identity = source.load()
    except IdentityError as exc:
        if "certificate expired" in str(exc):
            log.warning("Found expired credentials", extra={"error": str(exc)})
            raise StartupError(f"{NO_VALID_CREDENTIALS} ({exc})") from None
        raise
    log.info("At least one non-expired credential has been found, continuing startup")
    return identity


@dataclass(frozen=True)
class ClusterInfo:
    """What Ping told us."""

    name: str
    version: str
    web_proxy_url: str | None


async def check_teleport(client: TeleportClient) -> ClusterInfo:
    """Ping, check the server version, and find the Web UI link (Enterprise only)."""
    log.debug("Checking Teleport server version")
    try:
        pong = await client.ping()
    except Unimplemented:
        raise StartupError(f"server version must be at least {MIN_SERVER_VERSION}") from None
    except SidecarError as exc:
        raise StartupError(f"Unable to get Teleport server version: {exc}") from None
    check_min_version(pong.ServerVersion)
    web_url = None
    if pong.ServerFeatures.AdvancedAccessWorkflows and pong.ProxyPublicAddr:
        web_url = web_url_from_addr(pong.ProxyPublicAddr)
    return ClusterInfo(pong.ClusterName, pong.ServerVersion, web_url)


def engine_settings(config: Config, cluster: ClusterInfo) -> EngineSettings:
    """The engine's settings: recipients, the message style, the requester's messages, reminders, the cluster."""
    reminders = config.reminders
    return EngineSettings(
        role_to_recipients=config.role_to_recipients,
        render=RenderSettings(web_proxy_url=cluster.web_proxy_url),
        style=config.mattermost.message_style,
        cluster=cluster.name,
        notify_requester=config.notify.requester,
        requester_email_trait=config.notify.requester_email_trait,
        reminders=ReminderSettings(
            after=reminders.after,
            every=reminders.every,
            max=reminders.max,
            escalate_to=reminders.escalate_to,
            escalate_after=reminders.escalate_after,
        ),
    )


class ReviewButtonsDecorator:
    """`RootDecorator` of in-chat review: Approve / Deny on pending root posts, none once the request is decided."""

    def __init__(self, buttons: ReviewButtons) -> None:
        self._buttons = buttons

    def root_attachments(self, target: RootTarget, attachments: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The style's attachments with the buttons (pending, not long-term, not the requester's DM), else without."""
        if not target.pending:
            return resolved_attachments(attachments)
        button_target = ButtonTarget(
            request_id=target.request_id,
            channel_id=target.channel_id,
            post_id=target.post_id,
            pending=True,
            long_term=target.long_term,
            to_requester=target.to_requester,
            request_expires=target.request_expires,
        )
        return self._buttons.pending_attachments(button_target, attachments)


def review_service(
    config: Config,
    teleport: TeleportClient,
    mm_client: MattermostClient,
    store: TeleportPluginData,
    traits: TeleportTraits,
) -> ReviewService | None:
    """In-chat review over the real adapters, or None when `[review]` is off.

    Its posts are the engine's plugin data (`store`), its bindings read traits with routing's GetUser adapter, and
    it talks to Teleport and Mattermost over the same clients as the rest (one rate limit, one connection)."""
    if not config.review.enabled:
        return None
    reviews = TeleportReviews(teleport)
    mattermost = MattermostReviewApi(mm_client)
    ports = ReviewPorts(
        posts=StoredPosts(store),
        chat_users=mattermost,
        requests=reviews,
        directory=reviews,
        traits=traits,
        submitter=reviews,
        dialogs=mattermost,
        signing_key=mattermost,
    )
    return ReviewService(config.review, ports)


@contextlib.asynccontextmanager
async def review_listener(review: ReviewService | None) -> AsyncIterator[None]:
    """The review callback listener for the block (nothing when review is off)."""
    if review is None:
        yield
        return
    async with review.server():
        yield


def fail_fast_from_env() -> bool:
    """TELEPORT_PLUGIN_FAIL_FAST, parsed like Go's strconv.ParseBool."""
    return os.environ.get("TELEPORT_PLUGIN_FAIL_FAST", "").strip().lower() in {"1", "t", "true"}


def retry_cap_from_env() -> float:
    """TELEPORT_MATTERMOST_RETRY_MAX_INTERVAL: the longest wait between retries of owed work (Go duration).

    Defaults to 5 minutes; the fault tests shorten it. A malformed value is a ConfigError naming the variable.
    """
    raw = os.environ.get("TELEPORT_MATTERMOST_RETRY_MAX_INTERVAL", "").strip()
    if not raw:
        return RETRY_CAP
    try:
        seconds = parse_duration(raw)
    except DurationError as exc:
        raise ConfigError(f"TELEPORT_MATTERMOST_RETRY_MAX_INTERVAL: {exc}") from None
    if seconds < RETRY_BASE:
        raise ConfigError(f"TELEPORT_MATTERMOST_RETRY_MAX_INTERVAL must be at least {RETRY_BASE:g}s, got {raw}")
    return seconds


class Plugin:
    """One running plugin: the clients, the engine, the dispatcher and the watcher."""

    def __init__(self, config: Config, *, telemetry: Telemetry | None = None) -> None:
        self.config = config
        self.ready = asyncio.Event()
        self.telemetry: Telemetry = telemetry if telemetry is not None else NullTelemetry()

    async def run(self, stop: asyncio.Event) -> None:
        """Start, run until `stop` is set, then shut down gracefully. Raises SidecarError when fatal."""
        tc = self.config.teleport
        self._report_identity(await check_credentials(identity_source(tc)))
        try:
            async with asyncio.timeout(INIT_TIMEOUT):
                teleport = await TeleportClient.connect(
                    tc.addr,
                    identity_file=tc.identity or None,
                    key_pair=None if tc.identity else (tc.client_key, tc.client_crt, tc.root_cas),
                    refresh=tc.refresh_identity,
                    refresh_interval=tc.refresh_identity_interval,
                )
        except TimeoutError:
            raise StartupError(f"could not connect to Teleport at {tc.addr} within {INIT_TIMEOUT:.0f} s") from None
        async with teleport:
            teleport.provider.add_identity_listener(self._report_identity)
            await self._run_connected(teleport, stop)

    async def _run_connected(self, teleport: TeleportClient, stop: asyncio.Event) -> None:
        try:
            async with asyncio.timeout(INIT_TIMEOUT):
                cluster = await check_teleport(teleport)
        except TimeoutError:
            raise StartupError(f"Unable to get Teleport server version: no answer in {INIT_TIMEOUT:.0f} s") from None
        mm = self.config.mattermost
        async with (
            MattermostClient(mm.url, mm.token, telemetry=self.telemetry) as mm_client,
            self._reachability_checks(mm_client),
        ):
            bot = MattermostBot(mm_client)
            log.debug("Starting API health check")
            try:
                await bot.check_health()
            except SidecarError as exc:
                raise StartupError(f"API health check failed: {exc}") from None
            log.debug("API health check finished ok")
            self.telemetry.mattermost_reachable(True, "health check passed")
            rules = RuleCache(PLUGIN_NAME)
            rule_sync = RuleSync(rules, TeleportRules(teleport, PLUGIN_NAME))
            traits = TeleportTraits(teleport)
            store = TeleportPluginData(teleport, PLUGIN_NAME)
            review = review_service(self.config, teleport, mm_client, store, traits)
            decorator: RootDecorator | None = ReviewButtonsDecorator(review.buttons) if review is not None else None
            engine = Engine(
                store=store,
                roles=TeleportRoles(teleport),
                chat=bot,
                settings=engine_settings(self.config, cluster),
                telemetry=self.telemetry,
                router=Router(
                    role_to_recipients=self.config.role_to_recipients,
                    chat=bot,
                    rules=rules,
                    traits=traits,
                ),
                traits=traits,
                # Friendly resource names are shown by the rich style only; the classic texts have no resources.
                names=(
                    TeleportResourceNames(ListResourcesCall(teleport), cluster_name=cluster.name)
                    if self.config.mattermost.message_style == "rich"
                    else None
                ),
                decorator=decorator,
            )
            async with (
                review_listener(review),
                Dispatcher(engine.handle, event_timeout=EVENT_TIMEOUT) as dispatcher,
            ):
                # Owed work that failed transiently, and reminders when due, come back as RESUME events, ordered
                # with the rest. The reconcile after every INIT re-arms the reminders from the records.
                retries = RetryScheduler(dispatcher.submit, cap=retry_cap_from_env())
                engine.attach_retries(retries)
                timer = DueTimer(dispatcher.submit)
                engine.attach_timer(timer)
                try:
                    await self._watch(teleport, dispatcher, rule_sync, stop)
                finally:
                    await timer.close()
                    await retries.close()

    async def _watch(
        self, teleport: TeleportClient, dispatcher: Dispatcher, rule_sync: RuleSync, stop: asyncio.Event
    ) -> None:
        async def sink(event: RequestEvent) -> None:
            dispatcher.submit(event)

        reconciler = Reconciler(TeleportRequestSource(teleport), dispatcher, on_finished=self._report_reconcile)

        async def connected(number: int) -> None:
            # Every connection, the first included: the stream does not replay what happened while none was open.
            reconciler.trigger("start-up" if number == 1 else "reconnect")

        watcher = Watcher(
            lambda: teleport.watch_events(WATCH_KINDS),
            request_event_from_proto,
            sink,
            backoff=Backoff(0.02, 5.0),
            fail_fast=fail_fast_from_env(),
            on_connected=in_turn(self._watch_connected, connected),
            on_disconnected=self._watch_disconnected,
            rules=rule_sync,
        )
        watch_task = asyncio.create_task(watcher.run(), name="watcher")
        stop_task = asyncio.create_task(stop.wait(), name="stop")
        ready_task = asyncio.create_task(self._announce_ready(watcher), name="ready")
        reconcile_task = asyncio.create_task(reconciler.serve(), name="reconcile")
        try:
            await asyncio.wait({watch_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (watch_task, stop_task, ready_task, reconcile_task):
                task.cancel()
            results = await asyncio.gather(watch_task, stop_task, ready_task, reconcile_task, return_exceptions=True)
        # Intake has stopped; let queued and running events finish within the shutdown budget.
        if not await dispatcher.drain(SHUTDOWN_TIMEOUT - 2):
            log.warning("Shutdown timed out with events still in flight", extra={"pending": dispatcher.pending})
        watch_result = results[0]
        if isinstance(watch_result, BaseException) and not isinstance(watch_result, asyncio.CancelledError):
            log.error("Watcher event loop failed", extra={"error": str(watch_result)})
            if isinstance(watch_result, SidecarError):
                raise watch_result
            raise StartupError(f"watcher failed: {watch_result}") from watch_result

    # --- telemetry: what the adapters and the watcher report (the engine reports its own) ---------------

    def _report_identity(self, identity: Identity) -> None:
        self.telemetry.identity_expiry(identity.not_after.timestamp())

    async def _watch_connected(self, number: int) -> None:
        self.telemetry.watcher_connected(True)

    async def _watch_disconnected(self) -> None:
        self.telemetry.watcher_connected(False)

    def _report_reconcile(self, findings: ReconcileFindings) -> None:
        self.telemetry.reconcile(findings.submitted)
        for _ in range(findings.retries):
            self.telemetry.retry("reconcile_listing")

    @contextlib.asynccontextmanager
    async def _reachability_checks(self, client: MattermostClient) -> AsyncIterator[None]:
        """Check Mattermost (GET /users/me) periodically inside the block, when the health listener runs."""
        if not self.config.health.enabled:
            yield
            return
        task = asyncio.create_task(check_reachability(client.get_me, self.telemetry), name="mattermost-health")
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _announce_ready(self, watcher: Watcher) -> None:
        await watcher.ready.wait()
        self.ready.set()
        log.info("Plugin is ready")


def in_turn(*hooks: ConnectedHook) -> ConnectedHook:
    """One watcher `on_connected` hook that runs `hooks` one after the other."""

    async def hook(number: int) -> None:
        for each in hooks:
            await each(number)

    return hook


@contextlib.asynccontextmanager
async def telemetry_for(config: Config) -> AsyncIterator[Telemetry]:
    """With `[health] listen_addr`: the health listener runs inside the block and its telemetry is yielded.

    Without it: NullTelemetry, and nothing listens.
    """
    health = config.health
    if not health.enabled:
        yield NullTelemetry()
        return
    margin = max(IDENTITY_MARGIN_MIN, config.teleport.refresh_identity_interval)
    async with health_listener(health.host, health.port, identity_margin=margin, version=__version__) as recorder:
        yield recorder


async def serve(config: Config, stop: asyncio.Event) -> int:
    """Run the plugin until `stop`; return the exit code (0 clean, 1 fatal)."""
    log.info("Starting Teleport Access Mattermost Plugin", extra={"version": __version__})
    try:
        async with telemetry_for(config) as telemetry:
            await Plugin(config, telemetry=telemetry).run(stop)
    except SidecarError as exc:
        log.error("Terminating with fatal error...", extra={"error": str(exc)})
        return 1
    log.info("Successfully shut down")
    return 0


def install_signal_handlers(stop: asyncio.Event) -> None:
    """SIGTERM / first SIGINT → graceful shutdown; second SIGINT → exit at once."""
    loop = asyncio.get_running_loop()
    interrupts = 0

    def graceful() -> None:
        if not stop.is_set():
            log.info("Attempting graceful shutdown")
        stop.set()

    def interrupt() -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts > 1:
            log.error("Second interrupt, exiting immediately")
            logging.shutdown()
            os._exit(1)
        graceful()

    loop.add_signal_handler(signal.SIGTERM, graceful)
    loop.add_signal_handler(signal.SIGINT, interrupt)


def run(config: Config) -> int:
    """Blocking entry point used by the CLI."""

    async def main() -> int:
        stop = asyncio.Event()
        install_signal_handlers(stop)
        return await serve(config, stop)

    return asyncio.run(main())

