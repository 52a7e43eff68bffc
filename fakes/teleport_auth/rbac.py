"""Who the caller is and what the seed's roles allow it to do.

The caller comes from the verified client certificate (upstream `lib/tlsca/ca.go` `FromSubject`): CN = user, O =
roles, OID 1.3.9999.1.7 =
cluster. Permissions come from the seed's roles named in the certificate (roles unknown to the seed grant
nothing), mirroring how a real cluster trusts the roles it signed into the certificate.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

from .errors import AccessDenied, NotFound
from .seed import WILDCARD, RoleDef, Seed, Threshold, UserDef

CLUSTER_OID = x509.ObjectIdentifier("1.3.9999.1.7")

#: Teleport's threshold when no role defines one (`api/types/access_request.go`).
DEFAULT_THRESHOLD = Threshold(name="default", approve=1, deny=1)


@dataclass(frozen=True)
class Caller:
    """An authenticated caller."""

    user: str
    roles: tuple[str, ...]
    cluster: str


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
    return Caller(user=str(names[0].value), roles=roles, cluster=cluster)


class Policy:
    """RBAC decisions over the seed's roles."""

    def __init__(self, seed: Seed) -> None:
        self._seed = seed

    def role(self, name: str) -> RoleDef:
        """A role by name; NotFound when the seed has none."""
        role = self._seed.roles.get(name)
        if role is None:
            raise NotFound(f'role "{name}" is not found')
        return role

    def user(self, name: str) -> UserDef:
        """A user by name; NotFound when the seed has none."""
        user = self._seed.users.get(name)
        if user is None:
            raise NotFound(f'user "{name}" is not found')
        return user

    def user_roles(self, name: str) -> tuple[str, ...]:
        """The seed's roles of a user (for acting on behalf of another user)."""
        return self.user(name).roles

    def _roles(self, role_names: Iterable[str]) -> list[RoleDef]:
        return [self._seed.roles[n] for n in role_names if n in self._seed.roles]

    def allowed(self, caller: Caller, resource: str, verb: str) -> bool:
        """Whether any of the caller's roles grants `verb` on `resource`."""
        return any(rule.allows(resource, verb) for role in self._roles(caller.roles) for rule in role.rules)

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
        """Whether holders of `role_names` may request the role `requested`."""
        return any(WILDCARD in r.request or requested in r.request for r in self._roles(role_names))

    def can_review(self, role_names: Iterable[str], requested: Iterable[str]) -> bool:
        """Whether holders of `role_names` may review a request for all of `requested`."""
        roles = self._roles(role_names)
        return all(any(WILDCARD in r.review or want in r.review for r in roles) for want in requested)

    def thresholds_for(
        self, requester_roles: Iterable[str], requested: Iterable[str]
    ) -> tuple[list[Threshold], dict[str, list[list[int]]]]:
        """Thresholds for a new request and, per requested role, the sets of threshold indexes that approve it.

        Each requester role that allows requesting a role contributes one set (its own thresholds); a role is
        approved once any of its sets is satisfied. A role without any contributing thresholds uses the default.
        """
        thresholds: list[Threshold] = []
        mapping: dict[str, list[list[int]]] = {}

        def index_of(t: Threshold) -> int:
            if t not in thresholds:
                thresholds.append(t)
            return thresholds.index(t)

        granting = self._roles(requester_roles)
        for want in requested:
            sets = [
                [index_of(t) for t in r.thresholds]
                for r in granting
                if r.thresholds and (WILDCARD in r.request or want in r.request)
            ]
            mapping[want] = sets or [[index_of(DEFAULT_THRESHOLD)]]
        return thresholds, mapping
