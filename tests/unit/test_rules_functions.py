"""The functions and methods (sidecar/rules/functions.py) and the Go behaviour behind them: `strings`, `time`,
`net/mail` (email.local) and `regexp` (regexp.replace), where Go and Python differ."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sidecar.domain.errors import ConditionEvalError, ConditionParseError
from sidecar.rules import RequestEnv, matches
from sidecar.rules.gotime import format_time, parse_rfc3339
from sidecar.rules.values import GoTime

ENV = RequestEnv(roles=("dev", "prod"), user="alice", traits={"groups": ("team-dev", "other"), "team": ("x",)})


def outcome(condition: str, env: RequestEnv = ENV) -> bool | str:
    try:
        return matches(condition, env)
    except ConditionParseError as exc:
        return f"parse error: {exc}"
    except ConditionEvalError as exc:
        return f"eval error: {exc}"


def quoted(text: str) -> str:
    """`text` as a condition string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("is_empty(set())", True),
        ('set("a", "a", "b").contains_all(set("b", "a"))', True),
        ("union().isempty()", True),
        ('union(set("a"), set("b"), access_request.spec.roles).contains_all(set("a", "b", "dev"))', True),
        ('contains_any(set("a"), set())', False),
        ('contains_all(set("a"), set())', False),
        ("contains_all(set(), set())", False),
        ('contains_any(set(), set("a"))', False),
        ('access_request.spec.roles.add("x", "y").contains_all(set("x", "y", "dev"))', True),
        ('access_request.spec.roles.add().contains("dev")', True),
        ('access_request.spec.roles.remove("dev", "prod").isempty()', True),
        ('access_request.spec.roles.remove().contains("prod")', True),
        (
            'user.traits.put("team", set("y")).team.contains("y")',
            "parse error: unsupported selector type: *ast.CallExpr",
        ),
        (
            'is_empty(user.traits.put("team", set("y")).remove("team"))',
            "eval error: expected type expression.Set, got value (map[groups:map[other:{} team-dev:{}]]) with type "
            "(expression.Dict)",
        ),
        ('strings.split(set("a,b,,c"), ",").contains_all(set("a", "b", "", "c"))', True),
        ('strings.split(set("abc"), "").contains_all(set("a", "b", "c"))', True),
        ('is_empty(strings.split(set(""), ""))', True),
        ('strings.split(set(""), ",").contains("")', True),
        ('strings.upper(access_request.spec.roles).contains("DEV")', True),
        ('strings.replaceall(access_request.spec.roles, "d", "D").contains("Dev")', True),
        ('strings.replaceall(access_request.spec.user, "", "-") == "-a-l-i-c-e-"', True),
        ('strings.replaceall("é", "\\xa9", "!") == "\\xc3!"', True),  # bytes, as in Go
        (
            "strings.upper(1)",
            "eval error: failed to evaluate argument to strings.upper: expected string or set, got value of type int",
        ),
        (
            'strings.replaceall(true, "a", "b")',
            "eval error: failed to evaluate argument to strings.replaceall: expected string or set, got value of "
            "type bool",
        ),
    ],
)
def test_sets_and_strings(condition: str, expected: bool | str) -> None:
    assert outcome(condition) == expected


@pytest.mark.parametrize(
    ("function", "argument", "expected"),
    [
        # Go maps rune by rune with the simple case mappings; Python's full mappings and final sigma differ.
        ("strings.upper", "ß", "ß"),
        ("strings.upper", "straße", "STRAßE"),
        ("strings.lower", "İ", "i"),
        ("strings.lower", "ΟΔΟΣ", "οδοσ"),
        ("strings.upper", "ǆ", "Ǆ"),
        ("strings.upper", "ᾳ", "ᾼ"),
        ("strings.upper", "ﬃ", "ﬃ"),
        ("strings.lower", "ABC déf", "abc déf"),
        ("strings.upper", "abc déf", "ABC DÉF"),
    ],
)
def test_case_mapping_is_gos(function: str, argument: str, expected: str) -> None:
    assert matches(f"{function}({quoted(argument)}) == {quoted(expected)}", RequestEnv())


