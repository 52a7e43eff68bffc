"""Suite-wide hooks: per-tier timeouts and the loopback-only network guard.

Other suite-wide pytest settings live in pyproject.toml; shared fixtures live next to the tests using them.

Timeouts: every test gets the timeout of its tier (its directory under tests/, see TIER_TIMEOUTS) unless it
sets its own `@pytest.mark.timeout` or `--timeout` is given on the command line; pyproject's `timeout` stays the
fallback for anything else.

Network guard: while a test outside tests/containers runs (setup, call and teardown), this pytest process may
only reach, listen on or resolve loopback: 127.0.0.0/8, ::1, or the name `localhost` when it resolves there.
Anything else raises NonLoopbackNetworkError before the real call is made, so no packet leaves, and fails the
test even if the code under test swallowed the error. It covers Python sockets (connect, connect_ex, bind,
sendto, sendmsg), name lookups (getaddrinfo, gethostbyname) and grpc channel targets and server ports, whose C
core does not use Python sockets. Unix sockets are fine. tests/containers is exempt: it talks to the Docker
networks it creates; so is tests/e2e in compose mode (TM_E2E_MODE=compose), whose runner is a container on the
network docker-compose.test.yml creates and reaches the components by service name. Subprocesses (the e2e
components) are not guarded.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
from collections.abc import Callable, Generator, Iterator, Mapping
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
from grpc.aio import _server as grpc_aio_server

TESTS = Path(__file__).resolve().parent
TIER_TIMEOUTS = {"unit": 20, "teleport": 60, "mattermost": 60, "fakes": 60, "e2e": 180, "containers": 900}
UNGUARDED_TIERS = frozenset({"containers"})


def tier(path: Path) -> str | None:
    """The directory right under tests/ that holds a test file (None for a file directly in tests/)."""
    parts = Path(path).resolve().relative_to(TESTS).parts
    return parts[0] if len(parts) > 1 else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give each test its tier's timeout, unless it has its own or the command line sets one."""
    if config.getoption("timeout", None) is not None:
        return
    for item in items:
        seconds = TIER_TIMEOUTS.get(tier(item.path) or "")
        if seconds is not None and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(seconds))


# --- network guard ---------------------------------------------------------------------------------------


class NonLoopbackNetworkError(RuntimeError):
    """A test tried to reach, listen on or resolve an address outside 127.0.0.0/8 and ::1.

    Not an OSError on purpose: code that retries network errors must not mistake it for a transient failure.
    """


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])  # drop an IPv6 scope id
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _is_localhost(host: str) -> bool:
    return host.lower().rstrip(".") == "localhost"


def grpc_hosts(target: str) -> list[str]:
    """The hosts a grpc target or server address names (empty for unix sockets)."""
    if target.startswith(("unix:", "unix-abstract:")):
        return []
    for scheme in ("ipv4:", "ipv6:", "dns:"):
        if target.startswith(scheme):
            target = target.removeprefix(scheme)
            break
    if target.startswith("//"):  # dns://authority/host:port
        target = target[2:].partition("/")[2]
    hosts = []
    for address in target.split(","):
        if address.startswith("["):
            hosts.append(address[1:].partition("]")[0])
        else:
            hosts.append(address.rpartition(":")[0] if ":" in address else address)
    return hosts


