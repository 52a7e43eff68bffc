"""sidecar.config: `mattermost.message_style`, `[notify]` and `[reminders]` (keys the Go plugin does not have)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import pytest

from sidecar import messages_text as text
from sidecar.config import Config, NotifyConfig, RemindersConfig, example_config, load_config
from sidecar.domain.errors import ConfigError

BASE = (
    '[teleport]\nidentity = "/var/lib/teleport/plugins/mattermost/auth_id"\n'
    '[mattermost]\nurl = "https://mm.example.com"\ntoken = "tok-features-1"\n'
)



class Load(Protocol):
    def __call__(self, extra: str, *, mattermost: str = "") -> Config: ...


@pytest.fixture
def load(tmp_path: Path) -> Load:
    def load_text(extra: str, *, mattermost: str = "") -> Config:
        path = tmp_path / "config.toml"
        path.write_text(BASE + mattermost + extra)
        return load_config(path, env={})

    return load_text


def _error(load: Load, extra: str, *, mattermost: str = "") -> str:
    with pytest.raises(ConfigError) as caught:
        load(extra, mattermost=mattermost)
    return str(caught.value)


def test_absent_keys_keep_the_go_behaviour(load: Load) -> None:
    config = load("")
    assert config.mattermost.message_style == "classic"
    assert config.notify == NotifyConfig(requester=False, requester_email_trait="")
    assert config.reminders == RemindersConfig()
    assert not config.reminders.enabled


@pytest.mark.parametrize(("written", "style"), [("classic", "classic"), ("rich", "rich"), ("Rich", "rich")])
def test_message_style(load: Load, written: str, style: str) -> None:
    assert load("", mattermost=f'message_style = "{written}"\n').mattermost.message_style == style


def test_an_unknown_message_style_names_the_key(load: Load) -> None:
    assert _error(load, "", mattermost='message_style = "fancy"\n') == text.MESSAGE_STYLE.format(value='"fancy"')
    assert "mattermost.message_style" in _error(load, "", mattermost="message_style = 1\n")


def test_notify(load: Load) -> None:
    config = load('[notify]\nrequester = true\nrequester_email_trait = "mm_email"\n')
    assert config.notify == NotifyConfig(requester=True, requester_email_trait="mm_email")
    assert "notify.requester" in _error(load, '[notify]\nrequester = "yes"\n')


def test_reminders_with_every_defaulting_to_after(load: Load) -> None:
    config = load('[reminders]\nafter = "30m"\nmax = 2\n')
    assert config.reminders == RemindersConfig(after=1800.0, every=1800.0, max=2)
    assert config.reminders.enabled


def test_reminders_and_escalation(load: Load) -> None:
    config = load(
        '[reminders]\nafter = "30m"\nevery = 3600\nmax = 3\n'
        'escalate_to = ["team/leads", "boss@example.com", "team/leads"]\nescalate_after = "2h"\n'
    )
    assert config.reminders == RemindersConfig(
        after=1800.0, every=3600.0, max=3, escalate_to=("team/leads", "boss@example.com"), escalate_after=7200.0
    )


def test_escalation_alone_is_enabled(load: Load) -> None:
    config = load('[reminders]\nescalate_to = ["team/leads"]\nescalate_after = "1s"\n')
    assert config.reminders.enabled
    assert config.reminders.after is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[reminders]\nafter = "soon"\n', "invalid value for reminders.after"),
        ('[reminders]\nafter = "0s"\n', text.DURATION_NOT_POSITIVE.format(key="reminders.after", value='"0s"')),
        ('[reminders]\nafter = "-1m"\n', "reminders.after must be a positive duration"),
        ("[reminders]\nafter = true\n", 'configuration key "reminders.after" must be a duration string'),
        ('[reminders]\nafter = "1m"\nmax = -1\n', text.COUNT_NEGATIVE.format(key="reminders.max", value=-1)),
        ('[reminders]\nafter = "1m"\nmax = 1.5\n', 'configuration key "reminders.max" must be a whole number'),
        ('[reminders]\nevery = "1m"\n', text.REMINDERS_EVERY_NEEDS_AFTER),
        ('[reminders]\nescalate_to = ["team/leads"]\n', text.ESCALATION_NEEDS_DELAY),
        ('[reminders]\nescalate_after = "1h"\n', text.ESCALATION_NEEDS_RECIPIENTS),
        (
            '[reminders]\nescalate_to = ["leads"]\nescalate_after = "1h"\n',
            text.ESCALATION_RECIPIENT.format(value='"leads"'),
        ),
        ('[reminders]\nescalate_to = "team/leads"\n', 'configuration key "reminders.escalate_to" must be an array'),
    ],
)
def test_bad_reminders_name_the_key(load: Load, extra: str, message: str) -> None:
    assert _error(load, extra).startswith(message)


def test_unknown_keys_in_the_new_sections_warn(load: Load) -> None:
    config = load('[reminders]\nafterr = "1m"\n[notify]\nrequestor = true\n')
    assert any('"reminders.afterr"' in w and '"reminders.after"' in w for w in config.warnings)
    assert any('"notify.requestor"' in w and '"notify.requester"' in w for w in config.warnings)


def test_configure_writes_rich_with_requester_messages_and_shows_reminders(tmp_path: Path) -> None:
    example = example_config()
    path = tmp_path / "example.toml"
    path.write_text(example)
    config = load_config(path, env={})
    assert config.mattermost.message_style == "rich"
    assert config.notify.requester is True
    assert not config.reminders.enabled  # shown commented out
    for key in ("after", "every", "max", "escalate_to", "escalate_after", "requester_email_trait"):
        assert f"# {key} = " in example, key
