"""`GET /api/v4/config/client?format=old`: the public key integrations verify trigger ids with."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from fakes.mattermost.server import FakeMattermost
from tests.fakes.mattermost.conftest import Client

BOT = "teleport-bot-token"


async def test_anyone_gets_the_limited_config_with_the_key(api: Client, mm: FakeMattermost) -> None:
    for token in (None, "not-a-token"):  # no session needed; a bad token is ignored
        reply = await api.call("GET", "/api/v4/config/client?format=old", token)
        assert reply.status == 200
        assert reply.headers["Content-Type"] == "application/json"
        assert "ETag" not in reply.headers
        config = reply.body
        assert list(config) == sorted(config)  # a Go map
        assert all(isinstance(v, str) for v in config.values())
        assert config["Version"] == "10.6.0"
        assert config["SiteURL"] == mm.url
        assert "MaxPostSize" not in config and "ShowEmailAddress" not in config
        key = serialization.load_der_public_key(base64.b64decode(config["AsymmetricSigningPublicKey"]))
        assert isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)


async def test_a_session_gets_the_full_config(api: Client, mm: FakeMattermost) -> None:
    config = (await api.call("GET", "/api/v4/config/client?format=old", BOT)).body
    limited = (await api.call("GET", "/api/v4/config/client?format=old")).body
    assert set(limited) < set(config)
    assert config["AsymmetricSigningPublicKey"] == limited["AsymmetricSigningPublicKey"]
    assert (config["MaxPostSize"], config["ShowEmailAddress"], config["RequireEmailVerification"]) == (
        "16383", "true", "false")


async def test_the_format_parameter(api: Client) -> None:
    missing = await api.call("GET", "/api/v4/config/client")
    assert (missing.status, missing.body["id"]) == (501, "api.config.client.old_format.app_error")
    other = await api.call("GET", "/api/v4/config/client?format=new")
    assert (other.status, other.body["id"]) == (400, "api.context.invalid_param.app_error")