def test_case_mapping_turns_invalid_utf8_into_the_replacement_character() -> None:
    assert matches('strings.lower("A\\xff") == "a\\uFFFD"', RequestEnv())
    assert matches('strings.upper("a\\xff") == "A\\uFFFD"', RequestEnv())


# --- time -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-01T00:00:00Z", "2024-01-01 00:00:00 +0000 UTC"),
        ("2024-01-01T00:00:00.123456789Z", "2024-01-01 00:00:00.123456789 +0000 UTC"),
        ("2024-01-01T00:00:00.1234567891Z", "2024-01-01 00:00:00.123456789 +0000 UTC"),  # beyond ns: dropped
        ("2024-01-01T02:30:00+02:30", "2024-01-01 00:00:00 +0000 UTC"),
        ("2024-01-01T00:00:00-01:00", "2024-01-01 01:00:00 +0000 UTC"),
        ("2024-02-29T12:00:00Z", "2024-02-29 12:00:00 +0000 UTC"),
        ("0001-01-01T00:00:00Z", "0001-01-01 00:00:00 +0000 UTC"),
        # Go's general parser, behind its strict RFC 3339 reader, also takes these:
        ("2024-01-01T1:02:03Z", "2024-01-01 01:02:03 +0000 UTC"),
        ("2024-01-01T00:00:00,5Z", "2024-01-01 00:00:00.5 +0000 UTC"),
        ("2024-01-02T00:00:00+24:00", "2024-01-01 00:00:00 +0000 UTC"),
    ],
)
def test_rfc3339_accepts(text: str, expected: str) -> None:
    assert format_time(parse_rfc3339(text)) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2024-13-01T00:00:00Z", 'parsing time "2024-13-01T00:00:00Z": month out of range'),
        ("2023-02-29T00:00:00Z", 'parsing time "2023-02-29T00:00:00Z": day out of range'),
        ("2024-01-01T24:00:00Z", 'parsing time "2024-01-01T24:00:00Z": hour out of range'),
        ("2024-01-01T00:60:00Z", 'parsing time "2024-01-01T00:60:00Z": minute out of range'),
        ("2024-01-01T00:00:60Z", 'parsing time "2024-01-01T00:00:60Z": second out of range'),
        (
            "2024-01-01 00:00:00Z",
            'parsing time "2024-01-01 00:00:00Z" as "2006-01-02T15:04:05Z07:00": cannot parse " 00:00:00Z" as "T"',
        ),
        (
            "2024-01-01T00:00:00z",
            'parsing time "2024-01-01T00:00:00z" as "2006-01-02T15:04:05Z07:00": cannot parse "z" as "Z07:00"',
        ),
        (
            "2024-01-01T00:00:00",
            'parsing time "2024-01-01T00:00:00" as "2006-01-02T15:04:05Z07:00": cannot parse "" as "Z07:00"',
        ),
        ("2024-01-01T00:00:00Zjunk", 'parsing time "2024-01-01T00:00:00Zjunk": extra text: "junk"'),
        (
            "24-01-01T00:00:00Z",
            'parsing time "24-01-01T00:00:00Z" as "2006-01-02T15:04:05Z07:00": cannot parse '
            '"24-01-01T00:00:00Z" as "2006"',
        ),
        ("", 'parsing time "" as "2006-01-02T15:04:05Z07:00": cannot parse "" as "2006"'),
    ],
)
def test_rfc3339_refuses_with_gos_message(text: str, message: str) -> None:
    with pytest.raises(ConditionEvalError) as refused:
        parse_rfc3339(text)
    assert str(refused.value) == message


def test_time_functions() -> None:
    env = RequestEnv(creation_time=datetime(2025, 1, 1, tzinfo=UTC), expiry=datetime(2025, 1, 2, tzinfo=UTC))
    jan1 = 'time.RFC3339("2025-01-01T00:00:00Z")'
    assert not matches(f"access_request.spec.creation_time.after({jan1})", env)
    assert not matches(f"access_request.spec.creation_time.before({jan1})", env)
    assert matches(f"before({jan1}, access_request.spec.expiry)", env)
    assert matches(f"after(access_request.spec.expiry, {jan1})", env)
    assert matches(
        'between(time.RFC3339("2025-01-01T12:00:00Z"), access_request.spec.expiry, access_request.spec.creation_time)',
        env,
    )
    assert parse_rfc3339("0000-12-31T23:59:59Z") < GoTime(0)  # year 0 is before Go's zero time


