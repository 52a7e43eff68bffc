"""No object built from a config shows the Mattermost token: not its repr, not its str, not a test diff.

Every config and settings object is reached by walking the objects the sidecar builds (dataclass fields,
mappings, sequences), so a new field holding the token as a plain string fails here without anyone having
to remember to add it.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from sidecar.config import Config, _RawConfig, load_config
from sidecar.domain.secret import Secret, unregister_secret
from sidecar.engine.engine import EngineSettings
from sidecar.mattermost.bot import MattermostBot
from sidecar.mattermost.client import MattermostClient
from sidecar.render.classic import RenderSettings

TOKEN = "tok3n-4b8c9d0e1f2a3b4c5d6e7f8a9b"
ENV_TOKEN = "env-t0ken-0a1b2c3d4e5f6a7b8c9d"


def _toml(token: str) -> str:
    return f"""
[teleport]
addr = "teleport.example.com:443"
identity = "/var/lib/teleport/plugins/mattermost/identity"
refresh_identity = true

[mattermost]
url = "https://mattermost.example.com"
token = "{token}"
recipients = ["team/channel"]

[role_to_recipients]
"*" = ["admin@example.com"]

[log]
output = "stderr"
severity = "debug"
"""


@pytest.fixture(autouse=True)
def _forget_tokens() -> Iterator[None]:
    # Loading a config registers the token with the log masker; these tests look at reprs, not logs.
    yield
    for token in (TOKEN, ENV_TOKEN):
        unregister_secret(token)


def _walk(value: object, seen: set[int] | None = None) -> Iterator[object]:
    """`value` and every object reachable through dataclass fields, mappings and sequences."""
    seen = set() if seen is None else seen
    if id(value) in seen or isinstance(value, str | bytes | int | float | bool | type(None)):
        return
    seen.add(id(value))
    yield value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            yield from _walk(getattr(value, field.name), seen)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _walk(key, seen)
            yield from _walk(item, seen)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _walk(item, seen)


def _assert_hidden(objects: list[object], *tokens: str) -> None:
    assert objects
    for obj in objects:
        for shown in (repr(obj), str(obj), f"{obj}"):
            for token in tokens:
                assert token not in shown, f"{type(obj).__name__} shows the token"


def _built_from(config: Config) -> list[object]:
    """The config and the settings objects the sidecar builds from it (see sidecar/app.py)."""
    client = MattermostClient(config.mattermost.url, config.mattermost.token)
    settings = EngineSettings(role_to_recipients=config.role_to_recipients, render=RenderSettings())
    return [*_walk(config), client, MattermostBot(client), *_walk(settings)]


def test_a_token_in_the_file_is_in_no_repr(tmp_path: Path) -> None:
    path = tmp_path / "teleport-mattermost.toml"
    path.write_text(_toml(TOKEN))
    config = load_config(path, env={})
    assert config.mattermost.token.reveal() == TOKEN  # the walk below really holds the token
    _assert_hidden(_built_from(config), TOKEN)


def test_a_token_from_a_file_and_from_the_environment_is_in_no_repr(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    path = tmp_path / "teleport-mattermost.toml"
    path.write_text(_toml(str(token_file)))
    from_file = load_config(path, env={})
    assert from_file.mattermost.token.reveal() == TOKEN
    _assert_hidden(_built_from(from_file), TOKEN)

    path.write_text(_toml(TOKEN))
    from_env = load_config(path, env={"TELEPORT_MATTERMOST_TOKEN": ENV_TOKEN})
    assert from_env.mattermost.token.reveal() == ENV_TOKEN
    _assert_hidden(_built_from(from_env), TOKEN, ENV_TOKEN)


def test_the_raw_values_before_validation_hold_the_token_as_a_secret() -> None:
    raw = _RawConfig.from_document(tomllib.loads(_toml(TOKEN)))
    assert isinstance(raw.token, Secret)
    _assert_hidden(list(_walk(raw)), TOKEN)
    raw.apply_env({"TELEPORT_MATTERMOST_TOKEN": ENV_TOKEN})
    assert isinstance(raw.token, Secret)
    _assert_hidden(list(_walk(raw)), ENV_TOKEN)


def test_the_walk_would_catch_a_plain_token() -> None:
    # Guards the test itself: a dataclass holding the token as a str must be caught.
    @dataclasses.dataclass
    class Leaky:
        token: str

    with pytest.raises(AssertionError, match="shows the token"):
        _assert_hidden(list(_walk({"nested": [Leaky(TOKEN)]})), TOKEN)
