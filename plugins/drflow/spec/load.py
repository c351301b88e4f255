"""Load spec files: YAML with marks → model → checks, every error of a file reported at once.

This runs on Airflow's DAG-parse hot path: no network, no database, nothing heavier than
libyaml and pydantic.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from pydantic import ValidationError

from drflow.spec.check import check_feasibility, check_references, check_secrets
from drflow.spec.check_sql import check_sql_statements
from drflow.spec.diagnostics import Diagnostic, SpecError
from drflow.spec.model import Spec
from drflow.spec.slots import SlotClaim, check_slots, conflicts, cross_spec_diagnostics, spec_claims
from drflow.spec.source import Source, parse_source
from drflow.spec.translate import validation_diagnostics

SPEC_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class LoadedSpec:
    path: Path
    spec: Spec
    warnings: list[Diagnostic] = field(default_factory=list)
    ignored: Diagnostic | None = None
    """Set when only parts of a broken spec were loaded (drflow.spec.incident): what was left out."""

    @property
    def name(self) -> str:
        return self.spec.metadata.name


def load_spec(path: str | os.PathLike[str]) -> LoadedSpec:
    """Load and check one spec file. Raises SpecError with every error in it."""
    path = Path(path)
    return load_spec_bytes(read_spec(path), path)


def read_spec(path: Path) -> bytes:
    """The bytes of a spec file. Raises SpecError saying why it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as exc:
        message = f"cannot read the spec: {exc.strerror or exc}"
        raise SpecError([Diagnostic(str(path), 1, 1, "", message, "check the path")]) from None


def load_spec_bytes(data: bytes, path: str | os.PathLike[str]) -> LoadedSpec:
    """Load the bytes of a spec file read from `path`. Raises SpecError with every error in it."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        message = "the file is not UTF-8 text"
        raise SpecError([Diagnostic(str(path), line, col, "", message, "save it as UTF-8")]) from None
    # As path.read_text() reads it: universal newlines, so a CRLF file gives the same text (and marks).
    return load_spec_text(text.replace("\r\n", "\n").replace("\r", "\n"), path)


def load_spec_text(text: str, path: str | os.PathLike[str]) -> LoadedSpec:
    """Load spec text as if read from `path` (relative storage paths resolve against its directory)."""
    path = Path(path)
    source = parse_source(text, str(path))
    _resolve_local_paths(source, path.parent)
    secrets, secret_keys = check_secrets(source)
    # A secret where a conn_id belongs needs one message (about the secret), not also one about its form;
    # so does a value the reader already refused (a time without a timezone, an unknown tag).
    secret_at = {(found.line, found.col) for found in secrets + source.diagnostics}
    diagnostics = source.diagnostics + secrets
    spec: Spec | None = None
    model_at: set[tuple[int, int]] = set()
    try:
        spec = Spec.model_validate(source.data)
    except ValidationError as exc:
        found = [d for d in validation_diagnostics(exc, source) if (d.line, d.col) not in secret_at]
        model_at = {(found.line, found.col) for found in found}
        diagnostics += found
    # A secret-named key the model does not know already has the model's message about secrets.
    diagnostics += [d for d in secret_keys if (d.line, d.col) not in model_at]
    # Reference checks read the raw values, so they run (and report) even when the model failed.
    try:
        diagnostics += check_references(source)
        diagnostics += [d for d in check_sql_statements(source) if (d.line, d.col) not in secret_at]
        if spec is not None:
            diagnostics += check_feasibility(spec, source) + check_slots(spec, source)
    except Exception as exc:  # raw values of any shape: a check that trips must not hide the spec's real errors
        if spec is not None:  # nothing else explains it: say so rather than fail the whole DAG file
            message = f"drflow could not check this spec ({type(exc).__name__}: {exc})"
            hint = "this is a drflow defect: report it with this spec; `drflow validate` shows the same"
            diagnostics.append(Diagnostic(str(path), 1, 1, "", message, hint))
    diagnostics = _unique(diagnostics)
    errors = [d for d in diagnostics if d.is_error]
    if errors or spec is None:
        raise SpecError(diagnostics, str(path))
    return LoadedSpec(path, spec, sorted(diagnostics, key=Diagnostic.sort_key))


def discover(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Spec files named by `paths`: files as given; for directories their *.yaml/*.yml files, sorted.

    Directories are not searched recursively (plan_specs/examples/ is validated only when named),
    and files whose name starts with '_' or '.' are skipped there. A path that does not exist is
    kept, so loading it reports it.
    """
    found: list[Path] = []
    for item in map(Path, paths):
        if item.is_dir():
            found += sorted(
                child
                for child in item.iterdir()
                if child.suffix in SPEC_SUFFIXES and not child.name.startswith(("_", ".")) and child.is_file()
            )
        else:
            found.append(item)
    return list(dict.fromkeys(found))


