"""docker-compose.test.yml: the deployment it describes (parsed; `make test-compose` runs it)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from sidecar.config import load_config

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.test.yml"


def services() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    result: dict[str, Any] = doc["services"]
    return result


def host_file(volume: str) -> tuple[Path, str, str]:
    source, target, *mode = volume.split(":")
    return ROOT / source, target, mode[0] if mode else "rw"


def test_everything_on_one_internal_network_without_published_ports() -> None:
    doc = yaml.safe_load(COMPOSE.read_text())
    assert doc["networks"]["e2e"]["internal"] is True
    assert set(services()) == {"teleport", "mattermost", "tbot", "sidecar", "test-runner"}
    for name, service in services().items():
        assert service["networks"] == ["e2e"], name
        assert "ports" not in service, name


def test_hardened_like_the_pod() -> None:
    for name, service in services().items():
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert service["security_opt"] == ["no-new-privileges"], name


def test_tbot_writes_the_identity_volume_the_sidecar_reads_with_refresh() -> None:
    s = services()
    destination = s["tbot"]["command"][s["tbot"]["command"].index("--destination") + 1]
    assert f"identity:{destination}" in s["tbot"]["volumes"]
    assert f"identity:{destination}:ro" in s["sidecar"]["volumes"]
    assert "command" not in s["sidecar"] and "entrypoint" not in s["sidecar"]  # the image's `start`
    [config_mount] = [v for v in s["sidecar"]["volumes"] if v.endswith(":/etc/teleport-mattermost.toml:ro")]
    config_file, _, _ = host_file(config_mount)
    toml = tomllib.loads(config_file.read_text())
    assert toml["teleport"]["identity"] == f"{destination}/identity"
    assert toml["teleport"]["refresh_identity"] is True
    assert toml["teleport"]["addr"] == "teleport:3025"
    assert toml["mattermost"]["url"] == "http://mattermost:8065"
    assert load_config(config_file, env={}).warnings == ()


def test_runner_knows_what_is_deployed() -> None:
    s = services()
    env = s["test-runner"]["environment"]
    assert env["TM_E2E_MODE"] == "compose"
    command = s["teleport"]["command"]
    assert command[command.index("--edition") + 1] == env["TM_COMPOSE_EDITION"]
    seed_arg = command[command.index("--seed") + 1]
    teleport_seed = [host_file(v)[0] for v in s["teleport"]["volumes"] if v.split(":")[1] == seed_arg]
    runner_seed = [host_file(v)[0] for v in s["test-runner"]["volumes"]
                   if ":" in v and v.split(":")[1] == env["TM_COMPOSE_TELEPORT_SEED"]]
    assert teleport_seed == runner_seed == [ROOT / "tests" / "e2e" / "teleport_seed.toml"]
    assert "auth-state:/var/lib/fake-teleport:ro" in s["test-runner"]["volumes"]
    assert env["TM_COMPOSE_AUTH_STATE"] == "/var/lib/fake-teleport"
    assert re.fullmatch(r"\$\{TM_TEST_RUNNER_IMAGE:-[^}]+\}", s["test-runner"]["image"])
    assert s["test-runner"]["build"]["target"] == "test-runner"
