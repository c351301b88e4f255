"""What every drflow command shares: the consoles, one-line errors, and loading a spec."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import typer
from rich.console import Console

# Wide when piped (CI logs, less), so ids and paths are never cut. No emoji codes: a name or path holding
# ":fire:" is printed as it is (rich replaces them even without markup; its emoji table is also 8 ms of start-up).
out = Console(width=None if Console().is_terminal else 200, emoji=False)
err = Console(stderr=True, width=None if Console(stderr=True).is_terminal else 200, emoji=False)

DEFAULT_SPECS = Path(os.environ.get("DRFLOW_SPECS_DIR", "plan_specs"))


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print("[red]error:[/red] ", end="", highlight=False)
    err.print(message, markup=False, highlight=False)  # messages hold paths and ids, never markup
    return typer.Exit(code)


F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(command: F) -> F:
    """drflow's own errors already say what is wrong and what to do: print that, not a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            if type(exc).__module__.startswith("drflow.") or isinstance(exc, OSError | LookupError | ValueError):
                raise fail(str(exc) or type(exc).__name__) from None
            raise

    return cast(F, wrapper)


def load_one(
    spec_path: Path, *, incident: bool = False, component: str | None = None, target: str | None = None
) -> Any:
    """The spec, or exit with its errors. With `incident`, a spec broken elsewhere still gives the
    component and storage a restore needs, with a warning naming what was ignored."""
    from drflow.spec.diagnostics import SpecError
    from drflow.spec.incident import load_for_incident
    from drflow.spec.load import load_spec

    if not spec_path.is_file():
        raise fail(
            f"spec file {spec_path} does not exist; "
            "give the path of a spec, e.g. --spec plan_specs/api-marketplace.yaml"
        )
    try:
        if not incident:
            return load_spec(spec_path)
        loaded = load_for_incident(spec_path, component, target)
        if loaded.ignored is not None:
            err.print("[yellow]warning:[/yellow] ", end="", highlight=False)
            err.print(str(loaded.ignored), markup=False, highlight=False)
        return loaded
    except SpecError as exc:
        for diagnostic in exc.diagnostics:
            err.print(str(diagnostic), highlight=False, markup=False)
        raise fail(f"{spec_path} does not validate; fix it first (drflow validate {spec_path})") from None
    except OSError as exc:
        raise fail(f"cannot read spec {spec_path}: {exc.strerror}") from None
