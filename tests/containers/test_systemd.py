"""deploy/systemd/: the unit (restart, dedicated user, hardening, `systemd-analyze verify`) and its config."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sidecar.config import load_config

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "systemd" / "teleport-mattermost.service"
CONFIG = UNIT.with_suffix(".toml")
BINARY = "/usr/local/bin/teleport-mattermost"


def directives() -> dict[str, list[str]]:
    """section.key → values (systemd allows a key several times)."""
    found: dict[str, list[str]] = {}
    section = ""
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.setdefault(f"{section}.{key}", []).append(value)
    return found


def test_runs_the_image_command_as_a_dedicated_user_and_restarts_on_failure() -> None:
    d = directives()
    assert d["Service.ExecStart"] == [f"{BINARY} start --config /etc/teleport-mattermost.toml"]
    assert d["Service.User"] == ["teleport-mattermost"] and d["Service.Group"] == ["teleport-mattermost"]
    assert d["Service.Restart"] == ["on-failure"]
    assert d["Install.WantedBy"] == ["multi-user.target"]


def test_hardening_options() -> None:
    d = directives()
    for key, value in {
        "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
        "PrivateDevices": "yes", "CapabilityBoundingSet": "", "RestrictSUIDSGID": "yes",
        "SystemCallArchitectures": "native", "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    }.items():
        assert d[f"Service.{key}"] == [value], key
    assert "@system-service" in d["Service.SystemCallFilter"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify checks that ExecStart exists: point it at this environment's installed console script.
    installed = Path(sys.executable).parent / "teleport-mattermost"
    assert installed.exists(), "the package's console script is not installed"
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace(BINARY, str(installed)))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    # Unknown keys and bad values are only warnings (exit 0): any message about our unit is a failure.
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if UNIT.name in line]
    assert result.returncode == 0 and not complaints, result.stdout + result.stderr


def test_the_config_beside_the_unit_is_valid_and_turns_the_health_listener_on(tmp_path: Path) -> None:
    # The unit reads /etc/teleport-mattermost.toml, where its header installs this file.
    assert f"{CONFIG.relative_to(UNIT.parents[2])} /etc/teleport-mattermost.toml" in UNIT.read_text()
    token = tmp_path / "token"
    token.write_text("bot-token\n")
    config = load_config(CONFIG, env={"TELEPORT_MATTERMOST_TOKEN": str(token)})
    assert config.warnings == ()
    assert config.teleport.refresh_identity is True
    # On a host the listener stays local unless the operator opens it; the unit allows IP sockets for it.
    assert config.health.enabled and (config.health.host, config.health.port) == ("127.0.0.1", 8080)
    assert "AF_INET" in directives()["Service.RestrictAddressFamilies"][0].split()
