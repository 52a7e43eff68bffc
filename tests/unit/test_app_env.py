"""Environment switches read by sidecar/app.py."""

from __future__ import annotations

import pytest

from sidecar.app import fail_fast_from_env, retry_cap_from_env
from sidecar.domain.errors import ConfigError
from sidecar.engine.retries import RETRY_CAP


def test_retry_cap_defaults_to_five_minutes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TELEPORT_MATTERMOST_RETRY_MAX_INTERVAL", raising=False)
    assert retry_cap_from_env() == RETRY_CAP == 300.0


def test_retry_cap_takes_a_go_duration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEPORT_MATTERMOST_RETRY_MAX_INTERVAL", "2s")
    assert retry_cap_from_env() == 2.0


@pytest.mark.parametrize("value", ["soon", "500ms", "-1s"])
def test_a_bad_retry_cap_names_the_variable(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("TELEPORT_MATTERMOST_RETRY_MAX_INTERVAL", value)
    with pytest.raises(ConfigError, match="TELEPORT_MATTERMOST_RETRY_MAX_INTERVAL"):
        retry_cap_from_env()


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("true", True), ("T", True), ("", False), ("no", False)])
def test_fail_fast_is_a_go_bool(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    monkeypatch.setenv("TELEPORT_PLUGIN_FAIL_FAST", value)
    assert fail_fast_from_env() is expected
