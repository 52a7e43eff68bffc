"""Which Teleport user a Mattermost user reviews as: exactly one, by the configured binding, never a fallback.

* `trait` (the default): the Teleport users whose trait `review.trait` holds the Mattermost user id. Mattermost
  ids are immutable, server-generated 26-character ids, so this is the strong binding. Every name the lookup
  returns is confirmed by reading the user (GetUser) and checking its trait, because an Auth without the
  `UserFilter.traits` field ignores the filter and returns every user; exactly one must remain.
* `email` (opt-in): the Teleport user named like the Mattermost email address, only when the account passes the
  guards (a visible address, verified and/or SSO-managed as configured, an allowed domain); a Teleport user whose
  trait names a *different* Mattermost id is refused rather than trusted.

Nothing is cached: a trait removed in Teleport stops working at the next click.
"""

from __future__ import annotations

from sidecar.domain.errors import AccessDenied, ClickRefused, NotFound, SidecarError, TransientError
from sidecar.domain.ports import TraitsLookup
from sidecar.review.ports import ChatUser, UserDirectory
from sidecar.review.settings import Binding, EmailGuards
from sidecar.review.texts import (
    EMAIL_CONFLICT,
    EMAIL_DOMAIN,
    EMAIL_MISSING,
    EMAIL_NOT_SSO,
    EMAIL_UNVERIFIED,
    ERROR,
    MULTIPLE_LINKED,
    NOT_LINKED_EMAIL,
    NOT_LINKED_TRAIT,
    PLUGIN_NOT_ALLOWED,
    UNAVAILABLE,
    Outcome,
    refused,
    shown,
)

__all__ = ["CONFIRM_AT_MOST", "Binder"]

CONFIRM_AT_MOST = 5  # candidate users read back to confirm their trait


class Binder:
    """Resolves the Teleport user of a Mattermost user; raises ClickRefused when there is not exactly one."""

    def __init__(
        self,
        binding: Binding,
        *,
        trait: str,
        email: EmailGuards,
        directory: UserDirectory,
        traits: TraitsLookup,
    ) -> None:
        self._binding = binding
        self._trait = trait
        self._email = email
        self._directory = directory
        self._traits = traits

    async def teleport_user(self, user: ChatUser) -> str:
        """The Teleport username `user` reviews as."""
        try:
            if self._binding is Binding.TRAIT:
                return await self._by_trait(user)
            return await self._by_email(user)
        except ClickRefused:
            raise
        except AccessDenied as exc:
            raise refused(Outcome.PLUGIN_NOT_ALLOWED, PLUGIN_NOT_ALLOWED, detail=str(exc)) from None
        except TransientError as exc:
            raise refused(Outcome.UNAVAILABLE, UNAVAILABLE, detail=str(exc)) from None
        except SidecarError as exc:
            raise refused(Outcome.ERROR, ERROR, detail=str(exc)) from None

    async def _by_trait(self, user: ChatUser) -> str:
        found = sorted(set(await self._directory.find_users_by_trait(self._trait, user.id)))
        # Never trust the server's filter alone (see the module docstring); past a handful of candidates the
        # answer is ambiguous anyway, so it is refused without reading them all.
        names = [name for name in found[:CONFIRM_AT_MOST] if await self._holds_trait(name, user.id)]
        if len(found) > CONFIRM_AT_MOST:
            names = found
        if not names:
            raise refused(Outcome.NOT_LINKED, NOT_LINKED_TRAIT.format(trait=shown(self._trait), uid=shown(user.id)))
        if len(names) > 1:
            text = MULTIPLE_LINKED.format(count=len(names), trait=shown(self._trait), uid=shown(user.id))
            raise refused(Outcome.MULTIPLE_LINKED, text, detail="matching users: " + ", ".join(names[:20]))
        return names[0]

    async def _holds_trait(self, name: str, user_id: str) -> bool:
        try:
            traits = await self._traits.user_traits(name)
        except NotFound:
            return False
        return user_id in traits.get(self._trait, ())

    async def _by_email(self, user: ChatUser) -> str:
        guards = self._email
        address = user.email.strip()
        if "@" not in address:
            raise refused(Outcome.EMAIL_MISSING, EMAIL_MISSING)
        if guards.require_verified and not user.email_verified:
            raise refused(Outcome.EMAIL_UNVERIFIED, EMAIL_UNVERIFIED)
        if guards.require_sso and not user.auth_service:
            raise refused(Outcome.EMAIL_NOT_SSO, EMAIL_NOT_SSO)
        domain = address.rsplit("@", 1)[1].lower()
        if guards.domains and domain not in guards.domains:
            raise refused(Outcome.EMAIL_DOMAIN, EMAIL_DOMAIN, detail=f"domain {domain}")
        try:
            traits = await self._traits.user_traits(address)
        except NotFound:
            raise refused(Outcome.NOT_LINKED, NOT_LINKED_EMAIL) from None
        linked = tuple(traits.get(self._trait, ()))
        if linked and user.id not in linked:
            raise refused(Outcome.EMAIL_CONFLICT, EMAIL_CONFLICT.format(trait=shown(self._trait)))
        return address
