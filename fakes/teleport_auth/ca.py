"""The fake cluster's PKI: Host and User CAs (TLS and SSH), the Auth server certificate, user identities.

Layout on disk (inside `<state_dir>/ca/`, created once and then only read):

    cluster_name                the cluster name (UTF-8, no newline)
    host_ca.crt / host_ca.key   TLS Host CA: signs the Auth server cert; the identity file trusts it
    user_ca.crt / user_ca.key   TLS User CA: signs user certs; the Auth server verifies clients against it
    ssh_host_ca.key             SSH host CA key (its public half goes into `@cert-authority` lines)
    ssh_user_ca.key             SSH user CA key (signs the SSH user certificate in identity files)

Creation is lock-free and safe against concurrent `serve` and `sign`: everything is written into a private
temporary directory which is then renamed to `ca/`. Renaming onto an existing directory fails, so the first
writer wins and the loser discards its copy and loads the winner's.

Certificate subjects follow Teleport's `lib/tlsca/ca.go` `Subject` encoding: CN = user, O = roles, cluster name in
OID 1.3.9999.1.7, traits as JSON in PostalCode, and for a Machine ID bot's identity the bot's name in OID
1.3.9999.2.18. CA subjects carry the cluster name as CN and O, like Teleport.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

DEFAULT_CLUSTER_NAME = "teleport.example.com"
API_DOMAIN = "teleport.cluster.local"
CLUSTER_NAME_OID = ObjectIdentifier("1.3.9999.1.7")
SYSTEM_ROLES_OID = ObjectIdentifier("1.3.9999.2.11")
BOT_NAME_OID = ObjectIdentifier("1.3.9999.2.18")
ADMIN_ROLE = "Admin"

KeyType = Literal["ecdsa", "rsa"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

_CA_DIR = "ca"
_CA_VALIDITY = timedelta(days=3650)
_SERVER_VALIDITY = timedelta(days=365)
# Certificates start a little in the past so that small clock differences between processes do not matter.
_BACKDATE = timedelta(minutes=1)


class CAError(Exception):
    """The CA directory is unusable, or a caller asked for something that conflicts with it."""


def _new_key(key_type: KeyType) -> PrivateKey:
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    raise CAError(f"unknown key type {key_type!r} (want ecdsa or rsa)")


def _key_pem_pkcs8(key: PrivateKey) -> bytes:
    pkcs8 = serialization.PrivateFormat.PKCS8
    return key.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption())


def _openssh_public(key: PrivateKey) -> str:
    """`<type> <base64>` of the key's public half."""
    fmt = serialization.PublicFormat.OpenSSH
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH, fmt).decode()


def identity_key_pem(key: PrivateKey) -> bytes:
    """Teleport's private key PEM: RSA as PKCS#1 `RSA PRIVATE KEY`, everything else as PKCS#8 `PRIVATE KEY`."""
    fmt = (
        serialization.PrivateFormat.TraditionalOpenSSL
        if isinstance(key, rsa.RSAPrivateKey)
        else serialization.PrivateFormat.PKCS8
    )
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


def _load_key(path: Path) -> PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise CAError(f"{path}: unsupported key type {type(key).__name__}")
    return key


