"""`teleport-mattermost check` for `[review]`: the settings, the network path as far as it can be told from here,
Mattermost's trigger-signing key, and the plugin role's `submit_for_users`.

The caller (`sidecar/check/`) turns each `Finding` into one of its lines: `ok` False fails the check;
`warning` marks an ok line worth reading.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from cryptography import x509

from sidecar.domain.errors import AccessDenied, SidecarError
from sidecar.review.ports import ReviewPermissions, SigningKeySource
from sidecar.review.settings import ReviewSettings
from sidecar.review.trigger import load_signing_key
from sidecar.review.urls import ACTION_PATH, PING_PATH, callback_url

__all__ = ["MIN_TELEPORT", "Finding", "check_review"]

MIN_TELEPORT: Final = (18, 11, 0)  # the first release with reviews on behalf of users (tentative upstream)
_VERSION: Final = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True)
class Finding:
    """One checked fact about review."""

    subject: str
    ok: bool
    detail: str
    fix: str = ""
    warning: bool = False


async def check_review(
    settings: ReviewSettings,
    *,
    mattermost_url: str,
    signing_key: SigningKeySource | None = None,
    permissions: ReviewPermissions | None = None,
    teleport_version: str = "",
) -> list[Finding]:
    """Every review finding, in order: settings, network path, trigger key, Teleport version, submit_for_users.

    `signing_key`, `permissions` and `teleport_version` are checked when given (the caller passes what it could
    reach); with review disabled there is one line saying so.
    """
    if not settings.enabled or settings.keys is None:
        return [Finding("review", True, "disabled: no buttons and no callback listener")]
    kids = ", ".join(f"{kid} (signs)" if i == 0 else kid for i, kid in enumerate(settings.keys.kids))
    binding = f"trait {settings.trait}" if settings.binding.value == "trait" else "email"
    findings = [
        Finding(
            "review",
            True,
            f"enabled: binding {binding}, reason {settings.reason.value}, trigger ids "
            f"{'verified' if settings.verify_trigger_id else 'NOT verified'}, keys {kids}",
        )
    ]
    findings += [Finding("review", True, warning, warning=True) for warning in settings.warnings]
    findings += _network(settings, mattermost_url)
    if signing_key is not None and settings.verify_trigger_id:
        findings.append(await _trigger_key(signing_key))
    if teleport_version:
        findings.append(_version(teleport_version))
    if permissions is not None:
        findings.append(await _submit_for_users(permissions))
    return findings


def _loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _reserved(host: str) -> bool:
    """True for the addresses Mattermost refuses to call unless `AllowedUntrustedInternalConnections` lists them."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not address.is_global


def _network(settings: ReviewSettings, mattermost_url: str) -> list[Finding]:
    public = urlsplit(settings.public_url)
    host = public.hostname or ""
    mattermost_host = urlsplit(mattermost_url).hostname or ""
    url = callback_url(settings.public_url, ACTION_PATH)
    allow = "list it in Mattermost's ServiceSettings.AllowedUntrustedInternalConnections"
    findings = []
    if public.scheme == "http" and settings.tls:
        findings.append(
            Finding(
                "review.public_url",
                False,
                "public_url is http:// but the listener serves TLS (review.tls_cert)",
                "use https:// in review.public_url, or remove review.tls_cert and review.tls_key",
            )
        )
    if _loopback(host) and not _loopback(mattermost_host):
        findings.append(
            Finding(
                "review.public_url",
                True,
                f"Mattermost ({mattermost_host}) calls {url}, a loopback address: it reaches the sidecar only if both "
                "run on the same host",
                warning=True,
            )
        )
    elif _reserved(host) or _loopback(host):
        findings.append(
            Finding(
                "review.public_url",
                True,
                f"Mattermost refuses to call private or reserved addresses such as {host} unless allowed: {allow}",
                warning=True,
            )
        )
    else:
        findings.append(
            Finding(
                "review.public_url",
                True,
                f"Mattermost calls {url}; if {host} resolves to a private address, {allow}. From a Mattermost host, "
                f"curl {callback_url(settings.public_url, PING_PATH)} should answer {{\"status\": \"ok\"}}",
            )
        )
    if settings.tls and _self_signed(settings.tls_cert):
        findings.append(
            Finding(
                "review.tls_cert",
                True,
                "the certificate is self-signed: Mattermost refuses it unless ServiceSettings."
                "EnableInsecureOutgoingConnections is true (or its hosts trust the certificate)",
                warning=True,
            )
        )
    return findings


def _self_signed(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            certificate = x509.load_pem_x509_certificate(handle.read())
    except (OSError, ValueError):
        return False
    return certificate.issuer == certificate.subject


async def _trigger_key(source: SigningKeySource) -> Finding:
    subject = "review.verify_trigger_id"
    try:
        published = await source.signing_public_key()
    except SidecarError as exc:
        return Finding(subject, False, f"cannot read Mattermost's client config: {exc}", "check mattermost.url")
    if not published:
        return Finding(
            subject,
            False,
            "Mattermost publishes no AsymmetricSigningPublicKey, so clicks cannot be verified and will be refused",
            "upgrade Mattermost, or set review.verify_trigger_id = false and let only Mattermost reach the listener",
        )
    try:
        load_signing_key(published)
    except ValueError as exc:
        return Finding(subject, False, f"Mattermost's AsymmetricSigningPublicKey cannot be used: {exc}")
    return Finding(subject, True, "Mattermost publishes its trigger-signing key (ECDSA P-256)")


def _version(version: str) -> Finding:
    match = _VERSION.match(version)
    if match is None:
        return Finding("review.teleport", True, f"cannot tell whether Teleport {version} supports it", warning=True)
    if tuple(int(part) for part in match.groups()) < MIN_TELEPORT:
        wanted = ".".join(map(str, MIN_TELEPORT))
        return Finding(
            "review.teleport",
            False,
            f"Teleport {version} predates reviews submitted on a user's behalf (about {wanted}): Auth refuses them",
            f"upgrade Teleport to {wanted} or newer, or disable [review]",
        )
    return Finding("review.teleport", True, f"Teleport {version} accepts reviews submitted on a user's behalf")


async def _submit_for_users(permissions: ReviewPermissions) -> Finding:
    subject = "review.submit_for_users"
    fix = (
        "give the plugin the preset role access-plugin-with-review, or a role with "
        'review_requests.submit_for_users: ["*"]'
    )
    try:
        grant = await permissions.submit_for_users()
    except AccessDenied as exc:
        return Finding(subject, False, f"cannot read the plugin's roles: {exc}", "allow the plugin role read on role")
    except SidecarError as exc:
        return Finding(subject, False, f"cannot check the plugin's roles: {exc}")
    if "*" in grant.deny:
        return Finding(subject, False, "a role of the plugin denies submit_for_users for every user", fix)
    if not grant.allow:
        return Finding(subject, False, "the plugin's roles do not allow review_requests.submit_for_users", fix)
    if "*" in grant.allow and not grant.deny:
        return Finding(subject, True, "the plugin may submit reviews for every user")
    allowed = ", ".join(grant.allow)
    denied = f"; denied for {', '.join(grant.deny)}" if grant.deny else ""
    return Finding(subject, True, f"the plugin may submit reviews for {allowed}{denied}", warning=True)
