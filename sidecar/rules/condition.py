"""The public face of the language: compile a condition once, evaluate it per request.

A condition is written by a cluster admin, but a bad one must never take the sidecar down, so these are the
only two places that turn an unexpected Python exception (a bug of ours, or a resource limit) into the
language's own errors: ConditionParseError when compiling, ConditionEvalError when evaluating.
"""

from __future__ import annotations

from sidecar.domain.errors import ConditionError, ConditionEvalError, ConditionParseError
from sidecar.rules.check import check
from sidecar.rules.env import RequestEnv, Scope
from sidecar.rules.tree import Expr

__all__ = ["MAX_CONDITION_LENGTH", "Condition", "compile_condition", "matches"]

# Far above any real rule (Teleport's own backends refuse items of a few hundred KiB), and still quick to refuse.
MAX_CONDITION_LENGTH = 1 << 20


class Condition:
    """A compiled, type-checked condition."""

    __slots__ = ("_tree", "text")

    def __init__(self, text: str, tree: Expr) -> None:
        self.text = text
        self._tree = tree

    def evaluate(self, env: RequestEnv) -> bool:
        """True only if the condition evaluates to the bool true (any other value is no match, as in Teleport).

        Raises ConditionEvalError when evaluation fails for this request (e.g. `time.RFC3339` of bad text).
        """
        try:
            result = self._tree.evaluate(Scope(env))
        except ConditionError:
            raise
        except RecursionError:
            raise ConditionEvalError("condition nested too deeply to evaluate") from None
        except Exception as exc:  # a bad rule must cost only this rule, never the sidecar
            raise ConditionEvalError(f"internal error evaluating the condition: {type(exc).__name__}: {exc}") from exc
        return result is True

    def __repr__(self) -> str:
        return f"Condition({self.text!r})"


def compile_condition(text: str) -> Condition:
    """Parse and type-check `text` as Teleport 18.0.0 does; raises ConditionParseError with Teleport's message."""
    if len(text) > MAX_CONDITION_LENGTH:
        raise ConditionParseError(f"condition too long ({len(text)} characters, at most {MAX_CONDITION_LENGTH})")
    # The parser (lark and the grammar tables, some 12 MB) is loaded by the first rule, not by every sidecar.
    from sidecar.rules.grammar import parse_syntax

    try:
        tree = check(parse_syntax(text))
    except ConditionError:
        raise
    except RecursionError:
        raise ConditionParseError("expression nested too deeply") from None
    except Exception as exc:  # see the module docstring
        raise ConditionParseError(f"internal error parsing the condition: {type(exc).__name__}: {exc}") from exc
    return Condition(text, tree)


def matches(text: str, env: RequestEnv) -> bool:
    """Compile `text` and evaluate it against `env` (raises ConditionParseError or ConditionEvalError)."""
    return compile_condition(text).evaluate(env)
