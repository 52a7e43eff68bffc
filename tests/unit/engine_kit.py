"""What the engine tests of the rich style, the requester's messages and reminders share: a settable clock,
an engine over the in-memory ports, requests and reviews."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sidecar.codec.plugindata import decode
from sidecar.domain.backoff import Backoff
from sidecar.domain.model import AccessRequest, EventOp, RequestEvent, RequestState, Review
from sidecar.domain.ports import RootDecorator
from sidecar.domain.record import PluginData
from sidecar.engine.cas import Cas
from sidecar.engine.engine import Engine, EngineSettings
from sidecar.engine.reminders import DueTimer
from tests.unit.fakes_ports import FakeChat, FakeNames, FakePluginDataStore, FakeRoleLookup, FakeTraits

RID = "0b3d1c0e-7a0f-4a1f-9d7e-00000000000a"
START = 1_735_830_240.0  # 2025-01-02 15:04 UTC
AT = datetime.fromtimestamp(START, UTC)
CHANNELS = {
    "team/ops": "chan-ops",
    "team/leads": "chan-leads",
    "reviewer1@example.com": "dm-rev1",
    "alice@example.com": "dm-alice",
}


@dataclass
class Clock:
    """Wall-clock seconds that move only when a test says so."""

    now: float = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def no_sleep(delay: float) -> None:
    await asyncio.sleep(0)


@dataclass
class Kit:
    """One engine and its fakes."""

    engine: Engine
    store: FakePluginDataStore
    chat: FakeChat
    clock: Clock
    traits: FakeTraits
    names: FakeNames
    settings: EngineSettings
    roles: FakeRoleLookup = field(default_factory=lambda: FakeRoleLookup({"editor": ["root", "ubuntu"]}))

    def record(self, request_id: str = RID) -> PluginData:
        return decode(self.store.entries[request_id])

    def restarted(self, timer: DueTimer | None = None) -> Kit:
        """A new engine (a restart, or another replica) over the same plugin data and Mattermost."""
        return make_kit(self.settings, chat=self.chat, store=self.store, clock=self.clock, traits=self.traits,
                        names=self.names, timer=timer)

    async def put(self, request: AccessRequest) -> None:
        await self.engine.handle(RequestEvent(EventOp.PUT, request.id, request))

    async def delete(self, request_id: str = RID) -> None:
        await self.engine.handle(RequestEvent(EventOp.DELETE, request_id))

    async def resume(self, request_id: str = RID) -> None:
        await self.engine.handle(RequestEvent(EventOp.RESUME, request_id))


def make_kit(
    settings: EngineSettings,
    *,
    chat: FakeChat | None = None,
    store: FakePluginDataStore | None = None,
    clock: Clock | None = None,
    traits: FakeTraits | None = None,
    names: FakeNames | None = None,
    timer: DueTimer | None = None,
    replica: str | None = None,
    decorator: RootDecorator | None = None,
) -> Kit:
    store = store if store is not None else FakePluginDataStore()
    chat = chat if chat is not None else FakeChat(channels=dict(CHANNELS))
    clock = clock if clock is not None else Clock()
    traits = traits if traits is not None else FakeTraits()
    names = names if names is not None else FakeNames()
    roles = FakeRoleLookup({"editor": ["root", "ubuntu"]})
    engine = Engine(
        store=store,
        roles=roles,
        chat=chat,
        settings=settings,
        cas=Cas(store, backoff=lambda: Backoff(0.001, 1.0, sleep=no_sleep)),
        wall_clock=clock,
        traits=traits,
        names=names,
        timer=timer,
        replica=replica,
        decorator=decorator,
    )
    return Kit(engine, store, chat, clock, traits, names, settings, roles)


def request(state: RequestState = RequestState.PENDING, **changes: Any) -> AccessRequest:
    base = AccessRequest(
        id=RID,
        user="alice@example.com",
        roles=("editor",),
        state=state,
        request_reason="deploy the hotfix",
        suggested_reviewers=("reviewer1@example.com",),
        created=AT,
        expires=AT + timedelta(hours=8),
        expiry=AT + timedelta(hours=1),
    )
    return dataclasses.replace(base, **changes)


def review(author: str = "reviewer1@example.com", state: RequestState = RequestState.APPROVED,
           reason: str = "looks fine") -> Review:
    return Review(author, state, reason, AT + timedelta(minutes=5))


def attachments(props: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The message attachments of a post's props (none for a text-only post)."""
    return list((props or {}).get("attachments", []))
