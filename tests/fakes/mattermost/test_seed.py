"""Ids and seed files."""

from __future__ import annotations

from pathlib import Path

import pytest

from fakes.mattermost.clock import ManualClock
from fakes.mattermost.config import ServerConfig
from fakes.mattermost.ids import ALPHABET, IdGenerator, encode_id, is_valid_id, random_id
from fakes.mattermost.seed import SeedError, default_seed, load_seed, parse_seed
from fakes.mattermost.state import State

MINIMAL = """
[admin]
username = "root"
email = "root@example.com"
token = "root-token"
"""


def test_ids_look_like_mattermost_ids() -> None:
    generator = IdGenerator(b"seed")
    ids = [generator.next_id() for _ in range(50)] + [random_id() for _ in range(50)]
    for value in ids:
        assert len(value) == 26
        assert set(value) <= set(ALPHABET)
        assert is_valid_id(value)
    assert len(set(ids)) == 100


def test_ids_are_deterministic_per_seed() -> None:
    first = IdGenerator(b"a")
    second = IdGenerator(b"a")
    other = IdGenerator(b"b")
    assert [first.next_id() for _ in range(3)] == [second.next_id() for _ in range(3)]
    assert IdGenerator(b"a").next_id() != other.next_id()


def test_encode_id_needs_16_bytes() -> None:
    assert encode_id(bytes(16)) == "y" * 26
    with pytest.raises(ValueError, match="16 bytes"):
        encode_id(b"short")


def test_is_valid_id_rejects_teleport_fake_ids() -> None:
    assert not is_valid_id("user-1")
    assert not is_valid_id("A" * 26)


def test_default_seed_matches_the_setup_guide() -> None:
    seed = default_seed()
    assert [(t.name, t.display_name) for t in seed.teams] == [("myteam", "My Team")]
    channels = {c.name: c for c in seed.channels}
    assert channels["town-square"].display_name == "Town Square"
    assert "teleport" in channels["town-square"].members
    assert "teleport" in channels["general"].members
    assert "teleport" not in channels["off-topic"].members
    assert channels["secret-reviews"].type == "P"
    assert "teleport" not in channels["secret-reviews"].members
    assert [(b.username, b.token) for b in seed.bots] == [("teleport", "teleport-bot-token")]
    emails = {u.email for u in seed.users}
    assert {"reviewer@example.com", "reviewer2@example.com", "requester@example.com", "myuser@example.com"} <= emails
    assert seed.admin.token


def test_same_seed_same_ids() -> None:
    seed = default_seed()
    one = State(seed, ServerConfig(), ManualClock())
    two = State(seed, ServerConfig(), ManualClock())
    assert sorted(one.users) == sorted(two.users)
    assert sorted(one.channels) == sorted(two.channels)
    changed = parse_seed(MINIMAL)
    assert set(State(changed, ServerConfig(), ManualClock()).users).isdisjoint(one.users)


def test_load_seed_from_file(tmp_path: Path) -> None:
    path = tmp_path / "seed.toml"
    path.write_text(MINIMAL, encoding="utf-8")
    seed = load_seed(path)
    assert seed.admin.username == "root"
    assert seed.bots == ()


def test_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "absent.toml"
    with pytest.raises(SeedError, match=r"absent\.toml"):
        load_seed(missing)


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ("[[teams]]\nname = \"Bad Team\"\ndisplay_name = \"x\"\n", "invalid team name"),
        ("[[users]]\nusername = \"UPPER\"\nemail = \"u@example.com\"\n", "invalid username"),
        ("[[users]]\nusername = \"u\"\nemail = \"nope\"\n", "invalid email"),
        ("[[users]]\nusername = \"u\"\nemail = \"u@example.com\"\ncolour = 1\n", "unknown keys"),
        ("[[bots]]\nusername = \"b\"\nowner = \"ghost\"\ntoken = \"t\"\n", "owner 'ghost' is not a user"),
        ("[[bots]]\nusername = \"b\"\nowner = \"root\"\ntoken = \"root-token\"\n", "share the same token"),
        ("[[channels]]\nteam = \"none\"\nname = \"c\"\ndisplay_name = \"C\"\ntype = \"O\"\n", "unknown team"),
        (
            "[[teams]]\nname = \"tt\"\ndisplay_name = \"T\"\n"
            "[[channels]]\nteam = \"tt\"\nname = \"c\"\ndisplay_name = \"C\"\ntype = \"D\"\n",
            "channel type",
        ),
        (
            "[[teams]]\nname = \"tt\"\ndisplay_name = \"T\"\n"
            "[[channels]]\nteam = \"tt\"\nname = \"c\"\ndisplay_name = \"C\"\ntype = \"O\"\nmembers = [\"who\"]\n",
            "unknown member 'who'",
        ),
        ("[[users]]\nusername = \"root\"\nemail = \"x@example.com\"\n", "duplicate username"),
        ("[misc]\nx = 1\n", "unknown top-level keys"),
        ("bogus = 1\n", r"admin: unknown keys \[.bogus.\]"),
        ("[[teams]\n", "invalid TOML"),
    ],
)
def test_seed_errors_name_the_problem(extra: str, problem: str) -> None:
    with pytest.raises(SeedError, match=problem):
        parse_seed(MINIMAL + extra, "test.toml")


def test_admin_is_required() -> None:
    with pytest.raises(SeedError, match=r"\[admin\]"):
        parse_seed("", "empty.toml")


def test_users_for_identity_binding() -> None:
    seed = parse_seed(MINIMAL + """
[[users]]
username = "sso"
email = "sso@example.com"
auth_service = "saml"
email_verified = false
deactivated = true

[settings]
allowed_untrusted_internal_connections = "127.0.0.1 10.0.0.0/8"
outgoing_integration_requests_timeout = 5
""")
    [user] = seed.users
    assert (user.auth_service, user.email_verified, user.deactivated) == ("saml", False, True)
    assert dict(seed.settings) == {"allowed_untrusted_internal_connections": "127.0.0.1 10.0.0.0/8",
                                   "outgoing_integration_requests_timeout": 5}
    state = State(seed, ServerConfig(), ManualClock())
    stored = next(u for u in state.users.values() if u.username == "sso")
    assert stored.delete_at > 0 and not stored.is_active and stored.auth_service == "saml"
    assert state.settings.outgoing_integration_requests_timeout == 5


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[[users]]\nusername = "u"\nemail = "u@x.y"\ndeactivated = "yes"\n', "'deactivated' must be true or false"),
        ('[[users]]\nusername = "u"\nemail = "u@x.y"\nauth_service = "Bad Service"\n', "invalid auth_service"),
        ("settings = 5\n", "'settings' must be a table"),
    ],
)
def test_binding_fields_are_validated(extra: str, message: str) -> None:
    text = extra + MINIMAL if extra.startswith("settings") else MINIMAL + extra
    with pytest.raises(SeedError, match=message):
        parse_seed(text)
