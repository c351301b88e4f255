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


PGBENCH_META_COMMANDS = ("set", "sleep")


def script_refusal(script: str) -> str | None:
    """Why a pgbench script cannot be a read-only check, or None: each SQL command (up to a `;`) must be a
    query :func:`refusal` allows; meta-commands only `\\set` and `\\sleep`."""
    sql_lines: list[str] = []
    for line in script.splitlines():
        stripped = line.strip()
        if stripped.startswith("\\"):
            word = stripped[1:].split(maxsplit=1)[0] if len(stripped) > 1 else ""
            if word not in PGBENCH_META_COMMANDS:
                return (
                    f"the script uses the meta-command \\{word}; a read-only run allows only "
                    f"{', '.join(chr(92) + c for c in PGBENCH_META_COMMANDS)}: remove it"
                )
            continue
        sql_lines.append(line)
    # Every ';' ends a command, as pgbench reads it (one inside a literal splits it too: avoid that).
    statements = [part for part in "\n".join(sql_lines).split(";") if part.strip()]
    if not statements:
        return "the script has no SQL command; write at least one select ending with ';'"
    for statement in statements:
        why = refusal(statement)
        if why:
            problem, _, hint = why.partition(": rewrite")
            return f"{problem} (in `{statement.strip()[:60]}`): rewrite{hint}"
    return None
