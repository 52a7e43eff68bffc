"""Access monitoring rule conditions: Teleport 18.0.0's predicate language, faithfully (reference §5, §6, §9.1).

    compile_condition(text) -> Condition      parse and type-check once (ConditionParseError, as Teleport rejects)
    Condition.evaluate(env) -> bool           per request: True only for the bool true (ConditionEvalError)
    matches(text, env) -> bool                both at once

The pipeline, one module per step:

    scanner    Go's lexical rules (semicolon insertion, Go string escapes, raw strings, numbers)
    grammar    Go's expression grammar (lark, LALR) → syntax (the go/ast subset, with nesting depths)
    check      the predicate walk and typical's types: identifiers, map keys, calls, methods → tree
    tree       the checked tree and its evaluation against a Scope of a RequestEnv (env)
    functions  the function and method table; values (Set, Dict, time), gostrings, gotime, gomail, and the
               Go-syntax regular expressions of regexp.replace (regexp_syntax, regexp_classes, regexp_engine,
               casefold)

This package imports nothing of the sidecar but `sidecar.domain`.
"""

from sidecar.rules.condition import Condition, compile_condition, matches
from sidecar.rules.env import RequestEnv

__all__ = ["Condition", "RequestEnv", "compile_condition", "matches"]
