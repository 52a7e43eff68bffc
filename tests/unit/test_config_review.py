"""sidecar.config and `[review]`: off by default, parsed by sidecar.review.settings when present, unknown keys
warned about, the settings' warnings passed on, and key material never in an error."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from sidecar.config import Config, example_config, load_config
from sidecar.domain.errors import ConfigError
from sidecar.review.settings import WARN_DISABLED, WARN_NO_TRIGGER, ReasonMode, ReviewSettings

BASE = (
    '[teleport]\nidentity = "/var/lib/teleport/plugins/mattermost/auth_id"\n'
    '[mattermost]\nurl = "https://mm.example.com"\ntoken = "tok-review-1"\n'
)
KEY = base64.b64encode(b"k" * 32).decode()


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    path = tmp_path / "review-keys"
    path.write_text(f"2026-01 {KEY}\n")
    return path


def _load(tmp_path: Path, extra: str) -> Config:
    path = tmp_path / "config.toml"
    path.write_text(BASE + extra)
    return load_config(path, env={})


def _enabled(keys: Path, more: str = "") -> str:
    return (
        '\n[review]\nenabled = true\nlisten_addr = "127.0.0.1:8443"\npublic_url = "http://127.0.0.1:8443"\n'
        f"hmac_keys_file = {str(keys)!r}\n" + more
    ).replace("'", '"')


def test_absent_means_off_and_nothing_else_changes(tmp_path: Path) -> None:
    config = _load(tmp_path, "")
    assert config.review == ReviewSettings()
    assert not config.review.enabled
    assert config.warnings == ()


def test_disabled_with_other_keys_says_they_have_no_effect(tmp_path: Path) -> None:
    config = _load(tmp_path, '\n[review]\nenabled = false\nlisten_addr = "0.0.0.0:8443"\n')
    assert not config.review.enabled
    assert config.warnings == (WARN_DISABLED,)


def test_enabled_review_is_parsed_with_go_durations(tmp_path: Path, keys: Path) -> None:
    config = _load(tmp_path, _enabled(keys, 'reason = "off"\naction_ttl = "1h30m"\nverify_trigger_id = false\n'))
    review = config.review
    assert review.enabled and review.keys is not None
    assert review.keys.kids == ("2026-01",)
    assert (review.host, review.port, review.public_url) == ("127.0.0.1", 8443, "http://127.0.0.1:8443")
    assert review.reason is ReasonMode.OFF
    assert review.action_ttl == 5400.0
    assert WARN_NO_TRIGGER in config.warnings


def test_unknown_review_keys_are_warned_about_with_a_suggestion(tmp_path: Path, keys: Path) -> None:
    config = _load(tmp_path, _enabled(keys, "verify_triger_id = true\n"))
    assert config.warnings == (
        'unknown configuration key "review.verify_triger_id" (did you mean "review.verify_trigger_id"?)',
    )


def test_a_bad_review_value_fails_naming_the_key(tmp_path: Path, keys: Path) -> None:
    with pytest.raises(ConfigError, match=r"review\.action_ttl"):
        _load(tmp_path, _enabled(keys, 'action_ttl = "soon"\n'))
    with pytest.raises(ConfigError, match=r"review\.enabled"):
        _load(tmp_path, "\n[review]\nenabled = 1\n")


def test_key_material_never_appears_in_an_error(tmp_path: Path) -> None:
    short = base64.b64encode(b"s" * 8).decode()
    keys = tmp_path / "short-keys"
    keys.write_text(f"k1 {short}\n")
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, _enabled(keys))
    assert short not in str(caught.value)
    assert "line 1" in str(caught.value)


def test_the_example_configs_review_block_is_valid(tmp_path: Path, keys: Path) -> None:
    # `configure` prints every [review] key commented out; uncommented (with a real keys file), they load.
    head, _, review = example_config().partition("\n[review]\n")
    setting = re.compile(r"^# (\w+ = .*)$")
    lines = [m.group(1) if (m := setting.match(line)) and not m.group(1).startswith(("tls_", "email_")) else line
             for line in review.splitlines()]
    block = "\n".join(lines).replace("/etc/teleport-mattermost/review-keys", str(keys))
    path = tmp_path / "example.toml"
    path.write_text(head + "\n[review]\n" + block + "\n")
    config = load_config(path, env={})
    assert config.review.enabled
    assert config.review.public_url == "https://teleport-mattermost.internal:8443"
    assert config.warnings == ()
