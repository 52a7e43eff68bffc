"""Access to the Docker daemon for the image tests: skip without one, unless CI says Docker is required."""

from __future__ import annotations

import gc
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

REQUIRE_ENV = "TM_REQUIRE_DOCKER"  # set by `make test-containers`: a missing daemon or image is a failure


def unavailable(reason: str) -> None:
    """Skip, or fail when the run requires Docker."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"Docker is required ({REQUIRE_ENV}=1) but {reason}")
    pytest.skip(reason)


def docker_client() -> Iterator[Any]:
    """A docker-py client of $DOCKER_HOST (or the default socket), closed afterwards."""
    client, problem = _connect()
    if client is None:
        unavailable(problem)
    try:
        yield client
    finally:
        client.close()


def _connect() -> tuple[Any, str]:
    """A client that answered a ping, or None and why not."""
    client: Any = None
    try:
        import docker

        client = docker.from_env()
        client.ping()
        return client, ""
    except Exception as exc:
        problem = f"no Docker daemon is reachable ({type(exc).__name__})"
    if client is not None:
        client.close()
    # docker-py does not close the socket of a connection attempt that failed: it waits in a reference cycle
    # for the garbage collector, whose ResourceWarning would then fail whichever test runs at that moment.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    return None, problem


@dataclass
class Run:
    """The outcome of one container run."""

    code: int
    stdout: str
    stderr: str


def run(client: Any, image: str, command: list[str] | None = None, **kwargs: Any) -> Run:
    """Run a container to completion with a read-only root filesystem; always remove it."""
    container = client.containers.run(image, command, detach=True, read_only=True, **kwargs)
    try:
        code = int(container.wait(timeout=120)["StatusCode"])
        out = container.logs(stdout=True, stderr=False).decode()
        err = container.logs(stdout=False, stderr=True).decode()
        return Run(code, out, err)
    finally:
        container.remove(force=True)
