"""The fake cluster PKI: CA storage, server certificate, user certificate encoding, identity file layout."""

from __future__ import annotations

import asyncio
import json
import os
import re
import ssl
import stat
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from fakes.teleport_auth.ca import (
    CLUSTER_NAME_OID,
    CAError,
    ClusterAuthority,
    IssuedIdentity,
)


def _attrs(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(a.value) for a in cert.subject.get_attributes_for_oid(oid)]


def test_default_cluster_name_and_reuse(tmp_path: Path) -> None:
    first = ClusterAuthority.load_or_create(tmp_path)
    assert first.cluster_name == "teleport.example.com"
    again = ClusterAuthority.load_or_create(tmp_path)
    assert again.host_ca_pem == first.host_ca_pem
    assert again.user_ca_pem == first.user_ca_pem
    assert again.ssh_host_ca_public_line == first.ssh_host_ca_public_line


def test_stored_cluster_name_wins_and_conflict_is_an_error(tmp_path: Path) -> None:
    ClusterAuthority.load_or_create(tmp_path, "alpha.example")
    assert ClusterAuthority.load_or_create(tmp_path).cluster_name == "alpha.example"
    assert ClusterAuthority.load_or_create(tmp_path, "alpha.example").cluster_name == "alpha.example"
    with pytest.raises(CAError, match=re.escape("belongs to cluster 'alpha.example', not 'beta.example'")):
        ClusterAuthority.load_or_create(tmp_path, "beta.example")


def test_key_files_are_private(tmp_path: Path) -> None:
    ClusterAuthority.load_or_create(tmp_path)
    keys = sorted((tmp_path / "ca").glob("*.key"))
    assert [k.name for k in keys] == ["host_ca.key", "ssh_host_ca.key", "ssh_user_ca.key", "user_ca.key"]
    for key in keys:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_concurrent_creation_converges_on_one_ca(tmp_path: Path) -> None:
    barrier = threading.Barrier(6)
    results: list[bytes] = []
    errors: list[BaseException] = []

    def create() -> None:
        try:
            barrier.wait()
            results.append(ClusterAuthority.load_or_create(tmp_path, "race.example").host_ca_pem)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(results)) == 1
    assert ClusterAuthority.load_or_create(tmp_path).host_ca_pem == results[0]
    assert [p.name for p in tmp_path.iterdir()] == ["ca"]  # no temporary directories left behind


def test_ca_subjects_carry_the_cluster_name(tmp_path: Path) -> None:
    ca = ClusterAuthority.load_or_create(tmp_path, "pki.example")
    for pem in (ca.host_ca_pem, ca.user_ca_pem):
        cert = x509.load_pem_x509_certificate(pem)
        assert _attrs(cert, NameOID.ORGANIZATION_NAME) == ["pki.example"]
        assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.host_ca_pem != ca.user_ca_pem


def test_server_cert(tmp_path: Path) -> None:
    ca = ClusterAuthority.load_or_create(tmp_path, "srv.example")
    cert_pem, key_pem = ca.server_tls()
    assert ca.server_tls() == (cert_pem, key_pem)
    cert = x509.load_pem_x509_certificate(cert_pem)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert "teleport.cluster.local" in sans
    assert "*.teleport.cluster.local" in sans
    assert _attrs(cert, NameOID.ORGANIZATION_NAME) == ["Admin"]
    assert _attrs(cert, CLUSTER_NAME_OID) == ["srv.example"]
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.host_ca_pem))
    key = serialization.load_pem_private_key(key_pem, None)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()  # type: ignore[union-attr]


def test_user_cert_subject_encoding(tmp_path: Path) -> None:
    ca = ClusterAuthority.load_or_create(tmp_path, "enc.example")
    issued = ca.issue_user("alice", ["editor", "access"], timedelta(hours=1), traits={"logins": ["root", "ubuntu"]})
    cert = issued.tls_cert
    assert _attrs(cert, NameOID.COMMON_NAME) == ["alice"]
    assert _attrs(cert, NameOID.ORGANIZATION_NAME) == ["editor", "access"]
    assert _attrs(cert, CLUSTER_NAME_OID) == ["enc.example"]
    assert json.loads(_attrs(cert, NameOID.POSTAL_CODE)[0]) == {"logins": ["root", "ubuntu"]}
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.user_ca_pem))
    no_traits = ca.issue_user("bob", ["r"], timedelta(hours=1))
    assert _attrs(no_traits.tls_cert, NameOID.POSTAL_CODE) == []


def test_user_cert_validity_follows_now_and_ttl(tmp_path: Path) -> None:
    ca = ClusterAuthority.load_or_create(tmp_path)
    start = datetime(2020, 1, 1, tzinfo=UTC)
    issued = ca.issue_user("old", ["r"], timedelta(hours=2), now=start)
    assert issued.not_after == start + timedelta(hours=2)
    ssh = serialization.load_ssh_public_identity(issued.ssh_cert_line.encode())
    assert isinstance(ssh, serialization.SSHCertificate)
    assert ssh.valid_before == int((start + timedelta(hours=2)).timestamp())


