"""`AllowedUntrustedInternalConnections`: integrations on private or loopback addresses are refused unless listed."""

from __future__ import annotations

import ipaddress
from typing import Any

import aiohttp
import pytest

from fakes.mattermost import egress
from fakes.mattermost.clock import ManualClock
from fakes.mattermost.config import IntegrationSettings, ServerConfig
from fakes.mattermost.seed import SeedError, default_seed, parse_seed
from fakes.mattermost.server import FakeMattermost
from tests.fakes.mattermost.buttons import post_buttons
from tests.fakes.mattermost.conftest import Client, Hook

ADMIN = "admin-token"


@pytest.mark.parametrize(
    ("address", "reserved"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("172.20.0.1", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),
        ("100.64.0.1", True),
        ("::1", True),
        ("fd00::1", True),
        ("fe80::1", True),
        ("::ffff:127.0.0.1", True),
        ("8.8.8.8", False),
        ("2606:4700::1111", False),
    ],
)
def test_reserved_ranges(address: str, reserved: bool) -> None:
    assert egress.is_reserved(ipaddress.ip_address(address)) is reserved


def test_only_cidrs_allow_an_address() -> None:
    loopback = ipaddress.ip_address("127.0.0.1")
    assert egress.refusal(loopback, "") is not None
    assert egress.refusal(loopback, "127.0.0.0/8") is None
    assert egress.refusal(loopback, "10.0.0.0/8, 127.0.0.1/32") is None
    # A bare address is matched against the URL's host name, not as an address range.
    assert egress.refusal(loopback, "127.0.0.1") is not None
    assert egress.refusal(ipaddress.ip_address("::ffff:127.0.0.1"), "127.0.0.0/8") is None
    assert egress.refusal(ipaddress.ip_address("8.8.8.8"), "") is None
    assert egress.allow_list(" a,b  c,,d ") == ["a", "b", "c", "d"]


async def test_host_names_resolve_before_the_check() -> None:
    await egress.check("localhost", 80, "localhost")  # listed by name: no lookup needed
    await egress.check("localhost", 80, "127.0.0.0/8")
    with pytest.raises(egress.AddressForbidden, match="AllowedUntrustedInternalConnections"):
        await egress.check("localhost", 80, "127.0.0.1")


async def click_once(mm: FakeMattermost, http: aiohttp.ClientSession, url: str) -> Any:
    post = await post_buttons(Client(http, mm.url), mm, url)
    return await mm.control.click("reviewer", post["id"], "approve")


async def test_the_default_refuses_loopback(hook: Hook, http: aiohttp.ClientSession) -> None:
    async with FakeMattermost(clock=ManualClock()) as mm:
        assert mm.control.settings.allowed_untrusted_internal_connections == ""
        reply = await click_once(mm, http, hook.url)
        assert (reply.status, reply.body["id"]) == (400, "api.post.do_action.action_integration.app_error")
        assert hook.calls == []
        [record] = mm.control.integration_calls()
        assert record.status is None
        assert record.error.startswith("refused: address forbidden, you may need to set AllowedUntrustedInternal")
        assert "IP 127.0.0.1 is in a reserved range" in record.error


@pytest.mark.parametrize("allowed", ["127.0.0.1", "127.0.0.0/8", "10.0.0.0/8 127.0.0.1/32", "localhost,127.0.0.1"])
async def test_an_allow_listed_loopback_is_called(hook: Hook, http: aiohttp.ClientSession, allowed: str) -> None:
    config = ServerConfig(integrations=IntegrationSettings(allowed_untrusted_internal_connections=allowed))
    async with FakeMattermost(clock=ManualClock(), config=config) as mm:
        assert (await click_once(mm, http, hook.url)).status == 200
        assert len(hook.calls) == 1


async def test_a_host_name_needs_its_name_or_a_cidr(hook: Hook, http: aiohttp.ClientSession) -> None:
    by_name = hook.url.replace("127.0.0.1", "localhost")
    config = ServerConfig(integrations=IntegrationSettings(allowed_untrusted_internal_connections="127.0.0.1"))
    async with FakeMattermost(clock=ManualClock(), config=config) as mm:
        assert (await click_once(mm, http, by_name)).status == 400
        mm.control.update_settings(allowed_untrusted_internal_connections="localhost")
        assert (await click_once(mm, http, by_name)).status == 200


async def test_seed_settings_and_the_test_face(hook: Hook, http: aiohttp.ClientSession) -> None:
    text = default_seed().source.decode() + '\n[settings]\nallowed_untrusted_internal_connections = "127.0.0.1"\n'
    async with FakeMattermost(parse_seed(text), clock=ManualClock()) as mm:
        api = Client(http, mm.url)
        assert (await api.call("GET", "/fake/settings", ADMIN)).body == {
            "allowed_untrusted_internal_connections": "127.0.0.1",
            "outgoing_integration_requests_timeout": 30,
        }
        assert (await click_once(mm, http, hook.url)).status == 200
        changed = await api.call("PUT", "/fake/settings", ADMIN, {"allowed_untrusted_internal_connections": ""})
        assert changed.body["allowed_untrusted_internal_connections"] == ""
        assert (await click_once(mm, http, hook.url)).status == 400
        bad = await api.call("PUT", "/fake/settings", ADMIN, {"outgoing_integration_requests_timeout": 0})
        assert bad.status == 400
        unknown = await api.call("PUT", "/fake/settings", ADMIN, {"nope": 1})
        assert unknown.status == 400 and "nope" in unknown.body["error"]
        await api.call("POST", "/fake/reset", ADMIN)  # back to the seed's settings
        assert mm.control.settings.allowed_untrusted_internal_connections == "127.0.0.1"


def test_seed_settings_are_validated() -> None:
    base = default_seed().source.decode()
    with pytest.raises(SeedError, match="settings"):
        parse_seed(base + "\n[settings]\noutgoing_integration_requests_timeout = 0\n")
    with pytest.raises(SeedError, match="unknown keys"):
        parse_seed(base + "\n[settings]\nAllowedUntrustedInternalConnections = 'x'\n")
