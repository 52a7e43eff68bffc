"""TeleportRoles: a short cache and one GetRole in flight per role.

Most tests count calls on a fake client they hold open or fail at will; the last ones count the GetRole calls
the loopback Auth server (tests/teleport/servers.py) actually receives.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from sidecar.domain.errors import AccessDenied, NotFound, TransientError, Unauthorized
from sidecar.domain.ports import RoleLookup
from sidecar.teleport.client import ROLE_CACHE_TTL, TeleportClient, TeleportRoles
from sidecar.teleport.wire import types_pb2
from tests.teleport.servers import AuthState

ROLES = {"editor": ["root", "ubuntu"], "auditor": ["audit"]}


class CountingRoles:
    """A GetRole that counts its calls, can be held open, and fails as scripted."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.failures: dict[str, list[Exception]] = {}
        self.open = asyncio.Event()
        self.open.set()
        self.entered = asyncio.Event()  # set once a call has started

    async def get_role(self, name: str) -> types_pb2.RoleV6:
        self.calls[name] += 1
        self.entered.set()
        await self.open.wait()
        queued = self.failures.get(name)
        if queued:
            raise queued.pop(0)
        if name not in ROLES:
            raise NotFound(f'GetRole: NOT_FOUND: role "{name}" is not found')
        role = types_pb2.RoleV6(Kind="role", Version="v7")
        role.Metadata.Name = name
        role.Spec.Allow.Logins.extend(ROLES[name])
        return role


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake() -> CountingRoles:
    return CountingRoles()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def roles(fake: CountingRoles, clock: Clock) -> TeleportRoles:
    return TeleportRoles(fake, clock=clock)


async def pending_requests(roles: RoleLookup, count: int, names: tuple[str, ...] = ("editor", "auditor")) -> None:
    """What the engine does for `count` pending requests handled at once: each looks its roles up in turn."""

    async def one() -> None:
        for name in names:
            assert await roles.role_logins(name) == ROLES[name]

    await asyncio.gather(*(one() for _ in range(count)))


async def test_a_burst_of_100_requests_for_two_roles_costs_two_calls(roles: TeleportRoles, fake: CountingRoles) -> None:
    await pending_requests(roles, 100)
    assert fake.calls == {"editor": 1, "auditor": 1}


async def test_concurrent_lookups_share_one_call_in_flight(roles: TeleportRoles, fake: CountingRoles) -> None:
    fake.open.clear()
    lookups = [asyncio.create_task(roles.role_logins("editor")) for _ in range(50)]
    await fake.entered.wait()
    for _ in range(10):  # every lookup has had the chance to start its own call
        await asyncio.sleep(0)
    assert fake.calls == {"editor": 1}
    fake.open.set()
    assert await asyncio.gather(*lookups) == [ROLES["editor"]] * 50


async def test_answers_expire_after_the_ttl(roles: TeleportRoles, fake: CountingRoles, clock: Clock) -> None:
    await pending_requests(roles, 3)
    clock.now = ROLE_CACHE_TTL - 0.001
    await pending_requests(roles, 3)
    assert fake.calls == {"editor": 1, "auditor": 1}
    clock.now = ROLE_CACHE_TTL
    await pending_requests(roles, 3)
    assert fake.calls == {"editor": 2, "auditor": 2}


async def test_callers_get_their_own_copy(roles: TeleportRoles) -> None:
    first = await roles.role_logins("editor")
    first.append("mutated")
    assert await roles.role_logins("editor") == ["root", "ubuntu"]


@pytest.mark.parametrize(
    "refusal",
    [
        AccessDenied('GetRole: PERMISSION_DENIED: access denied to perform action "read" on role'),
        NotFound('GetRole: NOT_FOUND: role "editor" is not found'),
    ],
    ids=["access-denied", "not-found"],
)
async def test_refusals_are_kept_for_the_ttl_too(
    roles: TeleportRoles, fake: CountingRoles, clock: Clock, refusal: Exception
) -> None:
    fake.failures["editor"] = [refusal]
    raised = []
    for _ in range(100):
        with pytest.raises(type(refusal), match="GetRole") as caught:
            await roles.role_logins("editor")
        raised.append(caught.value)
    assert fake.calls == {"editor": 1}  # a missing role.read permission does not cost a call per request
    assert len({id(e) for e in raised}) == 100  # a fresh exception each time: no shared traceback
    assert all(str(e) == str(refusal) for e in raised)
    clock.now = ROLE_CACHE_TTL
    assert await roles.role_logins("editor") == ROLES["editor"]  # the permission was granted meanwhile
    assert fake.calls == {"editor": 2}