@pytest.mark.parametrize(
    ("key_type", "pem_type", "ssh_type", "key_class"),
    [
        ("ecdsa", "PRIVATE KEY", "ecdsa-sha2-nistp256-cert-v01@openssh.com", ec.EllipticCurvePrivateKey),
        ("rsa", "RSA PRIVATE KEY", "ssh-rsa-cert-v01@openssh.com", rsa.RSAPrivateKey),
    ],
)
def test_identity_file_layout(tmp_path: Path, key_type: str, pem_type: str, ssh_type: str, key_class: type) -> None:
    ca = ClusterAuthority.load_or_create(tmp_path, "layout.example")
    issued = ca.issue_user("carol", ["reviewer"], timedelta(hours=1), key_type=key_type)  # type: ignore[arg-type]
    data = issued.identity_file_bytes()
    text = data.decode()
    expected = (
        issued.key_pem
        + issued.ssh_cert_line.encode()
        + b"\n"
        + issued.tls_cert_pem
        + ca.cert_authority_line().encode()
        + b"\n"
        + ca.host_ca_pem
    )
    assert data == expected
    lines = text.splitlines()
    assert lines[0] == f"-----BEGIN {pem_type}-----"
    ssh_line = next(line for line in lines if not line.startswith("-") and " " in line and "@openssh.com" in line)
    assert ssh_line.split()[0] == ssh_type
    assert re.fullmatch(r"[a-z0-9\-]+-cert-v[0-9]{2}@openssh\.com", ssh_line.split()[0])
    ca_line = next(line for line in lines if line.startswith("@cert-authority"))
    assert ca_line == (
        f"@cert-authority layout.example,*.layout.example {ca.ssh_host_ca_public_line} type=host"
    )
    assert isinstance(serialization.load_pem_private_key(issued.key_pem, None), key_class)
    ssh_cert = serialization.load_ssh_public_identity(ssh_line.encode())
    assert isinstance(ssh_cert, serialization.SSHCertificate)
    assert ssh_cert.valid_principals == [b"carol"]
    assert ssh_cert.type == serialization.SSHCertificateType.USER
    ssh_cert.verify_cert_signature()
    assert ssh_cert.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ) == issued.ssh_public_key_line.encode()
    assert data.endswith(b"-----END CERTIFICATE-----\n")


def test_write_identity_and_tls_files(tmp_path: Path) -> None:
    ca = ClusterAuthority.load_or_create(tmp_path / "state")
    issued = ca.issue_user("dave", ["r"], timedelta(hours=1))
    out = tmp_path / "out" / "identity"
    out.parent.mkdir()
    issued.write_identity_file(out)
    assert out.read_bytes() == issued.identity_file_bytes()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    crt, key, cas = issued.write_tls_files(tmp_path / "out" / "dave")
    assert (crt.name, key.name, cas.name) == ("dave.crt", "dave.key", "dave.cas")
    assert crt.read_bytes() == issued.tls_cert_pem
    assert key.read_bytes() == issued.key_pem
    assert cas.read_bytes() == ca.host_ca_pem
    for path in (crt, key, cas):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(os.listdir(tmp_path / "out")) == ["dave.cas", "dave.crt", "dave.key", "identity"]


# A real TLS handshake: the server presents server_tls() and requires client certs from the User CA.


def _files(tmp_path: Path, name: str, issued: IssuedIdentity) -> tuple[Path, Path, Path]:
    return issued.write_tls_files(tmp_path / name)


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[ClusterAuthority, int]]:
    ca = ClusterAuthority.load_or_create(tmp_path / "home")
    cert_pem, key_pem = ca.server_tls()
    (tmp_path / "srv.crt").write_bytes(cert_pem)
    (tmp_path / "srv.key").write_bytes(key_pem)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cadata=ca.user_ca_pem.decode())
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_cert_chain(tmp_path / "srv.crt", tmp_path / "srv.key")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peercert")
        name = dict(x[0] for x in peer["subject"])["commonName"] if peer else "?"
        writer.write(name.encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    try:
        yield ca, server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def _handshake(port: int, cas: Path, crt: Path, key: Path) -> bytes:
    ctx = ssl.create_default_context(cafile=str(cas))
    ctx.load_cert_chain(crt, key)
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=ctx, server_hostname="teleport.cluster.local"
    )
    try:
        return await reader.read()
    finally:
        writer.close()


async def test_tls_handshake_with_home_identity(tls_server: tuple[ClusterAuthority, int], tmp_path: Path) -> None:
    ca, port = tls_server
    crt, key, cas = _files(tmp_path, "erin", ca.issue_user("erin", ["r"], timedelta(hours=1)))
    assert await _handshake(port, cas, crt, key) == b"erin"


async def test_foreign_cluster_identity_is_refused(tls_server: tuple[ClusterAuthority, int], tmp_path: Path) -> None:
    ca, port = tls_server
    foreign = ClusterAuthority.load_or_create(tmp_path / "foreign", ca.cluster_name)
    assert foreign.user_ca_pem != ca.user_ca_pem
    crt, key, _ = _files(tmp_path, "mallory", foreign.issue_user("mallory", ["r"], timedelta(hours=1)))
    _, _, home_cas = _files(tmp_path, "ok", ca.issue_user("ok", ["r"], timedelta(hours=1)))
    # TLS 1.3 reports the client-cert rejection on the first read (as an error or a bare close), TLS 1.2 during
    # the handshake. Either way the server never answers with the caller's name.
    try:
        answer = await _handshake(port, home_cas, crt, key)
    except (ssl.SSLError, ConnectionResetError):
        answer = b""
    assert answer == b""


def test_issue_user_rejects_bad_input(tmp_path: Path) -> None:
    ca = ClusterAuthority.load_or_create(tmp_path)
    with pytest.raises(CAError, match="ttl must be positive"):
        ca.issue_user("u", ["r"], timedelta(0))
    with pytest.raises(CAError, match="user name must not be empty"):
        ca.issue_user("", ["r"], timedelta(hours=1))
