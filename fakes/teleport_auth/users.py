"""The fake cluster's users: the seed's, changed at run time through the admin API (traits, new users, deletions).

ListUsers (`teleport.users.v1`) pages them in name order; the page token is the name of the first user to return
and the next token the name of the next user scanned, "" at the end; a page size of 0 or less, or above 1000,
means 1000 (Teleport's DefaultChunkSize). `UserMatch` is Teleport's `UserFilter.Match`: search keywords against the
name and roles (case-insensitive, all must match), and traits: every filtered trait must share a value with the
user's. An Auth older than the trait filter (the legacy switch) ignores UserFilter fields 2 and 3 and so returns
every user: clients must check the trait again.

A bot's user carries the label `teleport.internal/bot` with the bot's name (its user name without `bot-`).
Deleting a user stands for an SSO user whose temporary user record has expired.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from sidecar.teleport.wire import types_pb2

from .errors import NotFound
from .seed import UserDef

MAX_PAGE_SIZE = 1000
BOT_LABEL = "teleport.internal/bot"


def bot_name(user: UserDef) -> str:
    """The Machine ID bot behind a bot's user ("" for a person)."""
    return user.name.removeprefix("bot-") if user.bot else ""


@dataclass(frozen=True)
class UserMatch:
    """A ListUsers filter."""

    keywords: tuple[str, ...] = ()
    traits: Mapping[str, tuple[str, ...]] | None = None

    @classmethod
    def from_proto(cls, flt: types_pb2.UserFilter, *, legacy: bool) -> UserMatch:
        """The filter of a request; a legacy Auth knows only the keywords (field 1)."""
        traits = None if legacy else {key: tuple(v.Values) for key, v in flt.Traits.Values.items()}
        return cls(tuple(flt.SearchKeywords), traits or None)

    def matches(self, user: UserDef) -> bool:
        """Whether the user passes every part of the filter."""
        fields = [user.name.lower(), *(r.lower() for r in user.roles)]
        if not all(any(word.lower() in f for f in fields) for word in self.keywords):
            return False
        return all(set(wanted) & set(user.traits.get(key, ())) for key, wanted in (self.traits or {}).items())


class UserDirectory:
    """Users by name; copies of the frozen definitions, replaced on every change."""

    def __init__(self, users: Mapping[str, UserDef]) -> None:
        self._users: dict[str, UserDef] = dict(users)
        self._names = sorted(self._users)

    def get(self, name: str) -> UserDef:
        """A user; NotFound (Teleport's text) when there is none."""
        user = self._users.get(name)
        if user is None:
            raise NotFound(f'user "{name}" is not found')
        return user

    def all(self) -> list[UserDef]:
        """Every user, in name order."""
        return [self._users[n] for n in self._names]

    def put(self, user: UserDef) -> None:
        """Create or replace a user."""
        if user.name not in self._users:
            bisect.insort(self._names, user.name)
        self._users[user.name] = user

    def delete(self, name: str) -> None:
        """Remove a user; NotFound when there is none."""
        self.get(name)
        del self._users[name]
        self._names.remove(name)

    def set_traits(self, name: str, traits: Mapping[str, Sequence[str]]) -> None:
        """Replace a user's traits; NotFound for an unknown user."""
        user = self.get(name)
        self._users[name] = replace(user, traits={key: tuple(values) for key, values in traits.items()})

    def page(self, page_size: int, page_token: str, match: UserMatch) -> tuple[list[UserDef], str]:
        """One page of matching users from `page_token` on, and the next token ("" at the end)."""
        size = page_size if 0 < page_size <= MAX_PAGE_SIZE else MAX_PAGE_SIZE
        start = bisect.bisect_left(self._names, page_token) if page_token else 0
        found: list[UserDef] = []
        for index in range(start, len(self._names)):
            if len(found) == size:
                return found, self._names[index]
            user = self._users[self._names[index]]
            if match.matches(user):
                found.append(user)
        return found, ""


def user_to_proto(user: UserDef) -> types_pb2.UserV2:
    """A user as Teleport sends it: kind, version, metadata (the bot label for a bot), roles and traits."""
    out = types_pb2.UserV2(Kind="user", Version="v2")
    out.Metadata.Name, out.Metadata.Namespace = user.name, "default"
    if user.bot:
        out.Metadata.Labels[BOT_LABEL] = bot_name(user)
    out.Spec.Roles.extend(user.roles)
    out.Spec.Traits.SetInParent()
    for key, values in user.traits.items():
        out.Spec.Traits.Values[key].Values.extend(values)
    return out
