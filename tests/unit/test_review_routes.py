"""The callback listener on 127.0.0.1:0: the routes, bodies, TLS, start-up errors; the service and the posts adapter."""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sidecar.codec.plugindata import encode
from sidecar.domain.errors import StartupError
from sidecar.domain.model import PostRef, RequestState
from sidecar.domain.record import PluginData
from sidecar.review.buttons import ButtonTarget
from sidecar.review.posts import StoredPosts
from sidecar.review.routes import LISTENING, MAX_BODY, ReviewRoutes, ReviewServer
from sidecar.review.service import ReviewService
from sidecar.review.settings import ReasonMode, ReviewSettings
from tests.unit.fakes_ports import FakePluginDataStore
from tests.unit.test_review_kit import ALICE, CH1, CH2, P1, P2, R1, Submitted, World, settings


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def post(http: aiohttp.ClientSession, url: str, body: Any, raw: bytes | None = None) -> tuple[int, Any]:
    data = raw if raw is not None else json.dumps(body).encode()
    async with http.post(url, data=data, headers={"Content-Type": "application/json"}) as resp:
        return resp.status, await resp.json()


async def test_a_click_over_http_is_answered_with_json(
    http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "sidecar.review")
    world = World()
    async with ReviewServer(world.settings, ReviewRoutes(world.pipeline, world.settings.public_url)) as server:
        base = f"http://127.0.0.1:{server.port}"
        status, answer = await post(http, base + "/review/v1/action", world.body(ALICE))
        assert status == 200 and "approval" in answer["ephemeral_text"]
        async with http.get(base + "/review/v1/ping") as resp:
            assert resp.status == 200 and await resp.json() == {"status": "ok"}
            assert resp.headers["Cache-Control"] == "no-store"
    assert world.submitter.submitted == [Submitted(R1, "alice", RequestState.APPROVED, "")]
    address = f"127.0.0.1:{server.port}"
    assert any(r.getMessage() == LISTENING and getattr(r, "address", "") == address for r in caplog.records)


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1, 2]", b'{"user_id": 1}'])
async def test_bad_bodies_get_an_ephemeral_refusal_not_an_http_error(http: aiohttp.ClientSession, raw: bytes) -> None:
    world = World()
    async with ReviewServer(world.settings, ReviewRoutes(world.pipeline, world.settings.public_url)) as server:
        status, answer = await post(http, f"http://127.0.0.1:{server.port}/review/v1/action", None, raw)
    assert status == 200 and "could not be verified" in answer["ephemeral_text"]
    assert world.submitter.attempts == 0


async def test_an_oversized_body_is_refused(http: aiohttp.ClientSession) -> None:
    world = World()
    body = world.body(ALICE)
    body["padding"] = "x" * MAX_BODY
    async with (
        ReviewServer(world.settings, ReviewRoutes(world.pipeline, world.settings.public_url)) as server,
        http.post(f"http://127.0.0.1:{server.port}/review/v1/action", json=body) as resp,
    ):
        assert resp.status == 200
        assert "could not be verified" in (await resp.json())["ephemeral_text"]
    assert world.submitter.attempts == 0


async def test_a_body_sent_in_small_pieces_is_read_whole(http: aiohttp.ClientSession) -> None:
    world = World()
    data = json.dumps({**world.body(ALICE), "padding": "x" * 40_000}).encode()

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 1000):
            yield data[start : start + 1000]

    async with (
        ReviewServer(world.settings, ReviewRoutes(world.pipeline, world.settings.public_url)) as server,
        http.post(f"http://127.0.0.1:{server.port}/review/v1/action", data=pieces()) as resp,
    ):
        assert resp.status == 200 and "approval" in (await resp.json())["ephemeral_text"]


async def test_routes_mount_on_any_app_and_also_under_the_public_urls_prefix(http: aiohttp.ClientSession) -> None:
    world = World(reason=ReasonMode.OPTIONAL, public_url="https://proxy.example.com/tm")
    app = web.Application()
    ReviewRoutes(world.pipeline, world.settings.public_url).mount(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        status, answer = await post(http, f"http://127.0.0.1:{port}/tm/review/v1/action", world.body(ALICE))
        assert (status, answer) == (200, {})
        [(_, url, dialog)] = world.dialogs.opened
        assert url == "https://proxy.example.com/tm/review/v1/dialog"
        status, answer = await post(http, f"http://127.0.0.1:{port}/review/v1/dialog",
                                    world.dialog_body(ALICE, dialog["state"], "fine"))
        assert (status, answer) == (200, {})
    finally:
        await runner.cleanup()
    assert world.submitter.submitted == [Submitted(R1, "alice", RequestState.APPROVED, "fine")]


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


async def test_the_listener_serves_tls_when_configured(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    world = World(tls_cert=str(cert), tls_key=str(key))
    trust = ssl.create_default_context(cafile=str(cert))
    async with (
        ReviewServer(world.settings, ReviewRoutes(world.pipeline, world.settings.public_url)) as server,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
        http.get(f"https://localhost:{server.port}/review/v1/ping", ssl=trust) as resp,
    ):
        assert resp.status == 200


async def test_start_up_errors_name_the_key(tmp_path: Path) -> None:
    world = World()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = settings(port=port, listen_addr=f"127.0.0.1:{port}")
        with pytest.raises(StartupError, match=rf"cannot listen on review\.listen_addr 127\.0\.0\.1:{port}"):
            await ReviewServer(busy, ReviewRoutes(world.pipeline, busy.public_url)).start()
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    broken = settings(tls_cert=str(bad), tls_key=str(bad))
    with pytest.raises(StartupError, match=r"cannot use review\.tls_cert and review\.tls_key"):
        await ReviewServer(broken, ReviewRoutes(world.pipeline, broken.public_url)).start()


async def test_the_server_stops_twice_and_refuses_a_second_start() -> None:
    world = World()
    server = ReviewServer(world.settings, ReviewRoutes(world.pipeline, world.settings.public_url))
    await server.start()
    try:
        with pytest.raises(RuntimeError):
            await server.start()
        assert server.address == f"127.0.0.1:{server.port}"
    finally:
        await server.stop()
        await server.stop()


async def test_the_service_wires_buttons_pipeline_and_listener(http: aiohttp.ClientSession) -> None:
    world = World()
    service = ReviewService(world.settings, world.ports, clock=world.clock)
    [attachment] = service.buttons.pending_attachments(ButtonTarget(R1, CH1, post_id=P1))
    context = attachment["actions"][0]["integration"]["context"]
    async with service.server() as server:
        body = world.body(ALICE, context=context)
        status, answer = await post(http, f"http://127.0.0.1:{server.port}/review/v1/action", body)
    assert status == 200 and "approval" in answer["ephemeral_text"]
    with pytest.raises(ValueError, match="enabled"):
        ReviewService(ReviewSettings(), world.ports)


async def test_stored_posts_reads_the_records_messages() -> None:
    store = FakePluginDataStore()
    record = PluginData(user="carol", roles=("admin",), messages=(PostRef(CH1, P1), PostRef(CH2, P2)))
    await store.update(R1, encode(record), {})
    posts = StoredPosts(store)
    assert await posts.posts_of(R1) == {PostRef(CH1, P1), PostRef(CH2, P2)}
    assert await posts.posts_of("unknown") == frozenset()