def test_a_bad_time_text_is_an_evaluation_error() -> None:
    assert outcome('access_request.spec.creation_time.after(time.RFC3339("soon"))') == (
        'eval error: parsing time "soon" as "2006-01-02T15:04:05Z07:00": cannot parse "soon" as "2006"'
    )


# --- email.local ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "local"),
    [
        ("alice@example.com", "alice"),
        ("Alice Smith <alice@example.com>", "alice"),
        ("<alice@example.com>", "alice"),
        ('"Smith, Alice" <alice@example.com>', "alice"),
        ('"alice smith"@example.com', "alice smith"),
        ('"al\\"ice"@example.com', 'al"ice'),
        ("alice@example.com (Alice)", "alice"),
        ("  alice@example.com  ", "alice"),
        ("alice+tag@sub.example.com", "alice+tag"),
        ("alice@[127.0.0.1]", "alice"),
        ("alice@[::1]", "alice"),
        ("=?utf-8?q?Alice?= <alice@example.com>", "alice"),
        ("team: alice@example.com;", "alice"),
        ("jörg@example.com", "jörg"),
    ],
)
def test_email_local(address: str, local: str) -> None:
    assert matches(f"email.local(set({quoted(address)})).contains({quoted(local)})", RequestEnv())


@pytest.mark.parametrize(
    ("address", "error"),
    [
        ("", 'found empty "email.local" argument'),
        ("alice", "mail: missing '@' or angle-addr"),
        ("Alice Smith", "mail: no angle-addr"),
        ("@example.com", "mail: missing word in phrase: mail: invalid string"),
        ("alice@", "mail: missing '@' or angle-addr"),
        (".alice@example.com", "mail: missing '@' or angle-addr"),
        ("alice@example.com, bob@example.com", 'mail: expected single address, got ", bob@example.com"'),
        ("team:;", "mail: empty group"),
        ("team: a@example.com, b@example.com;", "mail: group with multiple addresses"),
        ("alice@[not-an-ip]", "mail: missing '@' or angle-addr"),
        ("=?koi8-r?q?Alice?= <alice@example.com>", 'mail: missing word in phrase: charset not supported: "koi8-r"'),
        ("<alice@example.com", "mail: unclosed angle-addr"),
        ('""@example.com', "mail: missing '@' or angle-addr"),
    ],
)
def test_email_local_refuses(address: str, error: str) -> None:
    result = outcome(f"email.local(set({quoted(address)})).isempty()")
    assert isinstance(result, str)
    assert result.startswith("eval error: ")
    assert error in result


def test_email_local_of_nothing_is_nothing() -> None:
    assert matches("is_empty(email.local(set()))", RequestEnv())
    assert matches(
        'email.local(user.traits.emails).contains_all(set("a", "b"))',
        RequestEnv(traits={"emails": ("a@x.io", "B <b@y.io>")}),
    )


