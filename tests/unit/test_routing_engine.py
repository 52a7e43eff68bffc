"""The engine with routing: rules decide a new request's posts once; later events use the stored posts (R20)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime

import pytest

from sidecar.domain.backoff import Backoff
from sidecar.domain.errors import TransientError
from sidecar.domain.model import AccessRequest, EventOp, MonitoringRule, RequestEvent, RequestState, Review
from sidecar.engine.cas import Cas
from sidecar.engine.engine import Engine, EngineSettings
from sidecar.engine.routing import Router
from sidecar.engine.rule_cache import RuleCache
from sidecar.render.classic import RenderSettings
from tests.unit.fakes_ports import FakeChat, FakePluginDataStore, FakeRoleLookup

RID = "0b3d1c0e-7a0f-4a1f-9d7e-000000000002"
AT = datetime(2025, 1, 2, 15, 4, tzinfo=UTC)
STATIC = {"*": ["team-llama/channel-llama"]}
CHANNELS = {"team-llama/channel-llama": "chan-llama", "reviewer1@example.com": "dm-1", "team-llama/amr": "chan-amr"}
RULE = MonitoringRule("amr", ("access_request",), "!is_empty(access_request.spec.roles)", "mattermost",
                      ("team-llama/amr", "reviewer1@example.com"), "1")


class CountingTraits:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.error: Exception | None = None

    async def user_traits(self, user: str) -> Mapping[str, tuple[str, ...]]:
        await asyncio.sleep(0)
        self.calls.append(user)
        if self.error is not None:
            raise self.error
        return {}


async def _no_sleep(delay: float) -> None:
    await asyncio.sleep(0)


def setup(*rules: MonitoringRule) -> tuple[Engine, FakePluginDataStore, FakeChat, RuleCache, CountingTraits]:
    store = FakePluginDataStore()
    chat = FakeChat(channels=dict(CHANNELS))
    cache = RuleCache("mattermost")
    for each in rules:
        cache.put(each)
    traits = CountingTraits()
    settings = EngineSettings(role_to_recipients=STATIC, render=RenderSettings())
    engine = Engine(
        store=store,
        roles=FakeRoleLookup({"editor": ["root"]}),
        chat=chat,
        settings=settings,
        cas=Cas(store, backoff=lambda: Backoff(0.001, 1.0, sleep=_no_sleep)),
        router=Router(role_to_recipients=STATIC, chat=chat, rules=cache, traits=traits),
    )
    return engine, store, chat, cache, traits


def put(state: RequestState = RequestState.PENDING, *, listed: bool = False, **changes: object) -> RequestEvent:
    fields: dict[str, object] = {"id": RID, "user": "alice", "roles": ("editor",), "state": state}
    fields.update(changes)
    return RequestEvent(EventOp.PUT, RID, AccessRequest(**fields), listed=listed)  # type: ignore[arg-type]


def root_channels(chat: FakeChat) -> list[str]:
    return sorted(post.channel_id for post in chat.root_posts())


async def test_a_new_request_goes_to_the_rule_recipients_only() -> None:
    engine, _, chat, _, traits = setup(RULE)
    await engine.handle(put(suggested_reviewers=("reviewer1@example.com",)))
    assert root_channels(chat) == ["chan-amr", "dm-1"]
    assert traits.calls == ["alice"]


async def test_without_rules_the_static_recipients_get_it() -> None:
    engine, _, chat, _, traits = setup()
    await engine.handle(put())
    assert root_channels(chat) == ["chan-llama"]
    assert traits.calls == []


async def test_r20_an_announced_request_is_not_routed_again_and_keeps_its_posts() -> None:
    engine, _, chat, cache, traits = setup(RULE)
    await engine.handle(put())
    posted = {post.post_id for post in chat.root_posts()}
    cache.delete("amr")  # the rule is gone; the request's posts stay where they are
    review = Review("reviewer1@example.com", RequestState.APPROVED, "ok", AT)
    await engine.handle(put(reviews=(review,)))
    await engine.handle(put(RequestState.APPROVED, reviews=(review,), resolve_reason="ok"))
    assert traits.calls == ["alice"]  # routed once, at announcement
    assert {post.post_id for post in chat.root_posts()} == posted
    assert {post.root_id for post in chat.replies()} == posted
    assert {ref.post_id for ref, _ in chat.edits} == posted


async def test_a_listed_event_for_an_announced_request_costs_no_routing() -> None:
    engine, _, chat, _, traits = setup(RULE)
    await engine.handle(put())
    await engine.handle(put(listed=True))
    assert traits.calls == ["alice"]
    assert len(chat.root_posts()) == 2


async def test_a_listed_event_for_a_new_request_is_routed_after_the_read() -> None:
    engine, store, chat, _, traits = setup(RULE)
    await engine.handle(put(listed=True))
    assert root_channels(chat) == ["chan-amr", "dm-1"]
    assert traits.calls == ["alice"]
    assert RID in store.entries


async def test_a_restarted_engine_never_announces_an_announced_request_again() -> None:
    engine, store, chat, _, _ = setup(RULE)
    await engine.handle(put())
    traits = CountingTraits()
    cache = RuleCache("mattermost")
    cache.put(RULE)
    restarted = Engine(
        store=store,
        roles=FakeRoleLookup({"editor": ["root"]}),
        chat=chat,
        settings=EngineSettings(role_to_recipients=STATIC),
        cas=Cas(store, backoff=lambda: Backoff(0.001, 1.0, sleep=_no_sleep)),
        router=Router(role_to_recipients=STATIC, chat=chat, rules=cache, traits=traits),
    )
    # Never seen by this process and straight from the watch: it is routed up front (almost surely new),
    # and the write finds the record, so nothing is posted again.
    await restarted.handle(put())
    assert traits.calls == ["alice"]
    assert len(chat.root_posts()) == 2


async def test_a_transient_routing_failure_fails_the_event_before_anything_is_stored() -> None:
    engine, store, chat, _, _ = setup(RULE)
    chat.resolve_errors["reviewer1@example.com"] = TransientError("mattermost down")
    with pytest.raises(TransientError):
        await engine.handle(put())
    assert store.entries == {}
    del chat.resolve_errors["reviewer1@example.com"]
    await engine.handle(put())  # the dispatcher's retry
    assert root_channels(chat) == ["chan-amr", "dm-1"]
