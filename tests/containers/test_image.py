"""Smoke tests of the built image ($TM_IMAGE): the user-facing commands, its defaults and what it contains."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from fakes.container_stack import default_image
from sidecar import __version__
from sidecar.config import example_config
from tests.containers.docker_support import docker_client, run, unavailable


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    yield from docker_client()


@pytest.fixture(scope="module")
def image(client: Any) -> str:
    name = default_image()
    try:
        client.images.get(name)
    except Exception:
        unavailable(f"image {name} is not built (make images)")
    return name


def test_version(client: Any, image: str) -> None:
    result = run(client, image, ["version"])
    assert result.code == 0, result.stderr
    assert result.stdout.startswith(f"teleport-mattermost v{__version__} python3.")


def test_configure_prints_the_example_config(client: Any, image: str) -> None:
    result = run(client, image, ["configure"])
    assert result.code == 0, result.stderr
    assert result.stdout == example_config()


def test_default_command_starts_with_the_default_config_path(client: Any, image: str) -> None:
    result = run(client, image)  # CMD ["start"], nothing mounted at /etc/teleport-mattermost.toml
    assert result.code == 1
    assert "cannot read configuration file /etc/teleport-mattermost.toml" in result.stderr


def test_entrypoint_cmd_and_non_root_user(client: Any, image: str) -> None:
    config = client.images.get(image).attrs["Config"]
    assert config["Entrypoint"] == ["teleport-mattermost"]
    assert config["Cmd"] == ["start"]
    uid = config["User"].split(":")[0]
    assert uid.isdigit() and int(uid) != 0  # numeric, so Kubernetes can check runAsNonRoot
    result = run(client, image, ["-c", "import os; print(os.getuid(), os.getgid())"], entrypoint=["python3"])
    assert result.stdout.split() == [uid, config["User"].split(":")[1]]


def test_runtime_holds_no_compiler_and_no_installer(client: Any, image: str) -> None:
    probe = (
        "import shutil, importlib.util; "
        "print([t for t in ('gcc', 'cc', 'g++', 'make', 'pip', 'pip3') if shutil.which(t)], "
        "importlib.util.find_spec('pip') is None, importlib.util.find_spec('setuptools') is None)"
    )
    result = run(client, image, ["-c", probe], entrypoint=["python3"])
    assert result.code == 0, result.stderr
    assert result.stdout.strip() == "[] True True"


def test_the_fakes_and_the_tbot_emulator_run_from_the_same_image(client: Any, image: str) -> None:
    for module in ("fakes.teleport_auth", "fakes.mattermost"):
        result = run(client, image, ["-m", module, "--help"], entrypoint=["python3"])
        assert result.code == 0, result.stderr
    result = run(client, image, ["-m", "fakes.teleport_auth", "tbot", "--help"], entrypoint=["python3"])
    assert result.code == 0 and "--destination" in result.stdout
