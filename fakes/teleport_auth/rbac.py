"""Who the caller is and what the seed's roles allow it to do.

The caller comes from the verified client certificate (upstream `lib/tlsca/ca.go` `FromSubject`): CN = user, O =
roles, OID 1.3.9999.1.7 = cluster, OID 1.3.9999.2.18 = the Machine ID bot's name for a bot's identity.
Permissions come from the seed's roles named in the certificate (roles unknown to the seed grant nothing),
mirroring how a real cluster trusts the roles it signed into the certificate.

Label matchers and `submit_for_users` entries match like Teleport's role values: "*" matches anything, an entry
between ^ and $ is a regular expression, and any other entry is a glob where * stands for any text (for
`submit_for_users` Teleport documents only "*"; the rest is its usual matcher).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

from .errors import AccessDenied, NotFound
from .seed import WILDCARD, RoleDef, Seed, Threshold, UserDef
from .users import UserDirectory

CLUSTER_OID = x509.ObjectIdentifier("1.3.9999.1.7")
BOT_OID = x509.ObjectIdentifier("1.3.9999.2.18")  # tlsca BotASN1ExtensionOID: the bot name in the subject

#: The text of Teleport's `ErrAdminActionMFARequired` (an AccessDenied).
ADMIN_MFA_REQUIRED = "admin-level API request requires MFA verification"

#: Teleport's threshold when no role defines one (`api/types/access_request.go`).
DEFAULT_THRESHOLD = Threshold(name="default", approve=1, deny=1)


@dataclass(frozen=True)
class Caller:
    """An authenticated caller; `bot` is the Machine ID bot's name for a bot's identity, "" otherwise."""

    user: str
    roles: tuple[str, ...]
    cluster: str
    bot: str = ""


def caller_from_pem(pem: bytes) -> Caller:
    """Read the caller from a client certificate's subject; a certificate without a CN is refused."""
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise AccessDenied("client certificate cannot be parsed") from exc
    subject = cert.subject
    names = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names or not str(names[0].value):
        raise AccessDenied("client certificate has no user name (CN)")
    roles = tuple(str(a.value) for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))
    clusters = subject.get_attributes_for_oid(CLUSTER_OID)
    if clusters:
        cluster = str(clusters[0].value)
    else:
        # Teleport falls back to the issuer's first Organization (lib/tlsca/parsegen.go).
        issuer_orgs = cert.issuer.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        cluster = str(issuer_orgs[0].value) if issuer_orgs else ""
    bots = subject.get_attributes_for_oid(BOT_OID)
    bot = str(bots[0].value) if bots else ""
    return Caller(user=str(names[0].value), roles=roles, cluster=cluster, bot=bot)


def authorize_admin_action(caller: Caller, mfa_enforced: bool) -> None:
    """Teleport's `AuthorizeAdminAction` without an MFA response: refused when MFA is enforced for admin actions,
    unless the caller is a bot (`isAdminActionAuthorizationRequired` skips bots)."""
    if mfa_enforced and not caller.bot:
        raise AccessDenied(ADMIN_MFA_REQUIRED)


def value_matches(pattern: str, value: str) -> bool:
    """A role value against a resource value: "*", a ^regex$ (whole match) or a glob with *."""
    if pattern == WILDCARD:
        return True
    if pattern.startswith("^") and pattern.endswith("$"):
        try:
            return re.fullmatch(pattern, value) is not None
        except re.error:
            return False
    return re.fullmatch(".*".join(re.escape(part) for part in pattern.split("*")), value) is not None


def labels_match(matcher: Mapping[str, tuple[str, ...]], labels: Mapping[str, str]) -> bool:
    """Teleport's label matching: an empty matcher matches nothing; every matcher label must be present with a
    matching value, except the `"*": "*"` entry, which matches any resource."""
    if not matcher:
        return False
    for key, patterns in matcher.items():
        if key == WILDCARD and WILDCARD in patterns:
            continue
        if key not in labels or not any(value_matches(p, labels[key]) for p in patterns):
            return False
    return True


