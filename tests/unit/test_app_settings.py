"""sidecar.app.engine_settings: the configuration and Ping's answer become the engine's settings."""

from __future__ import annotations

from pathlib import Path

from sidecar.app import ClusterInfo, engine_settings
from sidecar.config import load_config
from sidecar.engine.reminders import ReminderSettings

CONFIG = """
[teleport]
identity = "/var/lib/teleport/plugins/mattermost/auth_id"
[mattermost]
url = "https://mm.example.com"
token = "tok-app-settings"
message_style = "rich"
[notify]
requester = true
requester_email_trait = "mm_email"
[reminders]
after = "30m"
max = 2
escalate_to = ["team/leads"]
escalate_after = "2h"
"""


def test_engine_settings_carry_style_cluster_requester_and_reminders(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    settings = engine_settings(load_config(path, env={}), ClusterInfo("prod", "18.0.0", "https://tp.example.com"))
    assert settings.style == "rich"
    assert settings.cluster == "prod"
    assert settings.render.web_proxy_url == "https://tp.example.com"
    assert (settings.notify_requester, settings.requester_email_trait) == (True, "mm_email")
    assert settings.reminders == ReminderSettings(
        after=1800.0, every=1800.0, max=2, escalate_to=("team/leads",), escalate_after=7200.0
    )
    assert settings.keeps_facts
