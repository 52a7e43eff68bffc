"""`check` for [review]: the summary, the network path findings, the trigger key, the version, submit_for_users."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sidecar.domain.errors import AccessDenied, TransientError
from sidecar.review.check import Finding, check_review
from sidecar.review.ports import SubmitForUsers
from sidecar.review.settings import ReviewSettings
from tests.unit.test_review_kit import FakeSigningKey, MattermostKey, ring, settings

MATTERMOST = "https://chat.example.com"


class Permissions:
    def __init__(self, grant: SubmitForUsers | None = None, error: Exception | None = None) -> None:
        self.grant = grant or SubmitForUsers()
        self.error = error

    async def submit_for_users(self) -> SubmitForUsers:
        if self.error is not None:
            raise self.error
        return self.grant


def by_subject(findings: list[Finding], subject: str) -> list[Finding]:
    return [f for f in findings if f.subject == subject]


async def test_disabled_review_is_one_ok_line() -> None:
    assert await check_review(ReviewSettings(), mattermost_url=MATTERMOST) == [
        Finding("review", True, "disabled: no buttons and no callback listener")
    ]


async def test_the_summary_names_binding_reason_trigger_checks_and_keys() -> None:
    findings = await check_review(
        settings(keys=ring(("new", "A" * 44), ("old", "B" * 44)), verify_trigger_id=False, warnings=("careful",)),
        mattermost_url=MATTERMOST,
    )
    [summary, warning] = by_subject(findings, "review")
    assert summary.ok and "binding trait mattermost_user_id" in summary.detail and "reason off" in summary.detail
    assert "NOT verified" in summary.detail and "keys new (signs), old" in summary.detail
    assert warning == Finding("review", True, "careful", warning=True)
    assert all(f.ok for f in findings)


@pytest.mark.parametrize(
    ("public_url", "mattermost_url", "ok", "warning", "says"),
    [
        ("http://127.0.0.1:8443", MATTERMOST, True, True, "a loopback address"),
        ("http://localhost:8443", "http://localhost:8065", True, True, "AllowedUntrustedInternalConnections"),
        ("http://10.1.2.3:8443", MATTERMOST, True, True, "AllowedUntrustedInternalConnections"),
        ("http://[fd00::5]:8443", MATTERMOST, True, True, "private or reserved"),
        ("https://sidecar.example.com", MATTERMOST, True, False, "curl https://sidecar.example.com/review/v1/ping"),
    ],
)
async def test_what_can_be_told_about_the_network_path(
    public_url: str, mattermost_url: str, ok: bool, warning: bool, says: str
) -> None:
    findings = by_subject(await check_review(settings(public_url=public_url), mattermost_url=mattermost_url),
                          "review.public_url")
    [finding] = findings
    assert (finding.ok, finding.warning) == (ok, warning) and says in finding.detail


async def test_tls_with_an_http_public_url_fails(tmp_path: Path) -> None:
    cert = tmp_path / "c.pem"
    cert.write_text("not pem")
    findings = await check_review(
        settings(public_url="http://sidecar.example.com", tls_cert=str(cert), tls_key=str(cert)),
        mattermost_url=MATTERMOST,
    )
    failed = [f for f in findings if not f.ok]
    assert [f.subject for f in failed] == ["review.public_url"] and "https://" in failed[0].fix


async def test_a_self_signed_certificate_is_pointed_out(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sidecar")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256())
    )
    cert = tmp_path / "c.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    findings = await check_review(settings(tls_cert=str(cert), tls_key=str(cert)), mattermost_url=MATTERMOST)
    [finding] = by_subject(findings, "review.tls_cert")
    assert finding.warning and "EnableInsecureOutgoingConnections" in finding.detail


@pytest.mark.parametrize(
    ("published", "error", "ok", "says"),
    [
        (None, None, True, "publishes its trigger-signing key"),
        ("", None, False, "publishes no AsymmetricSigningPublicKey"),
        ("bm90IGEga2V5", None, False, "cannot be used"),
        ("", TransientError("GET /api/v4/config/client: 502"), False, "cannot read Mattermost's client config"),
    ],
)
async def test_the_trigger_key(published: str | None, error: Exception | None, ok: bool, says: str) -> None:
    source = FakeSigningKey(MattermostKey().published() if published is None else published, error=error)  # type: ignore[arg-type]
    findings = await check_review(settings(), mattermost_url=MATTERMOST, signing_key=source)
    [finding] = by_subject(findings, "review.verify_trigger_id")
    assert finding.ok is ok and says in finding.detail


async def test_the_trigger_key_is_not_fetched_when_not_verified() -> None:
    source = FakeSigningKey("")
    findings = await check_review(settings(verify_trigger_id=False), mattermost_url=MATTERMOST, signing_key=source)
    assert source.fetches == 0 and by_subject(findings, "review.verify_trigger_id") == []


@pytest.mark.parametrize(
    ("version", "ok", "warning"),
    [("18.11.0", True, False), ("v19.0.1", True, False), ("18.10.3", False, False), ("18.0.0", False, False),
     ("dev", True, True)],
)
async def test_the_teleport_version(version: str, ok: bool, warning: bool) -> None:
    findings = await check_review(settings(), mattermost_url=MATTERMOST, teleport_version=version)
    [finding] = by_subject(findings, "review.teleport")
    assert (finding.ok, finding.warning) == (ok, warning)


@pytest.mark.parametrize(
    ("permissions", "ok", "warning", "says"),
    [
        (Permissions(SubmitForUsers(allow=("*",))), True, False, "every user"),
        (Permissions(SubmitForUsers(allow=("alice", "bob"))), True, True, "for alice, bob"),
        (Permissions(SubmitForUsers(allow=("*",), deny=("root",))), True, True, "denied for root"),
        (Permissions(SubmitForUsers(allow=("*",), deny=("*",))), False, False, "denies submit_for_users"),
        (Permissions(SubmitForUsers()), False, False, "do not allow review_requests.submit_for_users"),
        (Permissions(error=AccessDenied("GetRole: PERMISSION_DENIED")), False, False, "cannot read the plugin's roles"),
        (Permissions(error=TransientError("GetRole: UNAVAILABLE")), False, False, "cannot check"),
    ],
)
async def test_submit_for_users(permissions: Any, ok: bool, warning: bool, says: str) -> None:
    findings = await check_review(settings(), mattermost_url=MATTERMOST, permissions=permissions)
    [finding] = by_subject(findings, "review.submit_for_users")
    assert (finding.ok, finding.warning) == (ok, warning) and says in finding.detail
    if not ok and "cannot" not in says:
        assert "access-plugin-with-review" in finding.fix
