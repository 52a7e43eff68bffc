"""Go's scanner (`go/scanner`) for one expression: tokens, literal checks, and automatic semicolons.

Teleport hands the condition to Go's `parser.ParseExpr`, so the lexical rules are Go's: a semicolon is inserted
at a line break (or a comment that holds one, or the end) after an identifier, a literal, `)`, `]`, `}`, `++`,
`--` or one of four keywords, which is why `&&` may end a line but never start one. String literals use Go's
escapes (`\\xff` and octal escapes make bytes, `\\u`/`\\U` make UTF-8), and raw strings drop carriage returns.

Tokens are lark `Token`s whose type is Go's token name; `NLSEMI` is an automatic semicolon, `SEMICOLON` a
written one. A scan error raises ConditionParseError with Go's `line:column: message`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from lark import Token

from sidecar.domain.errors import ConditionParseError

__all__ = ["GoToken", "position", "scan"]

KEYWORDS = frozenset(
    (
        "break", "case", "chan", "const", "continue", "default", "defer", "else", "fallthrough", "for", "func", "go",
        "goto", "if", "import", "interface", "map", "package", "range", "return", "select", "struct", "switch",
        "type", "var",
    )
)  # fmt: skip
_SEMI_AFTER_KEYWORDS = frozenset(("break", "continue", "fallthrough", "return"))
_SEMI_AFTER = frozenset(("IDENT", "INT", "FLOAT", "IMAG", "CHAR", "STRING", "INC", "DEC", "RPAREN", "RBRACK", "RBRACE"))

# Go's operators and punctuation, longest first within each starting character.
_OPERATORS = {
    "<<=": "OTHER",
    ">>=": "OTHER",
    "&^=": "OTHER",
    "...": "ELLIPSIS",
    "&&": "LAND",
    "||": "LOR",
    "==": "EQL",
    "!=": "NEQ",
    "<=": "LEQ",
    ">=": "GEQ",
    "<<": "SHL",
    ">>": "SHR",
    "&^": "AND_NOT",
    "<-": "ARROW",
    "++": "INC",
    "--": "DEC",
    ":=": "OTHER",
    "+=": "OTHER",
    "-=": "OTHER",
    "*=": "OTHER",
    "/=": "OTHER",
    "%=": "OTHER",
    "&=": "OTHER",
    "|=": "OTHER",
    "^=": "OTHER",
    "+": "ADD",
    "-": "SUB",
    "*": "MUL",
    "/": "QUO",
    "%": "REM",
    "&": "AND",
    "|": "OR",
    "^": "XOR",
    "<": "LSS",
    ">": "GTR",
    "=": "OTHER",
    "!": "NOT",
    "~": "TILDE",
    "(": "LPAREN",
    ")": "RPAREN",
    "[": "LBRACK",
    "]": "RBRACK",
    "{": "LBRACE",
    "}": "RBRACE",
    ",": "COMMA",
    ";": "SEMICOLON",
    ".": "PERIOD",
    ":": "COLON",
}
_OPERATOR_RE = re.compile("|".join(re.escape(op) for op in sorted(_OPERATORS, key=len, reverse=True)))
_ASCII_WORD_RE = re.compile(r"[A-Za-z0-9_]*")
_BLANK_RE = re.compile(r"[ \t\r]*")
# NUL, a byte order mark (allowed only first), or a lone surrogate (a str that is not valid UTF-8).
_ILLEGAL_RE = re.compile("[\x00\ufeff\ud800-\udfff]")

_SIMPLE_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92}


class GoToken(Token):
    """A token with the decoded value of a string literal (`decoded`; for other tokens, the text)."""

    __slots__ = ("decoded",)
    decoded: str


def position(text: str, index: int) -> str:
    """Go's `line:column` for a character index (the column counts UTF-8 bytes, from 1)."""
    line = text.count("\n", 0, index) + 1
    line_start = text.rfind("\n", 0, index) + 1
    column = len(text[line_start:index].encode("utf-8", "surrogatepass")) + 1
    return f"{line}:{column}"


def _error(text: str, index: int, message: str) -> ConditionParseError:
    return ConditionParseError(f"{position(text, index)}: {message}")


def _token(kind: str, value: str, start: int, decoded: str | None = None) -> GoToken:
    token = GoToken(kind, value, start_pos=start)
    token.decoded = value if decoded is None else decoded
    return token


def _char_name(char: str) -> str:
    """Go's `%#U`: `U+0040 '@'`."""
    return f"U+{ord(char):04X} '{char}'"