class Policy:
    """RBAC decisions over the seed's roles and the directory's users."""

    def __init__(self, seed: Seed, users: UserDirectory | None = None) -> None:
        self._seed = seed
        self.users = users if users is not None else UserDirectory(seed.users)

    def role(self, name: str) -> RoleDef:
        """A role by name; NotFound when the seed has none."""
        role = self._seed.roles.get(name)
        if role is None:
            raise NotFound(f'role "{name}" is not found')
        return role

    def user(self, name: str) -> UserDef:
        """A user by name; NotFound when there is none."""
        return self.users.get(name)

    def user_roles(self, name: str) -> tuple[str, ...]:
        """The seed's roles of a user (for acting on behalf of another user)."""
        return self.user(name).roles

    def _roles(self, role_names: Iterable[str]) -> list[RoleDef]:
        return [self._seed.roles[n] for n in role_names if n in self._seed.roles]

    def allowed(self, caller: Caller, resource: str, verb: str) -> bool:
        """Whether any of the caller's roles grants `verb` on `resource`."""
        return self.roles_allow(caller.roles, resource, verb)

    def roles_allow(self, role_names: Iterable[str], resource: str, verb: str) -> bool:
        """Whether any of the roles grants `verb` on `resource`."""
        return any(rule.allows(resource, verb) for role in self._roles(role_names) for rule in role.rules)

    def effective_roles(self, caller: Caller, *, preview: bool = False, search: bool = False) -> tuple[str, ...]:
        """The caller's roles plus, on request, their `preview_as_roles` and `search_as_roles` (ListResources'
        UsePreviewAsRoles and UseSearchAsRoles)."""
        names = dict.fromkeys(caller.roles)
        for role in self._roles(caller.roles):
            names.update(dict.fromkeys(role.preview_as_roles if preview else ()))
            names.update(dict.fromkeys(role.search_as_roles if search else ()))
        return tuple(names)

    def search_as_roles(self, role_names: Iterable[str]) -> tuple[str, ...]:
        """The roles the holders of `role_names` may request for resources (`request.search_as_roles`)."""
        return tuple(dict.fromkeys(r for role in self._roles(role_names) for r in role.search_as_roles))

    def labels_allow(self, role_names: Iterable[str], kind: str, labels: Mapping[str, str]) -> bool:
        """Whether one of the roles' label matchers for `kind` (node, app, db, kube_cluster) matches `labels`."""
        return any(labels_match(role.labels.get(kind, {}), labels) for role in self._roles(role_names))

    def may_review_some(self, role_names: Iterable[str]) -> bool:
        """Teleport's `MaybeCanReviewRequests`: some role has `review_requests.roles`."""
        return any(role.review for role in self._roles(role_names))

    def may_submit_for(self, role_names: Iterable[str], author: str) -> bool:
        """`CheckSubmitForUser`: an allow entry of `submit_for_users` matches the author and no deny entry does."""
        roles = self._roles(role_names)
        if any(value_matches(p, author) for role in roles for p in role.deny_submit_for_users):
            return False
        return any(value_matches(p, author) for role in roles for p in role.submit_for_users)

    def require(self, caller: Caller, resource: str, *verbs: str) -> None:
        """Raise AccessDenied unless every verb is granted on the resource."""
        for verb in verbs:
            if not self.allowed(caller, resource, verb):
                raise AccessDenied(f'access denied to perform action "{verb}" on "{resource}"')

    def require_any(self, caller: Caller, resources: tuple[str, ...], *verbs: str) -> None:
        """Raise AccessDenied unless one of the resources grants every verb."""
        for resource in resources:
            if all(self.allowed(caller, resource, v) for v in verbs):
                return
        verb_text = ", ".join(verbs)
        raise AccessDenied(f'access denied to perform action "{verb_text}" on "{resources[0]}"')

    def is_admin(self, caller: Caller) -> bool:
        """Whether one of the caller's roles grants everything."""
        return any(role.is_admin for role in self._roles(caller.roles))

    def can_request(self, role_names: Iterable[str], requested: str) -> bool:
        """Whether holders of `role_names` may request the role `requested` (by name, or for resources)."""
        return any(_grants(r, requested) for r in self._roles(role_names))

    def can_review(self, role_names: Iterable[str], requested: Iterable[str]) -> bool:
        """Whether holders of `role_names` may review a request for all of `requested`."""
        roles = self._roles(role_names)
        return all(any(WILDCARD in r.review or want in r.review for r in roles) for want in requested)

    def thresholds_for(
        self, requester_roles: Iterable[str], requested: Iterable[str]
    ) -> tuple[list[Threshold], dict[str, list[list[int]]]]:
        """Thresholds for a new request and, per requested role, the sets of threshold indexes that approve it.

        As Teleport's `collectSetsForRole`: each requester role that allows requesting a role contributes one set,
        its own thresholds (the default threshold when it has none); a role is approved once every one of its sets
        has a threshold whose approval count is met (sets are ANDed, the thresholds of a set ORed).
        """
        thresholds: list[Threshold] = []
        mapping: dict[str, list[list[int]]] = {}

        def index_of(t: Threshold) -> int:
            if t not in thresholds:
                thresholds.append(t)
            return thresholds.index(t)

        granting = self._roles(requester_roles)
        for want in requested:
            sets = [[index_of(t) for t in r.thresholds or (DEFAULT_THRESHOLD,)] for r in granting if _grants(r, want)]
            mapping[want] = sets or [[index_of(DEFAULT_THRESHOLD)]]
        return thresholds, mapping


def _grants(role: RoleDef, requested: str) -> bool:
    return WILDCARD in role.request or requested in role.request or requested in role.search_as_roles
