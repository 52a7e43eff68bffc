"""The condition check of rule validation: Teleport's access monitoring rule language, parsed by `sidecar.rules`.

Teleport validates a rule's condition with the same parser its plugins evaluate it with, so the fake uses the
project's one implementation of that language rather than a second copy (see `[tool.importlinter]`).
"""

from __future__ import annotations

from sidecar.domain.errors import ConditionParseError
from sidecar.rules import compile_condition


def condition_error(condition: str) -> str | None:
    """The parser's message when `condition` does not parse (as Teleport reports it), else None."""
    try:
        compile_condition(condition)
    except ConditionParseError as exc:
        return str(exc)
    return None