@pytest.mark.parametrize(
    "error",
    [TransientError("GetRole: UNAVAILABLE: connection reset"), Unauthorized("GetRole: UNAUTHENTICATED: expired")],
    ids=["transient", "unauthorized"],
)
async def test_other_errors_are_never_kept(roles: TeleportRoles, fake: CountingRoles, error: Exception) -> None:
    fake.failures["editor"] = [error]
    with pytest.raises(type(error)):
        await roles.role_logins("editor")
    assert await roles.role_logins("editor") == ROLES["editor"]  # asked again at once, and answered
    assert fake.calls == {"editor": 2}


async def test_a_transient_error_reaches_every_caller_sharing_the_flight_then_is_forgotten(
    roles: TeleportRoles, fake: CountingRoles
) -> None:
    fake.failures["editor"] = [TransientError("GetRole: UNAVAILABLE: connection reset")]
    fake.open.clear()
    lookups = [asyncio.create_task(roles.role_logins("editor")) for _ in range(5)]
    await fake.entered.wait()
    fake.open.set()
    outcomes = await asyncio.gather(*lookups, return_exceptions=True)
    assert all(isinstance(o, TransientError) for o in outcomes)
    assert fake.calls == {"editor": 1}
    await pending_requests(roles, 5, ("editor",))
    assert fake.calls == {"editor": 2}


async def test_a_caller_giving_up_does_not_cancel_the_call_for_the_others(
    roles: TeleportRoles, fake: CountingRoles
) -> None:
    fake.open.clear()
    impatient = asyncio.create_task(roles.role_logins("editor"))
    patient = asyncio.create_task(roles.role_logins("editor"))
    await fake.entered.wait()
    impatient.cancel()
    with pytest.raises(asyncio.CancelledError):
        await impatient
    fake.open.set()
    assert await patient == ROLES["editor"]
    assert fake.calls == {"editor": 1}


async def test_a_zero_ttl_keeps_nothing_but_still_shares_the_flight(fake: CountingRoles, clock: Clock) -> None:
    roles = TeleportRoles(fake, ttl=0, clock=clock)
    fake.open.clear()
    lookups = [asyncio.create_task(roles.role_logins("editor")) for _ in range(5)]
    await fake.entered.wait()
    fake.open.set()
    await asyncio.gather(*lookups)
    await roles.role_logins("editor")
    assert fake.calls == {"editor": 2}


async def test_the_cache_is_bounded(fake: CountingRoles, clock: Clock) -> None:
    roles = TeleportRoles(fake, clock=clock, max_entries=1)
    await roles.role_logins("editor")
    await roles.role_logins("auditor")  # pushes "editor" out
    await roles.role_logins("auditor")
    await roles.role_logins("editor")
    assert fake.calls == {"editor": 2, "auditor": 1}


@pytest.mark.parametrize("kwargs", [{"ttl": -1.0}, {"ttl": float("nan")}, {"max_entries": 0}])
def test_rejects_nonsense(fake: CountingRoles, kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="role cache"):
        TeleportRoles(fake, **kwargs)  # type: ignore[arg-type]


# ---- against the loopback Auth server -----------------------------------------------------------


async def test_over_grpc_a_burst_costs_one_get_role_per_role(
    client: TeleportClient, server: tuple[int, AuthState]
) -> None:
    _, state = server
    state.roles.update(ROLES)
    state.forbidden_roles.add("secret")
    roles = TeleportRoles(client)
    before = len(state.metadata_keys)  # one entry per RPC the server handled
    await pending_requests(roles, 100)
    assert len(state.metadata_keys) - before == 2

    denied = 0
    for _ in range(100):
        with pytest.raises(AccessDenied):
            await roles.role_logins("secret")
        denied += 1
    assert denied == 100
    assert len(state.metadata_keys) - before == 3
