"""Diagnostics: what is wrong in a spec, where (file:line:col and a path), and what would be right."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Diagnostic:
    """One finding in a spec file.

    `line` and `col` are 1-based. `path` names the value in the document, list items by their
    `name` when they have one (`components[user-database].backups[daily-full].schedule`), by their
    index otherwise (`storage[2]`); it is empty for problems of the file as a whole.
    """

    file: str
    line: int
    col: int
    path: str
    message: str
    hint: str = ""
    severity: Severity = "error"

    def __str__(self) -> str:
        return self.format(severity=False)

    def format(self, *, severity: bool = True) -> str:
        """`file:line:col: [severity: ]path: message; hint`, as editors and CI problem matchers read it."""
        parts = [f"{self.file}:{self.line}:{self.col}:"]
        if severity:
            parts.append(f"{self.severity}:")
        if self.path:
            parts.append(f"{self.path}:")
        parts.append(f"{self.message}; {self.hint}" if self.hint else self.message)
        return " ".join(parts)

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.file, self.line, self.col, self.message)


class SpecError(Exception):
    """A spec file that cannot be used, with every error found in it (never only the first)."""

    def __init__(self, diagnostics: Iterable[Diagnostic], file: str = "") -> None:
        self.diagnostics = sorted(diagnostics, key=Diagnostic.sort_key)
        self.file = file or (self.diagnostics[0].file if self.diagnostics else "")
        super().__init__(self._summary())

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if not d.is_error]

    def _summary(self) -> str:
        count = len(self.errors)
        head = f"{self.file}: {count} error{'s' if count != 1 else ''} in spec"
        return "\n".join([head, *(d.format() for d in self.diagnostics)])


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`did you mean 'x'?` for the closest choice, or an empty string when nothing is close."""
    match = closest(word, choices)
    return f"did you mean '{match}'?" if match else ""


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice `word` is most likely a typo or a short form of (`sync` → `synchronous`), or None."""
    options = list(choices)
    matches = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if matches:
        return matches[0]
    lowered = word.lower()
    starting = [option for option in options if len(lowered) >= 3 and option.lower().startswith(lowered)]
    return starting[0] if len(starting) == 1 else None


def quoted(values: Iterable[object]) -> str:
    """`'a', 'b', 'c'` for listing allowed values in a message (numbers stay unquoted: `1`)."""
    return ", ".join(f"'{value}'" if isinstance(value, str) else str(value) for value in values)
