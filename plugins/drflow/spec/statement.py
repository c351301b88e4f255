"""What a check's SQL may be, judged from its text alone (no database, no psycopg import).

Used at run time by :mod:`drflow.engines.postgres.checks` and by ``drflow validate``.
"""

from __future__ import annotations

import re

ALLOWED_FIRST_WORDS = ("select", "with", "values", "table", "show")
_LEADING_NOISE = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/|\()*", re.DOTALL)
_FIRST_WORD = re.compile(r"[A-Za-z_]+")


def refusal(query: str) -> str | None:
    """Why ``query`` cannot be a check (by its first word), or None when it may be tried."""
    rest = query[_LEADING_NOISE.match(query).end() :]  # type: ignore[union-attr]
    word = _FIRST_WORD.match(rest)
    first = word.group(0).lower() if word else rest[:10]
    if first in ALLOWED_FIRST_WORDS:
        return None
    what = f"starts with {first!r}" if first else "is empty"
    return (
        f"the check {what}; a check must be one query starting with {', '.join(ALLOWED_FIRST_WORDS)} "
        "(no ';'-separated statements, no commit, set, copy, do or call): rewrite it as a single select"
    )
