"""`drflow validate`: every spec under some paths, checked; all errors and warnings, nothing printed."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from drflow.spec.diagnostics import Diagnostic, SpecError
from drflow.spec.load import SPEC_SUFFIXES, LoadedSpec, discover, load_each


@dataclass
class ValidationReport:
    files: list[Path] = field(default_factory=list)
    specs: list[LoadedSpec] = field(default_factory=list)
    errors: list[Diagnostic] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def diagnostics(self) -> list[Diagnostic]:
        """Errors and warnings in file and line order, as a reviewer reads them."""
        return sorted(self.errors + self.warnings, key=Diagnostic.sort_key)


def validate_paths(paths: Iterable[str | os.PathLike[str]]) -> ValidationReport:
    """Load and check every spec under `paths` (files, or directories non-recursively)."""
    named = [Path(path) for path in paths]
    report = ValidationReport(files=discover(named))
    for path in named:
        if path.is_dir() and not discover([path]):
            suffixes = ", ".join(f"*{suffix}" for suffix in SPEC_SUFFIXES)
            message = f"no spec files ({suffixes}) in this directory"
            hint = "name spec files directly, or the directory that holds them (subdirectories are not searched)"
            report.errors.append(Diagnostic(str(path), 1, 1, "", message, hint))
    for result in load_each(report.files):
        if isinstance(result, SpecError):
            report.errors += result.errors
            report.warnings += result.warnings
        else:
            report.specs.append(result)
            report.warnings += result.warnings
    return report