def scan(text: str) -> Iterator[GoToken]:
    """The tokens of `text`, with automatic semicolons; raises ConditionParseError at the first scan error."""
    scanner = _Scanner(text)
    return scanner.tokens()


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        match = _ILLEGAL_RE.search(text, 1 if text.startswith("\ufeff") else 0)
        self.first_illegal = match.start() if match else len(text) + 1

    def check_passed(self, end: int) -> None:
        """Raise Go's error for an illegal character once the scan has gone past it."""
        if end > self.first_illegal:
            index = self.first_illegal
            char = self.text[index]
            if char == "\x00":
                message = "illegal character NUL"
            elif char == "\ufeff":
                message = "illegal byte order mark"
            else:
                message = "illegal UTF-8 encoding"
            raise _error(self.text, index, message)

    def tokens(self) -> Iterator[GoToken]:
        text = self.text
        pos = 1 if text.startswith("\ufeff") else 0
        insert_semi = False
        while True:
            pos = _BLANK_RE.match(text, pos).end()  # type: ignore[union-attr]
            if pos < len(text) and text[pos] == "\n" and not insert_semi:
                pos += 1
                continue
            self.check_passed(pos)
            if pos >= len(text):
                if insert_semi:
                    yield _token("NLSEMI", "\n", pos)
                return
            char = text[pos]
            if char == "\n":
                yield _token("NLSEMI", "\n", pos)
                insert_semi = False
                pos += 1
                continue
            if text.startswith("//", pos) or text.startswith("/*", pos):
                end, has_newline = self.comment(pos)
                self.check_passed(end)
                if insert_semi and has_newline:
                    yield _token("NLSEMI", "\n", pos)
                    insert_semi = False
                pos = end
                continue
            token, pos = self.next_token(pos)
            self.check_passed(pos)
            yield token
            kind = token.type
            insert_semi = kind in _SEMI_AFTER or (kind == "KEYWORD" and token.value in _SEMI_AFTER_KEYWORDS)

    def comment(self, start: int) -> tuple[int, bool]:
        """The end of the comment at `start`, and whether it counts as a line break."""
        text = self.text
        if text.startswith("//", start):
            newline = text.find("\n", start)
            return (len(text) if newline < 0 else newline), True
        close = text.find("*/", start + 2)
        if close < 0:
            self.check_passed(len(text))
            raise _error(text, start, "comment not terminated")
        return close + 2, "\n" in text[start:close]

    def next_token(self, pos: int) -> tuple[GoToken, int]:
        text = self.text
        char = text[pos]
        if (char.isascii() and (char.isalpha() or char == "_")) or (not char.isascii() and char.isalpha()):
            end = self.identifier_end(pos)
            word = text[pos:end]
            return _token("KEYWORD" if word in KEYWORDS else "IDENT", word, pos), end
        if "0" <= char <= "9" or (char == "." and pos + 1 < len(text) and "0" <= text[pos + 1] <= "9"):
            return self.number(pos)
        if char == '"':
            return self.string(pos)
        if char == "`":
            return self.raw_string(pos)
        if char == "'":
            return self.rune(pos)
        match = _OPERATOR_RE.match(text, pos)
        if match is None:
            self.check_passed(pos + 1)
            raise _error(text, pos, f"illegal character {_char_name(char)}")
        return _token(_OPERATORS[match.group()], match.group(), pos), match.end()

    def identifier_end(self, pos: int) -> int:
        text = self.text
        while True:
            pos = _ASCII_WORD_RE.match(text, pos).end()  # type: ignore[union-attr]
            if pos < len(text) and not text[pos].isascii() and (text[pos].isalpha() or text[pos].isdecimal()):
                pos += 1
                continue
            return pos

    # -- numbers

    def number(self, start: int) -> tuple[GoToken, int]:
        """Go's `scanNumber`: the literal and its kind (INT, FLOAT or IMAG), with Go's checks."""
        text = self.text
        pos = start
        base, prefix, kind = 10, "", "INT"
        digit_seen = False
        invalid_at = -1

        def digits(pos: int, base: int) -> tuple[int, bool, int]:
            """Consume digits and `_`; returns the end, whether a digit was seen, and the first invalid digit."""
            seen, invalid = False, -1
            allowed = "0123456789abcdefABCDEF" if base == 16 else "0123456789"
            while pos < len(text) and (text[pos] in allowed or text[pos] == "_"):
                if text[pos] != "_":
                    seen = True
                    if base < 10 and int(text[pos]) >= base and invalid < 0:
                        invalid = pos
                pos += 1
            return pos, seen, invalid

        if text[pos] != ".":
            if text[pos] == "0":
                pos += 1
                marker = text[pos].lower() if pos < len(text) else ""
                if marker in ("x", "o", "b"):
                    base, prefix = {"x": 16, "o": 8, "b": 2}[marker], marker
                    pos += 1
                else:
                    base, prefix, digit_seen = 8, "0", True
            pos, seen, invalid_at = digits(pos, base)
            digit_seen = digit_seen or seen
        if pos < len(text) and text[pos] == ".":
            kind = "FLOAT"
            if prefix in ("o", "b"):
                raise _error(text, pos, f"invalid radix point in {_literal_name(prefix)}")
            pos += 1
            pos, seen, _ = digits(pos, base)
            digit_seen = digit_seen or seen
        if not digit_seen:
            raise _error(text, start, f"{_literal_name(prefix)} has no digits")
        exponent = text[pos].lower() if pos < len(text) else ""
        if exponent in ("e", "p"):
            if exponent == "e" and prefix not in ("", "0"):
                raise _error(text, pos, f"'{text[pos]}' exponent requires decimal mantissa")
            if exponent == "p" and prefix != "x":
                raise _error(text, pos, f"'{text[pos]}' exponent requires hexadecimal mantissa")
            pos += 1
            kind = "FLOAT"
            if pos < len(text) and text[pos] in "+-":
                pos += 1
            pos, seen, _ = digits(pos, 10)
            if not seen:
                raise _error(text, start, "exponent has no digits")
        elif prefix == "x" and kind == "FLOAT":
            raise _error(text, start, "hexadecimal mantissa requires a 'p' exponent")
        if pos < len(text) and text[pos] == "i":
            kind = "IMAG"
            pos += 1
        literal = text[start:pos]
        if kind == "INT" and invalid_at >= 0:
            raise _error(text, invalid_at, f"invalid digit '{text[invalid_at]}' in {_literal_name(prefix)}")
        if "_" in literal and _bad_separator(literal):
            raise _error(text, start, "'_' must separate successive digits")
        return _token(kind, literal, start), pos

    # -- strings and runes

    def string(self, start: int) -> tuple[GoToken, int]:
        text = self.text
        out = bytearray()
        pos = start + 1
        while True:
            if pos >= len(text) or text[pos] == "\n":
                raise _error(text, start, "string literal not terminated")
            char = text[pos]
            if char == '"':
                pos += 1
                break
            if char == "\\":
                pos = self.escape(pos, '"', out)
                continue
            out += char.encode("utf-8", "surrogatepass")
            pos += 1
        decoded = out.decode("utf-8", "surrogateescape")
        return _token("STRING", text[start:pos], start, decoded), pos

    def raw_string(self, start: int) -> tuple[GoToken, int]:
        text = self.text
        close = text.find("`", start + 1)
        if close < 0:
            self.check_passed(len(text))
            raise _error(text, start, "raw string literal not terminated")
        raw = text[start : close + 1]
        return _token("STRING", raw, start, raw[1:-1].replace("\r", "")), close + 1

    def rune(self, start: int) -> tuple[GoToken, int]:
        text = self.text
        pos = start + 1
        count = 0
        while True:
            if pos >= len(text) or text[pos] == "\n":
                raise _error(text, start, "rune literal not terminated")
            char = text[pos]
            if char == "'":
                pos += 1
                break
            count += 1
            if char == "\\":
                pos = self.escape(pos, "'", bytearray())
            else:
                pos += 1
        if count != 1:
            raise _error(text, start, "illegal rune literal")
        return _token("CHAR", text[start:pos], start), pos

    def escape(self, backslash: int, quote: str, out: bytearray) -> int:
        """Go's `scanEscape` plus its value (appended to `out`); returns the position after the escape."""
        text = self.text
        pos = backslash + 1
        char = text[pos] if pos < len(text) else ""
        if char in _SIMPLE_ESCAPES or (char and char == quote):
            out.append(_SIMPLE_ESCAPES.get(char, ord(char)))
            return pos + 1
        if char and char in "01234567":
            count, base, limit = 3, 8, 255
        elif char in ("x", "u", "U") and char:
            count, base, limit = {"x": 2, "u": 4, "U": 8}[char], 16, (255 if char == "x" else 0x10FFFF)
            pos += 1
        else:
            if not char or char == "\n":
                raise _error(text, backslash, "escape sequence not terminated")
            raise _error(text, backslash, "unknown escape sequence")
        value = 0
        for _ in range(count):
            digit = text[pos] if pos < len(text) else ""
            digit_value = int(digit, 16) if digit and digit in "0123456789abcdefABCDEF" else 99
            if digit_value >= base:
                if not digit or digit == "\n":
                    raise _error(text, pos, "escape sequence not terminated")
                raise _error(text, pos, f"illegal character {_char_name(digit)} in escape sequence")
            value = value * base + digit_value
            pos += 1
        if value > limit or 0xD800 <= value < 0xE000:
            raise _error(text, backslash, "escape sequence is invalid Unicode code point")
        if char in ("u", "U"):
            out += chr(value).encode("utf-8")
        else:
            out.append(value)  # octal and \x escapes are single bytes, even above 0x7F
        return pos


def _literal_name(prefix: str) -> str:
    return {"x": "hexadecimal literal", "o": "octal literal", "0": "octal literal", "b": "binary literal"}.get(
        prefix, "decimal literal"
    )


def _bad_separator(literal: str) -> bool:
    """Go's `invalidSep`: every `_` must sit between digits, or between a base prefix and a digit."""
    hex_digits = "0123456789abcdefABCDEF"
    previous = "."  # '0' for a digit, '_' for a separator, '.' for anything else
    index = 0
    is_hex = False
    if len(literal) >= 2 and literal[0] == "0" and literal[1].lower() in "xob":
        is_hex = literal[1].lower() == "x"
        previous, index = "0", 2
    for char in literal[index:]:
        if char == "_":
            if previous != "0":
                return True
            previous = "_"
        elif "0" <= char <= "9" or (is_hex and char in hex_digits):
            previous = "0"
        else:
            if previous == "_":
                return True
            previous = "."
    return previous == "_"
