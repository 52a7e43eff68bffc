"""Go's lexical and syntax rules for conditions (sidecar/rules/scanner.py, grammar.py).

Semicolon insertion, comments, string escapes, raw strings, number literals, keywords and illegal characters,
each with Go's outcome and, for errors, Go's `line:column: message`.
"""

from __future__ import annotations

import pytest

from sidecar.domain.errors import ConditionParseError
from sidecar.rules import RequestEnv, compile_condition, matches


def outcome(condition: str) -> bool | str:
    """True/False as evaluated against an empty request, or the parse error's message."""
    try:
        return matches(condition, RequestEnv())
    except ConditionParseError as exc:
        return f"parse error: {exc}"


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        # A line break ends the expression after an operand: && and || may end a line, never start one.
        ("true\n", True),
        ("\n\n   true   \n\n", True),
        ("true &&\ntrue", True),
        ("false ||\n\n   true", True),
        ("true\n&& true", "parse error: 2:1: expected 'EOF', found '&&'"),
        ("false\n|| true", "parse error: 2:1: expected 'EOF', found '||'"),
        ("(true\n)", "parse error: 1:6: expected ')', found newline"),
        ('set("a",\n"b",\n).contains("b")', True),
        ('set("a",\n"b"\n).contains("b")', "parse error: 2:4: missing ',' before newline in argument list"),
        ('set("a" "b")', "parse error: 1:9: missing ',' in argument list"),
        ('user.traits["a"\n]', "parse error: 1:16: expected ']', found newline"),
        ("true !", "parse error: 1:6: expected 'EOF', found '!'"),
        ("true;", "parse error: 1:5: expected 'EOF', found ';'"),
        ("true and true", "parse error: 1:6: expected 'EOF', found and"),
        # Comments: a line comment, or a block comment holding a line break, counts as a line break.
        ("true // why", True),
        ("// why\ntrue", True),
        ("true /* why */ && true", True),
        ("true /* why\n */ && true", "parse error: 2:5: expected 'EOF', found '&&'"),
        ("true /* why", "parse error: 1:6: comment not terminated"),
        ("// only a comment", "parse error: 1:18: expected operand, found 'EOF'"),
        # Blank conditions.
        ("", "parse error: empty expression"),
        ("   ", "parse error: 1:4: expected operand, found 'EOF'"),
        ("\n", "parse error: 2:1: expected operand, found 'EOF'"),
        # Illegal characters; a byte order mark is allowed first only.
        ("\ufefftrue", True),
        ("true\ufeff", "parse error: 1:5: illegal byte order mark"),
        ("true\x00", "parse error: 1:5: illegal character NUL"),
        ("true @", "parse error: 1:6: illegal character U+0040 '@'"),
        ("true\u00a0", "parse error: 1:5: illegal character U+00A0 '\u00a0'"),
        ("true \ud800", "parse error: 1:6: illegal UTF-8 encoding"),
        # Columns count UTF-8 bytes, as Go's do.
        ('"é" == "é" &&', "parse error: 1:16: expected operand, found 'EOF'"),
        # Keywords are not identifiers.
        ("access_request.spec.type", "parse error: 1:21: expected selector or type assertion, found 'type'"),
        ("func() {}", "parse error: 1:1: expected operand, found 'func'"),
        ("ünknown", 'parse error: unknown identifier: "ünknown"'),
    ],
)
def test_lexical_and_syntax_rules(condition: str, expected: bool | str) -> None:
    assert outcome(condition) == expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ('"a\tb" == "a\\tb"', True),
        ('"\\a\\b\\f\\n\\r\\t\\v\\\\\\"" == "\\x07\\x08\\x0c\\x0a\\x0d\\x09\\x0b\\x5c\\x22"', True),
        ('"\\101\\x41\\u0041\\U00000041" == "AAAA"', True),
        ('"\\U0001F600" == "😀"', True),
        # Octal and \x escapes are bytes: the UTF-8 bytes of a character equal the character.
        ('"\\xf0\\x9f\\x98\\x80" == "😀"', True),
        ('"\\xc3\\xa9" == "\\u00e9"', True),
        ('"\\xff" == "\\377"', True),
        ('"\\xff" == "\\u00ff"', False),
        # Raw strings: no escapes, line breaks kept, carriage returns dropped.
        ('`a\\nb` == "a\\\\nb"', True),
        ('`a"b` == "a\\"b"', True),
        ('`a\r\nb` == "a\\nb"', True),
        ('"\\q"', "parse error: 1:2: unknown escape sequence"),
        ('"\\\'"', "parse error: 1:2: unknown escape sequence"),
        ('"\\400"', "parse error: 1:2: escape sequence is invalid Unicode code point"),
        ('"\\uD800"', "parse error: 1:2: escape sequence is invalid Unicode code point"),
        ('"\\x4"', "parse error: 1:5: illegal character U+0022 '\"' in escape sequence"),
        ('"abc', "parse error: 1:1: string literal not terminated"),
        ('"ab\nc"', "parse error: 1:1: string literal not terminated"),
        ("`abc", "parse error: 1:1: raw string literal not terminated"),
        # Character literals parse in Go, but the predicate library refuses them.
        ("'a' == 'a'", "parse error: unsupported function argument type: 'CHAR'"),
        ("'\\''", "parse error: unsupported function argument type: 'CHAR'"),
        ("'ab'", "parse error: 1:1: illegal rune literal"),
        ("''", "parse error: 1:1: illegal rune literal"),
        ("'a", "parse error: 1:1: rune literal not terminated"),
    ],
)
def test_string_and_character_literals(condition: str, expected: bool | str) -> None:
    assert outcome(condition) == expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("017 == 17", True),  # strconv.Atoi reads the text as decimal
        ("0 == 00", True),
        ("9223372036854775807 == 9223372036854775807", True),
        (
            "9223372036854775808 == 1",
            "parse error: failed to parse argument: 9223372036854775808, error: strconv.Atoi: parsing "
            '"9223372036854775808": value out of range',
        ),
        (
            "0x10 == 16",
            'parse error: failed to parse argument: 0x10, error: strconv.Atoi: parsing "0x10": invalid syntax',
        ),
        (
            "1_000 == 1000",
            'parse error: failed to parse argument: 1_000, error: strconv.Atoi: parsing "1_000": invalid syntax',
        ),
        ("08 == 8", "parse error: 1:2: invalid digit '8' in octal literal"),
        ("0b12", "parse error: 1:4: invalid digit '2' in binary literal"),
        ("1__0", "parse error: 1:1: '_' must separate successive digits"),
        ("0x", "parse error: 1:1: hexadecimal literal has no digits"),
        ("1e", "parse error: 1:1: exponent has no digits"),
        ("0x1.0", "parse error: 1:1: hexadecimal mantissa requires a 'p' exponent"),
        ("0b1.0", "parse error: 1:4: invalid radix point in binary literal"),
        ("1i", "parse error: unsupported function argument type: 'IMAG'"),
        # Floats parse, but only `any` parameters take them.
        ("1.5", False),
        ("ifelse(true, true, 0x1p-2)", True),
        ("ifelse(true, true, 1_0.5e-3)", True),
        ("ifelse(true, true, .5)", True),
        ("ifelse(true, true, 1.)", True),
        (
            "ifelse(true, true, 1e400)",
            'parse error: failed to parse argument: 1e400, error: strconv.ParseFloat: parsing "1e400": '
            "value out of range",
        ),
        ("1 == 1.0", "parse error: expected type int, got value (1) with type (float64)"),
        ("1.5 == 1.5", "parse error: operator (==) not supported for type: float64"),
    ],
)
def test_number_literals(condition: str, expected: bool | str) -> None:
    assert outcome(condition) == expected


def test_a_trailing_comma_and_a_final_ellipsis_are_allowed_in_calls_and_index() -> None:
    env = RequestEnv(traits={"team": ("x",)})
    assert compile_condition('contains_any(set("a"), set("a"),)').evaluate(env) is True
    assert compile_condition('set("a"...).contains("a")').evaluate(env) is True
    assert compile_condition('user.traits["team",].contains("x")').evaluate(env) is True
    with pytest.raises(ConditionParseError):
        compile_condition('user.traits["team", "x"]')
