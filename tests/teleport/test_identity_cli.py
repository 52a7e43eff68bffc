"""The fake's `sign` and `tbot` commands."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from fakes.teleport_auth.ca import ClusterAuthority
from fakes.teleport_auth.identity_cli import main, parse_go_duration, write_tbot_destination
from sidecar.teleport.identity import load_identity_file, load_key_pair

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1h", 3600), ("30m", 1800), ("10s", 10), ("1h30m", 5400), ("1.5h", 5400), ("500ms", 0.5), ("2h0m5s", 7205)],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "1", "h", "1d", "-1h", "0s", "1h 30m", "abc", "1hh"])
def test_bad_go_durations(text: str) -> None:
    with pytest.raises(Exception, match="duration"):
        parse_go_duration(text)


def test_sign_identity_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "identity"
    code = main(["sign", "--state-dir", str(tmp_path / "state"), "--user", "bot", "--roles", "a,b", "--ttl", "1h",
                 "--out", str(out)])
    assert code == 0
    assert str(out) in capsys.readouterr().out
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    text = out.read_text()
    kinds = []
    for line in text.splitlines():
        if line.startswith("-----BEGIN"):
            kinds.append(line)
        elif line.startswith("@cert-authority"):
            kinds.append("@cert-authority")
        elif "-cert-v01@openssh.com" in line:
            kinds.append("ssh-cert")
    assert kinds == [
        "-----BEGIN PRIVATE KEY-----",
        "ssh-cert",
        "-----BEGIN CERTIFICATE-----",
        "@cert-authority",
        "-----BEGIN CERTIFICATE-----",
    ]
    ident = load_identity_file(out)
    assert (ident.username, ident.roles, ident.cluster) == ("bot", ("a", "b"), "teleport.example.com")
    authority = ClusterAuthority.load_or_create(tmp_path / "state")
    assert ident.ca_pems == (authority.host_ca_pem,)


def test_sign_tls_rsa(tmp_path: Path) -> None:
    prefix = tmp_path / "creds"
    code = main(["sign", "--state-dir", str(tmp_path / "s"), "--user", "u", "--roles", "r", "--ttl", "10m",
                 "--out", str(prefix), "--format", "tls", "--key-type", "rsa"])
    assert code == 0
    crt, key, cas = (tmp_path / f"creds.{ext}" for ext in ("crt", "key", "cas"))
    for path in (crt, key, cas):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key.read_text().startswith("-----BEGIN RSA PRIVATE KEY-----\n")
    ident = load_key_pair(key, crt, cas)
    assert ident.username == "u"
    assert ident.not_after - x509.load_pem_x509_certificate(crt.read_bytes()).not_valid_before_utc == timedelta(
        minutes=11
    )  # ttl plus the one-minute backdating


def test_sign_roles_and_traits_from_users_toml(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "users.toml").write_text(
        '[users."access-plugin"]\nroles = ["access-plugin", "x"]\ntraits = { logins = ["root"] }\n'
    )
    out = tmp_path / "id"
    assert main(["sign", "--state-dir", str(state), "--user", "access-plugin", "--ttl", "1h", "--out", str(out)]) == 0
    ident = load_identity_file(out)
    assert ident.roles == ("access-plugin", "x")
    cert = x509.load_pem_x509_certificate(ident.cert_pem)
    postal = cert.subject.get_attributes_for_oid(x509.oid.NameOID.POSTAL_CODE)
    assert json.loads(str(postal[0].value)) == {"logins": ["root"]}


@pytest.mark.parametrize(
    ("users_toml", "expected"),
    [
        (None, "no --roles given and {state}/users.toml does not exist"),
        ('[users.other]\nroles = ["r"]\n', "no --roles given and user 'ghost' is not in {state}/users.toml"),
        ("[users.ghost]\nroles = []\n", "{state}/users.toml: user 'ghost' has no roles"),
        ("not = [toml", "{state}/users.toml: cannot read users"),
    ],
)
def test_sign_without_roles_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], users_toml: str | None, expected: str
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    if users_toml is not None:
        (state / "users.toml").write_text(users_toml)
    out = tmp_path / "id"
    assert main(["sign", "--state-dir", str(state), "--user", "ghost", "--ttl", "1h", "--out", str(out)]) == 1
    assert expected.format(state=state) in capsys.readouterr().err
    assert not out.exists()


def test_tbot_destination_files_belong_together(tmp_path: Path) -> None:
    authority = ClusterAuthority.load_or_create(tmp_path / "state")
    issued = authority.issue_user("bot-x", ["r"], timedelta(hours=1))
    write_tbot_destination(tmp_path / "out", authority, issued)
    out = tmp_path / "out"
    assert (out / "identity").read_bytes() == issued.identity_file_bytes()
    assert (out / "key").read_bytes() == issued.key_pem
    assert (out / "tlscert").read_bytes() == issued.tls_cert_pem
    assert (out / "key-cert.pub").read_text() == issued.ssh_cert_line + "\n"
    assert (out / "key.pub").read_text() == issued.ssh_public_key_line + "\n"
    assert (out / "teleport-host-ca.crt").read_bytes() == authority.host_ca_pem
    assert (out / "teleport-user-ca.crt").read_bytes() == authority.user_ca_pem
    assert load_key_pair(out / "key", out / "tlscert", out / "teleport-host-ca.crt").username == "bot-x"


# --- tbot as a real subprocess


class _Tbot:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def next_event(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout=5)
        assert line, "tbot exited early"
        event: dict[str, Any] = json.loads(line)
        return event


@pytest.fixture
async def tbot(tmp_path: Path) -> AsyncIterator[_Tbot]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fakes.teleport_auth.identity_cli", "tbot",
        "--state-dir", str(tmp_path / "state"), "--user", "bot-sidecar", "--roles", "access-plugin",
        "--destination", str(tmp_path / "out"), "--ttl", "1h", "--renewal-interval", "300ms",
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        yield _Tbot(proc)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_tbot_renews_and_stops_on_sigterm(tbot: _Tbot, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = await tbot.next_event()
    assert first["event"] == "renewed" and first["user"] == "bot-sidecar"
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        ["identity", "key", "key.pub", "key-cert.pub", "tlscert", "teleport-host-ca.crt", "teleport-user-ca.crt"]
    )
    for name in names:
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600
    first_serial = x509.load_pem_x509_certificate(load_identity_file(out / "identity").cert_pem).serial_number
    second = await tbot.next_event()
    assert second["event"] == "renewed" and second["serial"] != first["serial"]
    renewed = load_identity_file(out / "identity")
    assert x509.load_pem_x509_certificate(renewed.cert_pem).serial_number != first_serial
    tbot.proc.send_signal(signal.SIGTERM)
    assert tbot.proc.stdout is not None
    rest = (await asyncio.wait_for(tbot.proc.stdout.read(), timeout=5)).decode().splitlines()
    assert json.loads(rest[-1]) == {"event": "stopped"}
    assert await asyncio.wait_for(tbot.proc.wait(), timeout=5) == 0