class NetworkGuard:
    """Refuses non-loopback network use while `active`; every refusal is also kept in `violations`."""

    def __init__(self) -> None:
        self.active = False
        self.violations: list[str] = []
        self._undo: list[Callable[[], None]] = []
        self._getaddrinfo = socket.getaddrinfo
        self.resolve: Callable[[str], list[str]] = self._resolve  # what `localhost` resolves to; tests may swap it

    def _resolve(self, host: str) -> list[str]:
        return sorted({str(info[4][0]) for info in self._getaddrinfo(host, None, type=socket.SOCK_STREAM)})

    def problem(self, host: str) -> str | None:
        """Why `host` is not allowed (None when it is loopback)."""
        ip = _ip(host)
        if ip is not None:
            return None if ip.is_loopback else f"{host} is not a loopback address"
        if host in ("", "<broadcast>"):
            return f"{host or 'the wildcard address'} is not a loopback address"
        if _is_localhost(host):
            elsewhere = [a for a in self.resolve(host) if not ((ip := _ip(a)) and ip.is_loopback)]
            return f"{host} resolves to {', '.join(elsewhere)}" if elsewhere else None
        return f"{host!r} is not localhost (resolving it would query DNS)"

    def check(self, action: str, host: str, detail: object) -> None:
        """Raise (and remember) NonLoopbackNetworkError when the guard is on and `host` is not loopback."""
        if not self.active:
            return
        problem = self.problem(host)
        if problem is not None:
            message = f"{action} {detail!r}: {problem}"
            self.violations.append(message)
            raise NonLoopbackNetworkError(f"the test network guard refused {message}")

    def check_socket(self, action: str, sock: socket.socket, address: Any) -> None:
        """Check an AF_INET/AF_INET6 address tuple; other families (unix sockets, ...) pass."""
        if sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple) and address:
            host = address[0]
            self.check(action, host.decode() if isinstance(host, bytes) else str(host), address)

    def install(self) -> None:
        """Wrap the socket, name lookup and grpc entry points (they do nothing while the guard is off)."""
        address_of: dict[str, Callable[[tuple[Any, ...]], Any]] = {
            "connect": lambda args: args[0],
            "connect_ex": lambda args: args[0],
            "bind": lambda args: args[0],
            "sendto": lambda args: args[-1] if len(args) >= 2 else None,
            "sendmsg": lambda args: args[3] if len(args) >= 4 else None,
        }
        for name, pick in address_of.items():
            self._wrap(socket.socket, name, self._socket_check(name, pick))
        for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex"):
            self._wrap(socket, name, self._lookup_check(name))
        for module, name in ((grpc, "secure_channel"), (grpc, "insecure_channel"),
                             (grpc.aio, "secure_channel"), (grpc.aio, "insecure_channel")):
            self._wrap(module, name, self._grpc_check("grpc channel to", bound=False))
        for name in ("add_secure_port", "add_insecure_port"):
            self._wrap(grpc_aio_server.Server, name, self._grpc_check("grpc server on", bound=True))

    def uninstall(self) -> None:
        """Put every wrapped function back."""
        while self._undo:
            self._undo.pop()()

    def _wrap(self, owner: Any, name: str, check: Callable[[tuple[Any, ...]], None]) -> None:
        original = getattr(owner, name)
        own = name in vars(owner)  # else inherited (socket.socket from _socket.socket): delete, not overwrite

        @functools.wraps(original)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            check(args)
            return original(*args, **kwargs)

        setattr(owner, name, guarded)
        self._undo.append(lambda: setattr(owner, name, original) if own else delattr(owner, name))

    def _socket_check(self, action: str, pick: Callable[[tuple[Any, ...]], Any]) -> Callable[[tuple[Any, ...]], None]:
        def check(args: tuple[Any, ...]) -> None:
            if self.active and len(args) > 1:
                self.check_socket(action, args[0], pick(args[1:]))

        return check

    def _lookup_check(self, action: str) -> Callable[[tuple[Any, ...]], None]:
        def check(args: tuple[Any, ...]) -> None:
            host = args[0] if args else None
            if isinstance(host, bytes):
                host = host.decode()
            # Looking up an address literal or localhost sends nothing; any other name would query DNS.
            if isinstance(host, str) and _ip(host) is None and not _is_localhost(host):
                self.check(action, host, host)

        return check

    def _grpc_check(self, action: str, *, bound: bool) -> Callable[[tuple[Any, ...]], None]:
        def check(args: tuple[Any, ...]) -> None:
            target = args[1] if bound else args[0]  # methods get the server first
            if self.active and isinstance(target, str):
                for host in grpc_hosts(target):
                    self.check(action, host, target)

        return check


GUARD = NetworkGuard()


def pytest_configure(config: pytest.Config) -> None:
    """Install the (inactive) guard for the whole session."""
    GUARD.install()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the guard's wrappers."""
    GUARD.uninstall()


def unguarded_tiers(env: Mapping[str, str] = os.environ) -> frozenset[str]:
    """The tiers the network guard leaves alone in this run."""
    if env.get("TM_E2E_MODE") == "compose":
        return UNGUARDED_TIERS | {"e2e"}
    return UNGUARDED_TIERS


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, object, object]:
    """Guard the test's setup, call and teardown, fixtures of any scope included, unless its tier is exempt."""
    GUARD.active = tier(item.path) not in unguarded_tiers()
    GUARD.violations.clear()
    try:
        return (yield)
    finally:
        GUARD.active = False


@pytest.fixture(autouse=True)
def network_guard() -> Iterator[NetworkGuard]:
    """The guard; fails the test if anything was refused, even when the code under test caught the error."""
    yield GUARD
    if GUARD.violations:
        refused, GUARD.violations[:] = list(GUARD.violations), []
        pytest.fail("non-loopback network use refused:\n" + "\n".join(refused), pytrace=False)