# --- regexp.replace ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inputs", "pattern", "replacement", "expected"),
    [
        (["team-dev", "other"], "^team-(.*)$", "$1", {"dev"}),  # P37: non-matching inputs are dropped
        (["abc"], "b", "", {"ac"}),
        (["b"], "b", "", set()),  # an empty result is dropped too
        (["aaa"], "a*", "X", {"X"}),  # Go skips the empty match right after a match (Python gives XX)
        (["baaac"], "a*", "X", {"XbXcX"}),
        (["ab"], "(a)", "$1x", {"b"}),  # `$1x` names group "1x", which does not exist
        (["ab"], "(a)", "${1}x", {"axb"}),
        (["ab"], "(?P<first>a)", "${first}-", {"a-b"}),
        (["ab"], "(?<first>a)", "$first-", {"a-b"}),  # a name is letters, digits and `_`: it stops at `-`
        (["a.b"], "\\.", "$$", {"a$b"}),
        (["AbC"], "(?i)b", "x", {"AxC"}),
        (["k"], "(?i)\u212a", "x", {"x"}),  # Kelvin sign and k are one case orbit
        (["x1", "x\u0663"], "\\d", "D", {"xD"}),  # \d is ASCII only
        (["a\nb"], "a$", "X", set()),  # $ is the end of the text, not of a line
        (["a\nb"], "(?m)a$", "X", {"X\nb"}),
        (["a\nb"], "a.b", "X", set()),
        (["a\nb"], "(?s)a.b", "X", {"X"}),
        (["aaa"], "a+?", "X", {"XXX"}),
        (["aaa"], "(?U)a+", "X", {"XXX"}),
        (["abab"], "(ab){2}", "X", {"X"}),
        (["ab"], "a{,2}b", "X", set()),  # `{,2}` is not a repeat but literal text: no match, dropped
        (["a{,2}b"], "a{,2}b", "X", {"X"}),
        (["hello world"], "\\bworld\\b", "there", {"hello there"}),
        (["x\u0001"], "\\01", "one", {"xone"}),  # octal; a lone \1 would be a backreference, which Go refuses
        (["a-b"], "[[:punct:]]", "_", {"a_b"}),
        (["ab"], "\\Qa\\E*b", "X", {"X"}),
        (["aé"], "\\pL+", "L", {"L"}),
        (["a1"], "\\PL", "N", {"aN"}),
        (["\u00e9"], "\\x{e9}", "e", {"e"}),
    ],
)
def test_regexp_replace_follows_go(inputs: list[str], pattern: str, replacement: str, expected: set[str]) -> None:
    items = ", ".join(quoted(item) for item in inputs)
    condition = f"regexp.replace(set({items}), {quoted(pattern)}, {quoted(replacement)})"
    if expected:
        wanted = ", ".join(quoted(item) for item in sorted(expected))
        full = f"{condition}.contains_all(set({wanted})) && is_empty({condition}.remove({wanted}))"
    else:
        full = f"is_empty({condition})"
    assert matches(full, RequestEnv()), full


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("(", "error parsing regexp: missing closing ): `(`"),
        (")", "error parsing regexp: unexpected ): `)`"),
        ("[a", "error parsing regexp: missing closing ]: `[a`"),
        ("[z-a]", "error parsing regexp: invalid character class range: `z-a`"),
        ("a**", "error parsing regexp: invalid nested repetition operator: `**`"),
        ("*a", "error parsing regexp: missing argument to repetition operator: `*`"),
        ("a{1001}", "error parsing regexp: invalid repeat count: `{1001}`"),
        ("(a{100}){100}", "error parsing regexp: invalid repeat count: `{100}`"),
        ("(?=a)", "error parsing regexp: invalid or unsupported Perl syntax: `(?=`"),
        ("(?P<na-me>a)", "error parsing regexp: invalid named capture: `(?P<na-me>`"),
        ("\\8", "error parsing regexp: invalid escape sequence: `\\8`"),
        ("\\C", "error parsing regexp: invalid escape sequence: `\\C`"),
        ("a\\", "error parsing regexp: trailing backslash at end of expression: ``"),
        ("[[:foo:]]", "error parsing regexp: invalid character class range: `[:foo:]`"),
        ("\\p{Nope1}", "error parsing regexp: invalid character class range: `\\p{Nope1}`"),
        ("\\1", "error parsing regexp: invalid escape sequence: `\\1`"),  # a backreference
    ],
)
def test_a_bad_pattern_is_an_evaluation_error_with_gos_message(pattern: str, message: str) -> None:
    assert outcome(f'regexp.replace(set("a"), {quoted(pattern)}, "")') == f"eval error: {message}"


def test_regexp_matching_takes_linear_time() -> None:
    # A classic catastrophic pattern for backtracking engines; Go (and we) answer at once.
    text = "a" * 2000 + "!"
    assert matches(f'is_empty(regexp.replace(set("{text}"), "^(a+)+$", ""))', RequestEnv())


def test_regexp_work_is_bounded() -> None:
    text = "a" * 3000
    result = outcome(f'regexp.replace(set("{text}"), "(a{{0,1000}}){{0,1}}b", "").isempty()')
    assert result == "eval error: regexp.replace: the pattern needs too much work on this input"
