"""Teleport identities: an identity file (`tctl auth sign --format file`, tbot) or a key pair (`--format tls`).

The identity file is parsed the way Teleport's Go client does it (upstream `api/identityfile/identityfile.go`
`decodeIdentityFile`): line by line, a line whose first
token looks like `<type>-cert-vNN@openssh.com` is the SSH certificate, `@cert-authority` lines are SSH CAs, and
PEM blocks are taken by position: the first is the private key, the second the TLS certificate, the rest the TLS CA
certificates. Everything else is ignored.

Every problem raises IdentityError with a message naming the file; no message ever contains key material.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from sidecar.domain.errors import IdentityError

CLUSTER_NAME_OID = x509.ObjectIdentifier("1.3.9999.1.7")
_SSH_CERT_TYPE = re.compile(r"^[a-z0-9\-]+-cert-v[0-9]{2}@openssh\.com$")
_PEM_BEGIN = re.compile(r"^-----BEGIN ([A-Z0-9 ]+)-----$")
_KEY_PEM_TYPES = ("PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY")
_MAX_FILE_BYTES = 1 << 20  # an identity file is a few KB; anything this large is not one

_PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
_PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


@dataclass(frozen=True)
class Identity:
    """A usable client identity: the PEMs for mTLS plus who it says we are."""

    source: str
    key_pem: bytes = field(repr=False)
    cert_pem: bytes = field(repr=False)
    ca_pems: tuple[bytes, ...] = field(repr=False)
    ssh_cert: str | None = field(repr=False)
    ssh_cas: tuple[str, ...] = field(repr=False)
    username: str
    roles: tuple[str, ...]
    cluster: str
    not_after: datetime

    def is_expired(self, now: datetime | None = None) -> bool:
        """True when the TLS certificate's validity has ended at `now` (default: the current time)."""
        return (now or datetime.now(UTC)) >= self.not_after

    @property
    def ca_bundle(self) -> bytes:
        """All TLS CA certificates concatenated, as gRPC and `ssl` want them."""
        return b"".join(p if p.endswith(b"\n") else p + b"\n" for p in self.ca_pems)


@dataclass(frozen=True)
class _PemBlock:
    kind: str
    data: bytes = field(repr=False)  # may be a private key


@dataclass
class _Parsed:
    pems: list[_PemBlock] = field(default_factory=list)
    ssh_cert: str | None = None
    ssh_cas: list[str] = field(default_factory=list)


def _read(path: Path, what: str) -> str:
    """Read a small text file, turning every OS problem into an IdentityError that names the file."""
    label = f"{what} {path}"
    try:
        with path.open("rb") as f:
            raw = f.read(_MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise IdentityError(f"{label}: file not found") from None
    except IsADirectoryError:
        raise IdentityError(f"{label}: is a directory, not a file") from None
    except PermissionError:
        raise IdentityError(f"{label}: permission denied") from None
    except OSError as exc:
        raise IdentityError(f"{label}: cannot read ({exc.strerror or type(exc).__name__})") from None
    if len(raw) > _MAX_FILE_BYTES:
        raise IdentityError(f"{label}: file is larger than 1 MiB, not an identity")
    if not raw.strip():
        raise IdentityError(f"{label}: file is empty")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise IdentityError(f"{label}: not a text file (binary data)") from None


def _scan(text: str, label: str) -> _Parsed:
    """Split the text into PEM blocks, the SSH certificate line and `@cert-authority` lines (Go's decoder rules)."""
    parsed = _Parsed()
    block: list[str] | None = None
    kind = ""
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        if block is not None:
            block.append(line)
            if line.startswith("-----END"):
                if line != f"-----END {kind}-----":
                    raise IdentityError(f"{label}: PEM block {kind!r} ends with a mismatched END line (line {number})")
                parsed.pems.append(_PemBlock(kind, ("\n".join(block) + "\n").encode()))
                block = None
            elif line.startswith("-----BEGIN"):
                raise IdentityError(f"{label}: truncated PEM block {kind!r} (a new BEGIN at line {number})")
            continue
        if line.startswith("-----BEGIN"):
            match = _PEM_BEGIN.match(line)
            if match is None:
                raise IdentityError(f"{label}: malformed PEM BEGIN line (line {number})")
            kind = match.group(1)
            block = [line]
        elif line.startswith("@cert-authority"):
            parsed.ssh_cas.append(line)
        elif line and _SSH_CERT_TYPE.match(line.split()[0]):
            parsed.ssh_cert = line
    if block is not None:
        raise IdentityError(f"{label}: truncated PEM block {kind!r} (no END line)")
    return parsed


def _parse_key(block: _PemBlock, label: str) -> _PrivateKey:
    if block.kind == "ENCRYPTED PRIVATE KEY":
        raise IdentityError(f"{label}: private key is encrypted; an unencrypted key is required")
    if block.kind not in _KEY_PEM_TYPES:
        raise IdentityError(f"{label}: no private key found (the first PEM block is {block.kind!r})")
    try:
        key = serialization.load_pem_private_key(block.data, password=None)
    except TypeError:
        raise IdentityError(f"{label}: private key is encrypted; an unencrypted key is required") from None
    except (ValueError, UnsupportedAlgorithm):
        raise IdentityError(f"{label}: private key is malformed") from None
    if not isinstance(key, _PrivateKey):
        raise IdentityError(f"{label}: unsupported private key type {type(key).__name__}")
    return key


def _parse_cert(block: _PemBlock, label: str, what: str) -> x509.Certificate:
    if block.kind != "CERTIFICATE":
        raise IdentityError(f"{label}: {what} is not a PEM certificate (found {block.kind!r})")
    try:
        return x509.load_pem_x509_certificate(block.data)
    except ValueError:
        raise IdentityError(f"{label}: {what} is not a valid certificate") from None


def _public_der(key: object) -> bytes:
    if not isinstance(key, _PublicKey):
        return b""  # a certificate key type we do not support can never match our key
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _cluster_of(cert: x509.Certificate) -> str:
    """The TeleportCluster OID, else the issuer's first Organization (Teleport's tlsca ClusterName)."""
    for attrs in (cert.subject.get_attributes_for_oid(CLUSTER_NAME_OID),
                  cert.issuer.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)):
        if attrs and str(attrs[0].value):
            return str(attrs[0].value)
    return ""


