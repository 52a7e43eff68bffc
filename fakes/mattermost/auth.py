"""Token lookup in Mattermost's order: cookie, Authorization header, then the query string."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from aiohttp import web

COOKIE_NAME = "MMAUTHTOKEN"
CSRF_COOKIE_NAME = "MMCSRF"


class TokenSource(Enum):
    """Where the token came from (it decides the CSRF and query-string rules)."""

    NONE = "none"
    COOKIE = "cookie"
    HEADER = "header"
    QUERY = "query"


@dataclass(frozen=True)
class FoundToken:
    """A token and its source; `token` is "" when none was sent."""

    token: str
    source: TokenSource


def find_token(request: web.Request) -> FoundToken:
    """`ParseAuthTokenFromRequest`: cookie first, then `Bearer`/`Token` (any case), then `access_token`."""
    cookie = request.cookies.get(COOKIE_NAME, "")
    if cookie:
        return FoundToken(cookie, TokenSource.COOKIE)
    header = request.headers.get("Authorization", "")
    if len(header) > 6 and header[:7].lower() == "bearer ":
        return FoundToken(header[7:], TokenSource.HEADER)
    if len(header) > 5 and header[:6].lower() == "token ":
        return FoundToken(header[6:], TokenSource.HEADER)
    query = request.query.get("access_token", "")
    if query:
        return FoundToken(query, TokenSource.QUERY)
    return FoundToken("", TokenSource.NONE)


def csrf_ok(request: web.Request) -> bool:
    """Cookie sessions on non-GET requests need `X-CSRF-Token` equal to the `MMCSRF` cookie, or the
    legacy `X-Requested-With: XMLHttpRequest` (accepted unless strict CSRF enforcement is on)."""
    if request.method in ("GET", "HEAD"):
        return True
    if request.headers.get("X-Requested-With", "") == "XMLHttpRequest":
        return True
    token = request.headers.get("X-CSRF-Token", "")
    return bool(token) and token == request.cookies.get(CSRF_COOKIE_NAME, "")
