"""The suite's hooks (tests/conftest.py): the network guard (loopback and unix sockets work, anything else is
refused) and the per-tier timeouts."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import grpc
import grpc.aio
import pytest

from tests.conftest import (
    TESTS,
    TIER_TIMEOUTS,
    UNGUARDED_TIERS,
    NetworkGuard,
    NonLoopbackNetworkError,
    grpc_hosts,
    tier,
    unguarded_tiers,
)

TEST_NET = "192.0.2.1"  # TEST-NET-1 (RFC 5737): never routed


@pytest.fixture
def refusals(network_guard: NetworkGuard) -> Iterator[list[str]]:
    """The refusals this test provokes on purpose; they are taken back so the test itself can pass."""
    yield network_guard.violations
    network_guard.violations.clear()


def test_connecting_outside_loopback_is_refused_before_anything_is_sent(refusals: list[str]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setblocking(False)  # a real connect would return at once (EINPROGRESS) with the SYN on its way
        with pytest.raises(NonLoopbackNetworkError, match=r"192\.0\.2\.1 is not a loopback address"):
            sock.connect((TEST_NET, 9))
        # The kernel never saw a connect: the socket has no peer and was not even given a local port.
        assert sock.getsockname() == ("0.0.0.0", 0)
        with pytest.raises(OSError):
            sock.getpeername()
        with pytest.raises(NonLoopbackNetworkError):
            sock.connect_ex((TEST_NET, 9))
    assert len(refusals) == 2


def test_binding_and_sending_outside_loopback_are_refused(refusals: list[str]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        with pytest.raises(NonLoopbackNetworkError):
            udp.sendto(b"x", (TEST_NET, 9))
        with pytest.raises(NonLoopbackNetworkError):
            udp.sendmsg([b"x"], [], 0, (TEST_NET, 9))
        with pytest.raises(NonLoopbackNetworkError, match=r"0\.0\.0\.0 is not a loopback address"):
            udp.bind(("0.0.0.0", 0))
        with pytest.raises(NonLoopbackNetworkError, match="wildcard"):
            udp.bind(("", 0))
    assert len(refusals) == 4


def test_names_other_than_localhost_are_never_looked_up(refusals: list[str]) -> None:
    with pytest.raises(NonLoopbackNetworkError, match="not localhost"):
        socket.getaddrinfo("mattermost.example.com", 443)
    with pytest.raises(NonLoopbackNetworkError, match="not localhost"):
        socket.gethostbyname("mattermost.example.com")
    with pytest.raises(NonLoopbackNetworkError):
        socket.create_connection(("mattermost.example.com", 443), timeout=1)
    assert len(refusals) == 3


def test_localhost_must_resolve_to_loopback(network_guard: NetworkGuard, refusals: list[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    assert network_guard.problem("localhost") is None  # on this machine it does
    monkeypatch.setattr(network_guard, "resolve", lambda host: ["127.0.0.1", "10.1.2.3"])
    with socket.socket() as sock, pytest.raises(NonLoopbackNetworkError, match=r"localhost resolves to 10\.1\.2\.3"):
        sock.connect(("localhost", 9))
    assert len(refusals) == 1


async def test_a_swallowed_refusal_is_still_remembered(refusals: list[str]) -> None:
    with contextlib.suppress(Exception):  # as code under test might
        await asyncio.open_connection(TEST_NET, 9)
    # The guard's fixture fails the test for what is left here; `refusals` takes this one back.
    assert len(refusals) == 1 and TEST_NET in refusals[0]


async def test_grpc_targets_and_server_ports_are_checked(refusals: list[str]) -> None:
    with pytest.raises(NonLoopbackNetworkError):
        grpc.aio.insecure_channel(f"{TEST_NET}:3025")
    with pytest.raises(NonLoopbackNetworkError):
        grpc.insecure_channel("dns:///auth.example.com:3025")
    server = grpc.aio.server()
    try:
        with pytest.raises(NonLoopbackNetworkError):
            server.add_insecure_port("[::]:0")
        assert server.add_insecure_port("127.0.0.1:0") > 0
    finally:
        await server.stop(None)
    await grpc.aio.insecure_channel("localhost:1").close()
    assert len(refusals) == 3


def test_grpc_target_parsing() -> None:
    assert grpc_hosts("127.0.0.1:3025") == ["127.0.0.1"]
    assert grpc_hosts("[::1]:3025") == ["::1"]
    assert grpc_hosts("ipv4:127.0.0.1:1,10.0.0.1:2") == ["127.0.0.1", "10.0.0.1"]
    assert grpc_hosts("dns:///teleport.example.com:443") == ["teleport.example.com"]
    assert grpc_hosts("dns:localhost:443") == ["localhost"]
    assert grpc_hosts("unix:/run/auth.sock") == []


async def test_loopback_still_works() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()

    hosts = ["127.0.0.1", "localhost", "127.8.9.10"]
    if socket.has_ipv6:
        try:
            socket.socket(socket.AF_INET6).close()
            hosts.append("::1")
        except OSError:
            pass
    for host in hosts:
        server = await asyncio.start_server(echo, host, 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(b"ping\n")
            assert await reader.readline() == b"ping\n"
            writer.close()
            await writer.wait_closed()


def test_unix_sockets_work(tmp_path: Path) -> None:
    path = str(tmp_path / "s")
    with socket.socket(socket.AF_UNIX) as server, socket.socket(socket.AF_UNIX) as client:
        server.bind(path)
        server.listen()
        client.connect(path)
        peer, _ = server.accept()
        with peer:
            client.sendall(b"x")
            assert peer.recv(1) == b"x"


def test_every_tier_but_containers_is_guarded(network_guard: NetworkGuard) -> None:
    assert network_guard.active  # this very test
    for name in ("unit", "teleport", "mattermost", "fakes", "e2e"):
        assert tier(TESTS / name / "test_x.py") not in UNGUARDED_TIERS
    assert tier(TESTS / "containers" / "test_image.py") in UNGUARDED_TIERS
    assert tier(TESTS / "test_top_level.py") is None  # guarded too


def test_compose_mode_leaves_the_e2e_tier_to_the_compose_network() -> None:
    # The compose runner is a container on the network docker-compose.test.yml made; it resolves service names.
    assert "e2e" in unguarded_tiers({"TM_E2E_MODE": "compose"})
    assert "e2e" not in unguarded_tiers({"TM_E2E_MODE": "containers"})
    assert "e2e" not in unguarded_tiers({})
    assert "unit" not in unguarded_tiers({"TM_E2E_MODE": "compose"})


def test_a_test_gets_its_tiers_timeout(request: pytest.FixtureRequest, pytestconfig: pytest.Config) -> None:
    if pytestconfig.getoption("timeout", None) is not None:
        pytest.skip("--timeout on the command line replaces the tier timeouts")
    marker = request.node.get_closest_marker("timeout")
    assert marker is not None and marker.args == (TIER_TIMEOUTS["unit"],)


@pytest.mark.timeout(7)
def test_a_test_may_set_its_own_timeout(request: pytest.FixtureRequest) -> None:
    assert [m.args for m in request.node.iter_markers("timeout")] == [(7,)]