def _build(
    label: str,
    source: str,
    key_block: _PemBlock,
    cert_block: _PemBlock,
    ca_blocks: list[_PemBlock],
    ssh_cert: str | None,
    ssh_cas: list[str],
    now: datetime | None,
) -> Identity:
    key = _parse_key(key_block, label)
    cert = _parse_cert(cert_block, label, "the TLS certificate")
    for index, block in enumerate(ca_blocks, start=1):
        _parse_cert(block, label, f"CA certificate #{index}")
    if _public_der(key.public_key()) != _public_der(cert.public_key()):
        raise IdentityError(f"{label}: private key does not match the certificate")
    not_after = cert.not_valid_after_utc
    if (now or datetime.now(UTC)) >= not_after:
        raise IdentityError(f"{label}: certificate expired at {not_after.strftime('%Y-%m-%dT%H:%M:%SZ')}")
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names or not str(names[0].value):
        raise IdentityError(f"{label}: the certificate has no user name (empty subject CommonName)")
    cluster = _cluster_of(cert)
    if not cluster:
        raise IdentityError(f"{label}: cannot tell the cluster name from the certificate")
    roles = tuple(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))
    return Identity(
        source=source,
        key_pem=key_block.data,
        cert_pem=cert_block.data,
        ca_pems=tuple(b.data for b in ca_blocks),
        ssh_cert=ssh_cert,
        ssh_cas=tuple(ssh_cas),
        username=str(names[0].value),
        roles=roles,
        cluster=cluster,
        not_after=not_after,
    )


def load_identity_file(path: Path | str, *, now: datetime | None = None) -> Identity:
    """Parse an identity file as Teleport's `decodeIdentityFile` does. Raises IdentityError naming the file and the
    problem."""
    path = Path(path)
    label = f"identity file {path}"
    parsed = _scan(_read(path, "identity file"), label)
    if not parsed.pems:
        raise IdentityError(f"{label}: no private key found")
    if len(parsed.pems) < 2:
        raise IdentityError(f"{label}: no TLS certificate found after the private key")
    if len(parsed.pems) < 3:
        raise IdentityError(f"{label}: no CA certificates found")
    return _build(
        label, str(path), parsed.pems[0], parsed.pems[1], parsed.pems[2:], parsed.ssh_cert, parsed.ssh_cas, now
    )


def load_key_pair(
    key_path: Path | str, crt_path: Path | str, cas_path: Path | str, *, now: datetime | None = None
) -> Identity:
    """Load `tctl auth sign --format tls` output: client key, client certificate and the CA bundle."""
    key_path, crt_path, cas_path = Path(key_path), Path(crt_path), Path(cas_path)
    key_label, crt_label, cas_label = f"client key {key_path}", f"client certificate {crt_path}", f"root CAs {cas_path}"
    key_pems = _scan(_read(key_path, "client key"), key_label).pems
    if not key_pems:
        raise IdentityError(f"{key_label}: no private key found")
    _parse_key(key_pems[0], key_label)
    crt_pems = _scan(_read(crt_path, "client certificate"), crt_label).pems
    if not crt_pems:
        raise IdentityError(f"{crt_label}: no PEM certificate found")
    _parse_cert(crt_pems[0], crt_label, "the first PEM block")
    ca_pems = _scan(_read(cas_path, "root CAs"), cas_label).pems
    if not ca_pems:
        raise IdentityError(f"{cas_label}: no PEM certificate found")
    for index, block in enumerate(ca_pems, start=1):
        _parse_cert(block, cas_label, f"CA certificate #{index}")
    return _build(crt_label, str(crt_path), key_pems[0], crt_pems[0], ca_pems, None, [], now)