def _write_private(path: Path, data: bytes) -> None:
    """Write a file readable only by its owner (created with 0600, never briefly wider)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace `path` with `data` atomically: write a temp file in the same directory, fsync, then rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _ca_cert(key: PrivateKey, cluster: str, now: datetime) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, cluster),
            x509.NameAttribute(NameOID.COMMON_NAME, cluster),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, str(uuid.uuid4().int)),
        ]
    )
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def _leaf_key_usage(key: PrivateKey) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=isinstance(key, rsa.RSAPrivateKey),
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass(frozen=True)
class _CAPair:
    cert: x509.Certificate
    key: PrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def sign_leaf(
        self,
        subject: x509.Name,
        leaf_key: PrivateKey,
        not_before: datetime,
        not_after: datetime,
        dns_names: Sequence[str] = (),
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_leaf_key_usage(leaf_key), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if dns_names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False
            )
        return builder.sign(self.key, hashes.SHA256())


@dataclass(frozen=True)
class IssuedIdentity:
    """A user identity as `tctl auth sign` would produce it: one key shared by the TLS and SSH certificates."""

    user: str
    roles: tuple[str, ...]
    cluster: str
    key: PrivateKey
    tls_cert: x509.Certificate
    ssh_cert_line: str
    ssh_ca_lines: tuple[str, ...]
    tls_ca_pems: tuple[bytes, ...]

    @property
    def key_pem(self) -> bytes:
        """The private key PEM (PKCS#1 for RSA, PKCS#8 for ECDSA)."""
        return identity_key_pem(self.key)

    @property
    def tls_cert_pem(self) -> bytes:
        """The user's TLS certificate PEM."""
        return self.tls_cert.public_bytes(serialization.Encoding.PEM)

    @property
    def not_after(self) -> datetime:
        """When the TLS certificate expires (UTC)."""
        return self.tls_cert.not_valid_after_utc

    @property
    def ssh_public_key_line(self) -> str:
        """The key's public half in authorized_keys form (tbot's `key.pub`)."""
        return _openssh_public(self.key)

    def identity_file_bytes(self) -> bytes:
        """The identity file exactly as Teleport writes it (upstream `api/identityfile/identityfile.go`
        `encodeIdentityFile`).

        Order: private key, SSH cert line, TLS cert, `@cert-authority` lines, TLS Host CA certs; every block
        is followed by a newline unless it already ends with one.
        """
        blocks: list[bytes] = [self.key_pem, self.ssh_cert_line.encode(), self.tls_cert_pem]
        blocks += [line.encode() for line in self.ssh_ca_lines]
        blocks += list(self.tls_ca_pems)
        return b"".join(b if b.endswith(b"\n") else b + b"\n" for b in blocks)

    def write_identity_file(self, path: Path | str) -> None:
        """Write the identity file atomically with mode 0600."""
        atomic_write(Path(path), self.identity_file_bytes())

    def write_tls_files(self, prefix: Path | str) -> tuple[Path, Path, Path]:
        """`tctl auth sign --format tls`: write `<prefix>.crt`, `<prefix>.key` and `<prefix>.cas` (all 0600)."""
        base = str(prefix)
        crt, key, cas = Path(base + ".crt"), Path(base + ".key"), Path(base + ".cas")
        atomic_write(crt, self.tls_cert_pem)
        atomic_write(key, self.key_pem)
        atomic_write(cas, b"".join(self.tls_ca_pems))
        return crt, key, cas


class ClusterAuthority:
    """The CAs of one fake cluster, loaded from (or created in) a state directory."""

    def __init__(
        self,
        state_dir: Path,
        cluster_name: str,
        host_ca: _CAPair,
        user_ca: _CAPair,
        ssh_host_ca: PrivateKey,
        ssh_user_ca: PrivateKey,
    ) -> None:
        self.state_dir = state_dir
        self.cluster_name = cluster_name
        self._host_ca = host_ca
        self._user_ca = user_ca
        self._ssh_host_ca = ssh_host_ca
        self._ssh_user_ca = ssh_user_ca
        self._server_tls: tuple[bytes, bytes] | None = None

    @classmethod
    def load_or_create(cls, state_dir: Path | str, cluster_name: str | None = None) -> ClusterAuthority:
        """Load the CAs stored in `state_dir`, creating them first when there are none.

        An existing directory keeps its cluster name; passing a different `cluster_name` is an error.
        Without a stored or given name the cluster is called "teleport.example.com".
        """
        state_dir = Path(state_dir)
        if cluster_name is not None and not cluster_name.strip():
            raise CAError("cluster name must not be empty")
        ca_dir = state_dir / _CA_DIR
        if not ca_dir.is_dir():
            state_dir.mkdir(parents=True, exist_ok=True)
            cls._create(state_dir, cluster_name or DEFAULT_CLUSTER_NAME)
        authority = cls._load(state_dir)
        if cluster_name is not None and cluster_name != authority.cluster_name:
            raise CAError(
                f"state directory {state_dir} belongs to cluster {authority.cluster_name!r}, not {cluster_name!r}"
            )
        return authority

    @staticmethod
    def _create(state_dir: Path, cluster_name: str) -> None:
        now = datetime.now(UTC)
        tmp = Path(tempfile.mkdtemp(prefix=".ca-", dir=state_dir))
        try:
            (tmp / "cluster_name").write_text(cluster_name, encoding="utf-8")
            for prefix in ("host_ca", "user_ca"):
                key = _new_key("ecdsa")
                _write_private(tmp / f"{prefix}.key", _key_pem_pkcs8(key))
                cert = _ca_cert(key, cluster_name, now)
                (tmp / f"{prefix}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
            for name in ("ssh_host_ca.key", "ssh_user_ca.key"):
                _write_private(tmp / name, _key_pem_pkcs8(_new_key("ecdsa")))
            os.chmod(tmp, 0o700)
            try:
                os.rename(tmp, state_dir / _CA_DIR)
            except OSError:
                # Another process created the CA directory first; its CAs win.
                if not (state_dir / _CA_DIR).is_dir():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @classmethod
    def _load(cls, state_dir: Path) -> ClusterAuthority:
        ca_dir = state_dir / _CA_DIR
        try:
            cluster_name = (ca_dir / "cluster_name").read_text(encoding="utf-8").strip()
            pairs = []
            for prefix in ("host_ca", "user_ca"):
                cert = x509.load_pem_x509_certificate((ca_dir / f"{prefix}.crt").read_bytes())
                pairs.append(_CAPair(cert, _load_key(ca_dir / f"{prefix}.key")))
            ssh_host = _load_key(ca_dir / "ssh_host_ca.key")
            ssh_user = _load_key(ca_dir / "ssh_user_ca.key")
        except (OSError, ValueError) as exc:
            raise CAError(f"CA directory {ca_dir} is unreadable or incomplete: {type(exc).__name__}") from exc
        if not cluster_name:
            raise CAError(f"CA directory {ca_dir}: empty cluster_name")
        return cls(state_dir, cluster_name, pairs[0], pairs[1], ssh_host, ssh_user)

    @property
    def host_ca_pem(self) -> bytes:
        """The TLS Host CA certificate (what identity files trust)."""
        return self._host_ca.cert_pem

    @property
    def user_ca_pem(self) -> bytes:
        """The TLS User CA certificate (what the Auth server verifies client certs against)."""
        return self._user_ca.cert_pem

    @property
    def ssh_host_ca_public_line(self) -> str:
        """The SSH host CA public key as `<type> <base64>`."""
        return _openssh_public(self._ssh_host_ca)

    @property
    def ssh_user_ca_public_line(self) -> str:
        """The SSH user CA public key as `<type> <base64>`."""
        return _openssh_public(self._ssh_user_ca)

    def cert_authority_line(self, proxy_host: str = "") -> str:
        """The known_hosts `@cert-authority` line for the SSH host CA (Teleport's MarshalKnownHost)."""
        hosts = ([proxy_host] if proxy_host else []) + [self.cluster_name, f"*.{self.cluster_name}"]
        return f"@cert-authority {','.join(hosts)} {self.ssh_host_ca_public_line} type=host"

    def server_tls(self) -> tuple[bytes, bytes]:
        """The Auth server's (cert_pem, key_pem), signed by the Host CA; the same pair for this object's life.

        Like Teleport's Auth host certificate: CN `<host-id>.<cluster>`, O `Admin` (the system role), the cluster
        OID, the system-roles OID, and SANs `teleport.cluster.local`, `*.teleport.cluster.local`, plus `localhost`.
        """
        if self._server_tls is None:
            now = datetime.now(UTC)
            key = _new_key("ecdsa")
            host_id = str(uuid.uuid4())
            subject = x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, f"{host_id}.{self.cluster_name}"),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, ADMIN_ROLE),
                    x509.NameAttribute(CLUSTER_NAME_OID, self.cluster_name),
                    x509.NameAttribute(SYSTEM_ROLES_OID, ADMIN_ROLE),
                ]
            )
            dns = [API_DOMAIN, f"*.{API_DOMAIN}", f"{host_id}.{self.cluster_name}", "localhost"]
            cert = self._host_ca.sign_leaf(subject, key, now - _BACKDATE, now + _SERVER_VALIDITY, dns)
            self._server_tls = (cert.public_bytes(serialization.Encoding.PEM), _key_pem_pkcs8(key))
        return self._server_tls

    def issue_user(
        self,
        user: str,
        roles: Sequence[str],
        ttl: timedelta,
        *,
        key_type: KeyType = "ecdsa",
        now: datetime | None = None,
        traits: Mapping[str, Sequence[str]] | None = None,
        bot_name: str = "",
    ) -> IssuedIdentity:
        """Issue a user identity: a fresh key, a TLS cert from the User CA and an SSH cert from the SSH user CA.

        The TLS subject is CN=user, O=each role, cluster OID, PostalCode = traits JSON when traits are given, and
        the bot-name OID when `bot_name` is set (what tbot's identities carry: Auth skips admin-action MFA for them).
        `now` sets the start of validity (for expired-certificate tests); the certs are valid until now + ttl.
        """
        if not user:
            raise CAError("user name must not be empty")
        if ttl <= timedelta(0):
            raise CAError("ttl must be positive")
        start = now if now is not None else datetime.now(UTC)
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        key = _new_key(key_type)
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, user)]
        attrs += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, r) for r in roles]
        if traits:
            doc = json.dumps({k: list(v) for k, v in traits.items()}, separators=(",", ":"), sort_keys=True)
            attrs.append(x509.NameAttribute(NameOID.POSTAL_CODE, doc))
        attrs.append(x509.NameAttribute(CLUSTER_NAME_OID, self.cluster_name))
        if bot_name:
            attrs.append(x509.NameAttribute(BOT_NAME_OID, bot_name))
        not_before = start - _BACKDATE
        not_after = start + ttl
        tls_cert = self._user_ca.sign_leaf(x509.Name(attrs), key, not_before, not_after)
        ssh_cert = self._sign_ssh_user(key, user, roles, not_before, not_after)
        return IssuedIdentity(
            user=user,
            roles=tuple(roles),
            cluster=self.cluster_name,
            key=key,
            tls_cert=tls_cert,
            ssh_cert_line=ssh_cert,
            ssh_ca_lines=(self.cert_authority_line(),),
            tls_ca_pems=(self.host_ca_pem,),
        )

    def _sign_ssh_user(
        self, key: PrivateKey, user: str, roles: Sequence[str], not_before: datetime, not_after: datetime
    ) -> str:
        public = key.public_key()
        # Teleport's role extension: JSON of {"version":"v1","roles":[...]}.
        roles_ext = json.dumps({"version": "v1", "roles": list(roles)}, separators=(",", ":")).encode()
        builder = (
            serialization.SSHCertificateBuilder()
            .public_key(public)
            .serial(x509.random_serial_number() >> 96)
            .type(serialization.SSHCertificateType.USER)
            .key_id(user.encode())
            .valid_principals([user.encode()])
            .valid_after(max(0, int(not_before.timestamp())))
            .valid_before(max(1, int(not_after.timestamp())))
            .add_extension(b"permit-agent-forwarding", b"")
            .add_extension(b"permit-port-forwarding", b"")
            .add_extension(b"permit-pty", b"")
            .add_extension(b"teleport-roles", roles_ext)
        )
        cert = builder.sign(self._ssh_user_ca)
        return cert.public_bytes().decode()
