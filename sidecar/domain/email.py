"""Which strings are email addresses: Go's `lib.IsEmail`, ported exactly.

Recipients, suggested reviewers and the Mattermost bot all ask this one function, so a string is an
email everywhere or nowhere.
"""

from __future__ import annotations

import ipaddress

__all__ = ["is_email"]

# RFC 5322 "specials" that may not appear in an atom (Go net/mail isAtext).
_SPECIALS = frozenset('()<>[]:;@\\,"')


def _is_atext(char: str) -> bool:
    # Go's isVchar: printable ASCII or any non-ASCII rune (RFC 6532).
    return char not in _SPECIALS and ("!" <= char <= "~" or ord(char) >= 0x80)


def _is_dot_atom(text: str) -> bool:
    if not text or not all(char == "." or _is_atext(char) for char in text):
        return False
    return not (text.startswith(".") or text.endswith(".") or ".." in text)


def _is_domain_literal(text: str) -> bool:
    if len(text) < 2 or text[0] != "[" or text[-1] != "]":
        return False
    inner = text[1:-1]
    # Go's net.ParseIP: plain IPv4 or IPv6, no zone.
    if "%" in inner:
        return False
    try:
        ipaddress.ip_address(inner)
    except ValueError:
        return False
    return True


def is_email(text: str) -> bool:
    """Go's lib.IsEmail: net/mail parses `text` as an address AND its bare address equals `text`.

    That leaves exactly a dot-atom local part, "@", and a dot-atom domain or an IP domain literal:
    display names, comments, surrounding spaces and quoted local parts all change the parsed address.
    """
    local, at, domain = text.partition("@")
    if not at:
        return False
    if not _is_dot_atom(local):
        return False
    return _is_dot_atom(domain) or _is_domain_literal(domain)
