"""`email.local`: the local part of an address, as Teleport finds it with Go's `net/mail.ParseAddress`.

Go's address parser (RFC 5322 with its own leniencies) is followed rule by rule: an addr-spec is tried first,
then a display name and an angle address, or a group with exactly one address. Only the parts that decide
whether an address parses, and what its local part is, are kept; display names are not decoded.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress

from sidecar.domain.errors import ConditionEvalError

__all__ = ["email_local"]


def email_local(address: str) -> str:
    """The local part of `address` (Teleport's `parse.EmailLocal` for one element)."""
    if address == "":
        raise ConditionEvalError('found empty "email.local" argument')
    try:
        spec = _Parser(address).single_address()
    except ConditionEvalError as exc:
        raise ConditionEvalError(f'failed to parse "email.local" argument "{address}": {exc}') from None
    local, at, _ = spec.partition("@")
    if not at:
        raise ConditionEvalError(f'could not find local part in "email.local" argument "{address}", "{spec}"')
    return local


def _is_vchar(char: str) -> bool:
    return "!" <= char <= "~" or char >= "\x80"


def _is_wsp(char: str) -> bool:
    return char in " \t"


def _is_atext(char: str, dot: bool) -> bool:
    if char == ".":
        return dot
    if char in '()<>[]:;@\\,"':
        return False
    return _is_vchar(char)


def _is_qtext(char: str) -> bool:
    return char not in '\\"' and _is_vchar(char)


def _is_dtext(char: str) -> bool:
    return char not in "[]\\" and _is_vchar(char)


def _is_invalid_byte(char: str) -> bool:
    return "\ud800" <= char <= "\udfff"


class _Parser:
    """Go's `addrParser` over one address; `rest` is what is left to read."""

    def __init__(self, text: str) -> None:
        self.rest = text

    def single_address(self) -> str:
        specs = self.address(handle_group=True)
        if not self.skip_cfws():
            raise ConditionEvalError("mail: misformatted parenthetical comment")
        if self.rest:
            raise ConditionEvalError(f'mail: expected single address, got "{self.rest}"')
        if not specs:
            raise ConditionEvalError("mail: empty group")
        if len(specs) > 1:
            raise ConditionEvalError("mail: group with multiple addresses")
        return specs[0]

    def address(self, *, handle_group: bool) -> list[str]:
        self.skip_space()
        if not self.rest:
            raise ConditionEvalError("mail: no address")
        saved = self.rest
        try:
            spec = self.addr_spec()
        except ConditionEvalError:
            self.rest = saved
        else:
            self.skip_space()
            if self.rest.startswith("("):
                self.display_name_comment()
            return [spec]
        display_name = ""
        if not self.rest.startswith("<"):
            display_name = self.phrase()
        self.skip_space()
        if handle_group and self.consume(":"):
            return self.group_list()
        if not self.consume("<"):
            if all(_is_atext(char, True) for char in display_name):
                raise ConditionEvalError("mail: missing '@' or angle-addr")
            raise ConditionEvalError("mail: no angle-addr")
        spec = self.addr_spec()
        if not self.consume(">"):
            raise ConditionEvalError("mail: unclosed angle-addr")
        return [spec]

    def group_list(self) -> list[str]:
        group: list[str] = []
        self.skip_space()
        if self.consume(";"):
            if not self.skip_cfws():
                raise ConditionEvalError("mail: misformatted parenthetical comment")
            return group
        while True:
            self.skip_space()
            group.extend(self.address(handle_group=False))
            if not self.skip_cfws():
                raise ConditionEvalError("mail: misformatted parenthetical comment")
            if self.consume(";"):
                if not self.skip_cfws():
                    raise ConditionEvalError("mail: misformatted parenthetical comment")
                return group
            if not self.consume(","):
                raise ConditionEvalError("mail: expected comma")

    def addr_spec(self) -> str:
        saved = self.rest
        try:
            return self._addr_spec()
        except ConditionEvalError:
            self.rest = saved
            raise

    def _addr_spec(self) -> str:
        self.skip_space()
        if not self.rest:
            raise ConditionEvalError("mail: no addr-spec")
        if self.rest.startswith('"'):
            local = self.quoted_string()
            if local == "":
                raise ConditionEvalError("mail: empty quoted string in addr-spec")
        else:
            local = self.atom(dot=True, permissive=False)
        if not self.consume("@"):
            raise ConditionEvalError("mail: missing @ in addr-spec")
        self.skip_space()
        if not self.rest:
            raise ConditionEvalError("mail: no domain in addr-spec")
        domain = self.domain_literal() if self.rest.startswith("[") else self.atom(dot=True, permissive=False)
        return f"{local}@{domain}"

    def phrase(self) -> str:
        words: list[str] = []
        failure: ConditionEvalError | None = None
        while True:
            if words and not self.skip_cfws():
                raise ConditionEvalError("mail: misformatted parenthetical comment")
            self.skip_space()
            if not self.rest:
                break
            try:
                if self.rest.startswith('"'):
                    word = self.quoted_string()
                else:
                    word = self.atom(dot=True, permissive=True)
                    _check_encoded_word(word)
            except ConditionEvalError as exc:
                failure = exc
                break
            words.append(word)
        if failure is not None and not words:
            raise ConditionEvalError(f"mail: missing word in phrase: {failure}")
        return " ".join(words)

    def quoted_string(self) -> str:
        """The quoted string at the start (which is `"`), unescaped."""
        out: list[str] = []
        escaped = False
        index = 1
        while True:
            if index >= len(self.rest):
                raise ConditionEvalError("mail: unclosed quoted-string")
            char = self.rest[index]
            if _is_invalid_byte(char):
                raise ConditionEvalError(f'mail: invalid utf-8 in quoted-string: "{self.rest}"')
            if escaped:
                if not _is_vchar(char) and not _is_wsp(char):
                    raise ConditionEvalError(f"mail: bad character in quoted-string: {char!r}")
                out.append(char)
                escaped = False
            elif _is_qtext(char) or _is_wsp(char):
                out.append(char)
            elif char == '"':
                break
            elif char == "\\":
                escaped = True
            else:
                raise ConditionEvalError(f"mail: bad character in quoted-string: {char!r}")
            index += 1
        self.rest = self.rest[index + 1 :]
        return "".join(out)

    def atom(self, *, dot: bool, permissive: bool) -> str:
        index = 0
        while index < len(self.rest):
            char = self.rest[index]
            if _is_invalid_byte(char):
                raise ConditionEvalError(f'mail: invalid utf-8 in address: "{self.rest}"')
            if not _is_atext(char, dot):
                break
            index += 1
        if index == 0:
            raise ConditionEvalError("mail: invalid string")
        atom, self.rest = self.rest[:index], self.rest[index:]
        if not permissive:
            if atom.startswith("."):
                raise ConditionEvalError("mail: leading dot in atom")
            if ".." in atom:
                raise ConditionEvalError("mail: double dot in atom")
            if atom.endswith("."):
                raise ConditionEvalError("mail: trailing dot in atom")
        return atom

    def domain_literal(self) -> str:
        self.consume("[")
        index = 0
        while True:
            if index >= len(self.rest):
                raise ConditionEvalError("mail: unclosed domain-literal")
            char = self.rest[index]
            if char == "]":
                break
            if _is_invalid_byte(char):
                raise ConditionEvalError(f'mail: invalid utf-8 in domain-literal: "{self.rest[index:]}"')
            if not _is_dtext(char):
                raise ConditionEvalError(f"mail: bad character in domain-literal: {char!r}")
            index += 1
        dtext, self.rest = self.rest[:index], self.rest[index + 1 :]
        if not _is_ip(dtext):
            raise ConditionEvalError(f'mail: invalid IP address in domain-literal: "{dtext}"')
        return f"[{dtext}]"

    def display_name_comment(self) -> None:
        self.consume("(")
        comment, closed = self.comment()
        if not closed:
            raise ConditionEvalError("mail: misformatted parenthetical comment")
        for word in comment.replace("\t", " ").split(" "):
            if word:
                _check_encoded_word(word)

    def consume(self, char: str) -> bool:
        if self.rest.startswith(char):
            self.rest = self.rest[1:]
            return True
        return False

    def skip_space(self) -> None:
        self.rest = self.rest.lstrip(" \t")

    def skip_cfws(self) -> bool:
        self.skip_space()
        while self.consume("("):
            _, closed = self.comment()
            if not closed:
                return False
            self.skip_space()
        return True

    def comment(self) -> tuple[str, bool]:
        """After `(`: the comment text and whether its parentheses closed (a backslash escapes one character)."""
        depth = 1
        out: list[str] = []
        rest = self.rest
        index = 0
        while index < len(rest) and depth > 0:
            char = rest[index]
            if char == "\\" and len(rest) - index > 1:
                index += 1
                char = rest[index]
            elif char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
            if depth > 0:
                out.append(char)
            index += 1
        self.rest = rest[index:]
        return "".join(out), depth == 0


def _is_ip(text: str) -> bool:
    """Go's `net.ParseIP` accepts it: dotted IPv4 (no leading zeros) or IPv6, without a zone."""
    if "%" in text:
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


_NATIVE_CHARSETS = ("utf-8", "iso-8859-1", "us-ascii")


def _check_encoded_word(word: str) -> None:
    """Go fails a display name only on a well-formed RFC 2047 word in a charset it cannot convert."""
    if len(word) < 8 or not word.startswith("=?") or not word.endswith("?=") or word.count("?") != 4:
        return
    charset, encoding, text = word[2:-2].split("?")
    if not charset or len(encoding) != 1:
        return
    if not _decodes(encoding, text):
        return
    if charset.lower() not in _NATIVE_CHARSETS:
        raise ConditionEvalError(f'charset not supported: "{charset.lower()}"')


def _decodes(encoding: str, text: str) -> bool:
    if encoding in "Bb":
        try:
            base64.b64decode(text.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            return False
        return True
    if encoding in "Qq":
        index = 0
        while index < len(text):
            char = text[index]
            if char == "=":
                pair = text[index + 1 : index + 3]
                if index + 2 >= len(text) or not all(c in "0123456789abcdefABCDEF" for c in pair):
                    return False
                index += 3
                continue
            if not (" " <= char <= "~" or char in "\n\r\t"):
                return False
            index += 1
        return True
    return False
