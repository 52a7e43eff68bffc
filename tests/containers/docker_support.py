"""Access to the Docker daemon for the image tests: skip without one, unless CI says Docker is required."""

from __future__ import annotations

import os
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
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as exc:
        unavailable(f"no Docker daemon is reachable ({type(exc).__name__})")
    try:
        yield client
    finally:
        client.close()


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
