"""The `drflow validate` and `drflow schema` commands (mounted on the main app by drflow.cli).

Diagnostics are printed one per line as `file:line:col: severity: path: message; hint`, which
editors and CI problem matchers parse; a dimmed snippet of the source line follows for people.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from drflow.spec.check import mask_secrets
from drflow.spec.diagnostics import Diagnostic
from drflow.spec.schema import json_schema, write_schema
from drflow.spec.validate import validate_paths

_STYLE = {"error": "red", "warning": "yellow"}


def validate(paths: list[Path]) -> None:
    """Check specs; exit 1 when any has an error (warnings alone exit 0)."""
    console = _console()
    report = validate_paths(paths)
    lines: dict[str, list[str]] = {}
    for diagnostic in report.diagnostics:
        console.print(f"[{_STYLE[diagnostic.severity]}]{escape(diagnostic.format())}[/]")
        snippet = _snippet(diagnostic, lines)
        if snippet:
            console.print(f"[dim]{escape(snippet)}[/]")
    errors, warnings = len(report.errors), len(report.warnings)
    summary = (
        f"{len(report.files)} spec file{_s(len(report.files))}: "
        f"{errors} error{_s(errors)}, {warnings} warning{_s(warnings)}"
    )
    console.print(f"[{'red' if errors else 'green'}]{summary}[/]")
    if errors:
        raise typer.Exit(1)


def schema(output: Path | None) -> None:
    """Write the JSON Schema of the spec language to `output`, or to stdout when it is None."""
    if output is None:
        typer.echo(json.dumps(json_schema(), indent=2, ensure_ascii=False))
        return
    write_schema(output)
    _console(stderr=True).print(f"wrote {escape(str(output))}")


def _console(*, stderr: bool = False) -> Console:
    # No wrapping and no highlighting: a line must stay one parseable `file:line:col:` line.
    return Console(stderr=stderr, soft_wrap=True, highlight=False)


def _snippet(diagnostic: Diagnostic, cache: dict[str, list[str]]) -> str:
    """The source line with a caret under the column, or '' when the file cannot be read."""
    if diagnostic.file not in cache:
        try:
            cache[diagnostic.file] = Path(diagnostic.file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            cache[diagnostic.file] = []
    source = cache[diagnostic.file]
    if not 1 <= diagnostic.line <= len(source):
        return ""
    text = mask_secrets(source[diagnostic.line - 1].replace("\t", " "))  # a snippet never shows a secret
    gutter = f"{diagnostic.line:>5} | "
    return f"{gutter}{text}\n{' ' * (len(gutter) + diagnostic.col - 1)}^"


def _s(count: int) -> str:
    return "" if count == 1 else "s"
