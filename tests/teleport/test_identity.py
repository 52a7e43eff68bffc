"""Identity file and key-pair parsing: the happy paths and a table of broken inputs."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fakes.teleport_auth.ca import ClusterAuthority, IssuedIdentity
from sidecar.domain.errors import IdentityError
from sidecar.teleport.identity import load_identity_file, load_key_pair


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> ClusterAuthority:
    return ClusterAuthority.load_or_create(tmp_path_factory.mktemp("ca"), "ident.example")


@pytest.fixture(scope="module")
def issued(authority: ClusterAuthority) -> IssuedIdentity:
    return authority.issue_user("alice", ["editor", "reviewer"], timedelta(hours=1))


@pytest.mark.parametrize("key_type", ["ecdsa", "rsa"])
def test_round_trip(tmp_path: Path, authority: ClusterAuthority, key_type: str) -> None:
    issued = authority.issue_user("bob", ["access"], timedelta(hours=3), key_type=key_type)  # type: ignore[arg-type]
    path = tmp_path / "identity"
    issued.write_identity_file(path)
    ident = load_identity_file(path)
    assert ident.source == str(path)
    assert ident.username == "bob"
    assert ident.roles == ("access",)
    assert ident.cluster == "ident.example"
    assert ident.not_after == issued.not_after
    assert ident.key_pem == issued.key_pem
    assert ident.cert_pem == issued.tls_cert_pem
    assert ident.ca_pems == (authority.host_ca_pem,)
    assert ident.ca_bundle == authority.host_ca_pem
    assert ident.ssh_cert == issued.ssh_cert_line
    assert ident.ssh_cas == (authority.cert_authority_line(),)
    assert not ident.is_expired()
    assert ident.is_expired(issued.not_after)
    assert "PRIVATE KEY" not in repr(ident) and "CERTIFICATE" not in repr(ident)


def test_crlf_and_extra_lines_are_tolerated(tmp_path: Path, issued: IssuedIdentity) -> None:
    text = "# comment the Go parser ignores\n" + issued.identity_file_bytes().decode() + "\n\ntrailing words\n"
    path = tmp_path / "identity"
    path.write_bytes(text.replace("\n", "\r\n").encode())
    ident = load_identity_file(path)
    assert ident.username == "alice"
    assert ident.roles == ("editor", "reviewer")


def test_multiple_ca_blocks(tmp_path: Path, issued: IssuedIdentity, authority: ClusterAuthority) -> None:
    path = tmp_path / "identity"
    path.write_bytes(issued.identity_file_bytes() + authority.user_ca_pem)
    assert load_identity_file(path).ca_pems == (authority.host_ca_pem, authority.user_ca_pem)


def test_cluster_falls_back_to_issuer_organization(tmp_path: Path) -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "issuer.example")])
    now = datetime.now(UTC)
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(1).not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old-user")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
        .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(hours=1))
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    path = tmp_path / "identity"
    path.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + cert.public_bytes(pem)
        + ca_cert.public_bytes(pem)
    )
    ident = load_identity_file(path)
    assert (ident.username, ident.cluster, ident.roles, ident.ssh_cert) == ("old-user", "issuer.example", (), None)


# --- broken identity files: (id, builder of the file content, expected message after "identity file <path>: ")


def _key_lines(issued: IssuedIdentity) -> list[str]:
    return [line for line in issued.key_pem.decode().splitlines() if not line.startswith("-----")]


def _replace_body(pem: bytes, body: str) -> bytes:
    lines = pem.decode().splitlines()
    return (lines[0] + "\n" + body + "\n" + lines[-1] + "\n").encode()


_Builder = Callable[[IssuedIdentity, ClusterAuthority], bytes]

BROKEN: list[tuple[str, _Builder, str]] = [
    ("empty", lambda i, a: b"", "file is empty"),
    ("whitespace", lambda i, a: b"  \n\t\n", "file is empty"),
    ("binary", lambda i, a: b"\x00\xff\xfe garbage \x80", "not a text file (binary data)"),
    ("text-garbage", lambda i, a: b"hello world\nthis is not an identity\n", "no private key found"),
    ("key-only", lambda i, a: i.key_pem, "no TLS certificate found after the private key"),
    ("no-cas", lambda i, a: i.key_pem + i.ssh_cert_line.encode() + b"\n" + i.tls_cert_pem, "no CA certificates found"),
    (
        "cert-first",
        lambda i, a: i.tls_cert_pem + i.key_pem + a.host_ca_pem,
        "no private key found (the first PEM block is 'CERTIFICATE')",
    ),
    (
        "two-keys",
        lambda i, a: i.key_pem + i.key_pem + a.host_ca_pem,
        "the TLS certificate is not a PEM certificate (found 'PRIVATE KEY')",
    ),
    (
        "truncated-end",
        lambda i, a: i.identity_file_bytes()[: -len(b"-----END CERTIFICATE-----\n") - 10],
        "truncated PEM block 'CERTIFICATE' (no END line)",
    ),
    (
        "truncated-middle",
        lambda i, a: i.key_pem[:80] + b"\n" + i.tls_cert_pem + a.host_ca_pem,
        "truncated PEM block 'PRIVATE KEY' (a new BEGIN at line",
    ),
    (
        "mismatched-end",
        lambda i, a: i.key_pem.replace(b"END PRIVATE KEY", b"END CERTIFICATE") + i.tls_cert_pem + a.host_ca_pem,
        "PEM block 'PRIVATE KEY' ends with a mismatched END line",
    ),
    ("bad-begin", lambda i, a: b"-----BEGIN lower case-----\nabc\n", "malformed PEM BEGIN line (line 1)"),
    (
        "corrupt-key",
        lambda i, a: _replace_body(i.key_pem, "QUJDREVGR0g=") + i.tls_cert_pem + a.host_ca_pem,
        "private key is malformed",
    ),
    (
        "corrupt-cert",
        lambda i, a: i.key_pem + _replace_body(i.tls_cert_pem, "QUJDREVGR0g=") + a.host_ca_pem,
        "the TLS certificate is not a valid certificate",
    ),
    (
        "corrupt-ca",
        lambda i, a: i.key_pem + i.tls_cert_pem + _replace_body(a.host_ca_pem, "QUJD"),
        "CA certificate #1 is not a valid certificate",
    ),
    (
        "ca-not-cert",
        lambda i, a: i.key_pem + i.tls_cert_pem + i.key_pem,
        "CA certificate #1 is not a PEM certificate (found 'PRIVATE KEY')",
    ),
    (
        "key-mismatch",
        lambda i, a: a.issue_user("other", ["r"], timedelta(hours=1)).key_pem + i.tls_cert_pem + a.host_ca_pem,
        "private key does not match the certificate",
    ),
    (
        "expired",
        lambda i, a: a.issue_user(
            "late", ["r"], timedelta(hours=2), now=datetime(2020, 1, 1, tzinfo=UTC)
        ).identity_file_bytes(),
        "certificate expired at 2020-01-01T02:00:00Z",
    ),
    (
        "encrypted-key",
        lambda i, a: i.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pw"),
        )
        + i.tls_cert_pem
        + a.host_ca_pem,
        "private key is encrypted; an unencrypted key is required",
    ),
    (
        "encrypted-traditional-key",
        lambda i, a: i.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.BestAvailableEncryption(b"pw"),
        )
        + i.tls_cert_pem
        + a.host_ca_pem,
        "private key is encrypted; an unencrypted key is required",
    ),
]


@pytest.mark.parametrize(("builder", "expected"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_broken_identity_files(
    tmp_path: Path, issued: IssuedIdentity, authority: ClusterAuthority, builder: _Builder, expected: str
) -> None:
    path = tmp_path / "identity"
    path.write_bytes(builder(issued, authority))
    with pytest.raises(IdentityError) as info:
        load_identity_file(path)
    message = str(info.value)
    assert message.startswith(f"identity file {path}: {expected}"), message
    for secret_line in _key_lines(issued):
        assert secret_line not in message
    assert "PRIVATE KEY-----" not in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(IdentityError, match=re.escape(f"identity file {tmp_path}/nope: file not found")):
        load_identity_file(tmp_path / "nope")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(IdentityError, match=re.escape(f"identity file {tmp_path}: is a directory, not a file")):
        load_identity_file(tmp_path)


def test_huge_file(tmp_path: Path) -> None:
    path = tmp_path / "big"
    path.write_bytes(b"a" * (2 << 20))
    with pytest.raises(IdentityError, match="larger than 1 MiB"):
        load_identity_file(path)


def test_expiry_uses_the_given_clock(tmp_path: Path, issued: IssuedIdentity) -> None:
    path = tmp_path / "identity"
    issued.write_identity_file(path)
    with pytest.raises(IdentityError, match="certificate expired at"):
        load_identity_file(path, now=issued.not_after + timedelta(seconds=1))


# --- key pairs (tctl auth sign --format tls)


def test_key_pair_round_trip(tmp_path: Path, authority: ClusterAuthority) -> None:
    issued = authority.issue_user("carol", ["r1", "r2"], timedelta(hours=1), key_type="rsa")
    crt, key, cas = issued.write_tls_files(tmp_path / "carol")
    ident = load_key_pair(key, crt, cas)
    assert (ident.username, ident.roles, ident.cluster) == ("carol", ("r1", "r2"), "ident.example")
    assert ident.ssh_cert is None and ident.ssh_cas == ()
    assert ident.ca_pems == (authority.host_ca_pem,)
    assert ident.key_pem == issued.key_pem


@pytest.mark.parametrize(
    ("broken", "content", "expected"),
    [
        ("key", b"", "client key {key}: file is empty"),
        ("key", b"junk\n", "client key {key}: no private key found"),
        ("crt", b"junk\n", "client certificate {crt}: no PEM certificate found"),
        ("cas", b"junk\n", "root CAs {cas}: no PEM certificate found"),
        ("cas", b"-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n",
         "root CAs {cas}: CA certificate #1 is not a valid certificate"),
    ],
)
def test_key_pair_errors_name_the_file(
    tmp_path: Path, issued: IssuedIdentity, broken: str, content: bytes, expected: str
) -> None:
    crt, key, cas = issued.write_tls_files(tmp_path / "x")
    paths = {"key": key, "crt": crt, "cas": cas}
    paths[broken].write_bytes(content)
    with pytest.raises(IdentityError) as info:
        load_key_pair(key, crt, cas)
    assert str(info.value).startswith(expected.format(**paths))


def test_key_pair_mismatch(tmp_path: Path, issued: IssuedIdentity, authority: ClusterAuthority) -> None:
    crt, key, cas = issued.write_tls_files(tmp_path / "x")
    other = authority.issue_user("o", ["r"], timedelta(hours=1))
    key.write_bytes(other.key_pem)
    with pytest.raises(IdentityError, match=re.escape(f"client certificate {crt}: private key does not match")):
        load_key_pair(key, crt, cas)