class SpecFailure(NamedTuple):
    """A spec file that does not load, and its errors (`for path, errors in failures` works)."""

    path: Path
    diagnostics: list[Diagnostic]


def load_each(paths: Iterable[str | os.PathLike[str]]) -> Iterator[LoadedSpec | SpecError]:
    """Load every spec under `paths`, one result per file: a broken file hides nothing else.

    Two files with the same metadata.name would give DAGs with the same ids: the later file fails.
    """
    admission = Admission()
    for path in discover(paths):
        try:
            loaded = load_spec(path)
        except SpecError as exc:
            yield exc
            continue
        refused = admission.admit(loaded.path, loaded.name, spec_claims(loaded.spec), loaded.warnings)
        yield loaded if refused is None else refused


class Admission:
    """What a spec file may not share with the files admitted before it: its name, its slots on a primary."""

    def __init__(self) -> None:
        self.owners: dict[str, Path] = {}
        self.slots: list[SlotClaim] = []

    def admit(
        self, path: Path, name: str, claims: Iterable[SlotClaim], warnings: Iterable[Diagnostic] = ()
    ) -> SpecError | None:
        """None when the file is admitted (its name and slots are then taken); else its errors."""
        first = self.owners.get(name)
        if first is not None:
            return SpecError([_duplicate_name(path, name, first), *warnings], str(path))
        claimed = list(claims)
        clashes = _slot_clashes(path, claimed, self.slots)
        if clashes:
            return SpecError([*clashes, *warnings], str(path))
        self.owners[name] = path
        self.slots += claimed
        return None


def load_specs(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[LoadedSpec], list[SpecFailure]]:
    """The specs that load, and a (path, errors) failure for each file that does not (see load_each)."""
    loaded: list[LoadedSpec] = []
    failed: list[SpecFailure] = []
    for result in load_each(paths):
        if isinstance(result, SpecError):
            failed.append(SpecFailure(Path(result.file), result.errors))
        else:
            loaded.append(result)
    return loaded, failed


def _duplicate_name(path: Path, name: str, first: Path) -> Diagnostic:
    # Re-parse only to locate the name; this path is taken only for a broken plan_specs/ directory.
    source = parse_source(path.read_text(encoding="utf-8"), str(path))
    message = f"spec name '{name}' is already used by {first}; DAG ids would collide"
    return source.diagnostic(("metadata", "name"), message, "give every spec its own metadata.name")


def _slot_clashes(path: Path, claims: list[SlotClaim], earlier: list[SlotClaim]) -> list[Diagnostic]:
    """Slots of this spec that an earlier spec owns on the same primary (re-parsed only when there are some)."""
    if not any(first.spec != claim.spec for claim, first in conflicts(claims, earlier)):
        return []
    source = parse_source(path.read_text(encoding="utf-8"), str(path))
    return cross_spec_diagnostics(source, claims, earlier)


def _resolve_local_paths(source: Source, base: Path) -> None:
    """Make relative `path`s of local storage targets absolute, relative to the spec's directory."""
    data = source.data
    storage = data.get("storage") if isinstance(data, dict) else None
    for target in storage if isinstance(storage, list) else []:
        if isinstance(target, dict) and target.get("type") == "local" and isinstance(target.get("path"), str):
            location = Path(target["path"]).expanduser()
            if target["path"] and not location.is_absolute():
                target["path"] = os.path.normpath(base.absolute() / location)


def _unique(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """Drop repeats (a mapping reused through an alias is checked once per use)."""
    return list(dict.fromkeys(diagnostics))
