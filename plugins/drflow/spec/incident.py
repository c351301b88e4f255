"""Loading a spec during an incident: use the parts a command needs even when other parts are broken.

`drflow restore`, `backups list` and `restore-table` need the spec's name, one component's datastore
and the storage targets. During a disaster the spec repository may be half-edited: an error in a
recovery plan, a drill or another component must not stand between an operator and a restore.
Errors in what the command needs still refuse, as `load_spec` does.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from drflow.spec.diagnostics import Diagnostic, SpecError, quoted
from drflow.spec.load import LoadedSpec, _resolve_local_paths, load_spec
from drflow.spec.model import Spec
from drflow.spec.source import Source, parse_source

# What a component needs for restores; its backups and drills are read from the store's catalog instead.
_COMPONENT_KEYS = ("name", "display_name", "description", "owner", "criticality", "rto", "rpo", "datastore")


def load_for_incident(
    path: str | os.PathLike[str], component: str | None = None, target: str | None = None
) -> LoadedSpec:
    """The spec, or, when it does not validate, only `component` (default: every sound one) and the
    storage targets (`target` or every sound one), with a warning naming what was ignored.

    Raises the spec's SpecError when an error lies in what is kept (metadata, the component's
    datastore, the storage target, or the file as a whole).
    """
    path = Path(path)
    try:
        return load_spec(path)
    except SpecError as exc:
        failure = exc
    try:
        source = parse_source(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError, SpecError):
        raise failure from None
    _resolve_local_paths(source, path.parent)
    data = source.data
    if not isinstance(data, dict):
        raise failure
    errors = failure.errors
    components = [c for c in _named(data, "components") if component in (None, c["name"])]
    targets = [t for t in _named(data, "storage") if target in (None, t["name"])]
    # A component's errors in its backups or drills are left out with them; one at the component itself is not.
    bases = {id(c): _item_path(source, "components", c) for c in components}
    kept_components = [c for c in components if not _touched(errors, _component_paths(source, c), (bases[id(c)],))]
    kept_targets = [t for t in targets if not _touched(errors, [_item_path(source, "storage", t)])]
    kept_paths = ["version", "metadata"]
    kept_paths += [kept for c in kept_components for kept in _component_paths(source, c)]
    kept_paths += [_item_path(source, "storage", t) for t in kept_targets]
    exact = tuple(bases[id(c)] for c in kept_components)
    if (
        not kept_components
        or not kept_targets
        or _touched(errors, kept_paths, exact)
        or any(not d.path for d in errors)
    ):
        raise failure
    reduced: dict[str, Any] = {
        "version": data.get("version"),
        "metadata": data.get("metadata"),
        "storage": kept_targets,
        "components": [{k: v for k, v in c.items() if k in _COMPONENT_KEYS} for c in kept_components],
    }
    try:
        spec = Spec.model_validate(reduced)
    except ValidationError:
        raise failure from None
    return LoadedSpec(path, spec, ignored=_ignored_warning(path, errors, spec, exact))


def _named(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The mappings of a list with a string name (items without one cannot be asked for by name)."""
    items = data.get(key)
    if not isinstance(items, list):
        return []
    return [item for item in items if isinstance(item, dict) and isinstance(item.get("name"), str)]


def _item_path(source: Source, key: str, item: dict[str, Any]) -> str:
    items = source.data[key]
    return source.display((key, next(index for index, other in enumerate(items) if other is item)))


def _component_paths(source: Source, component: dict[str, Any]) -> list[str]:
    base = _item_path(source, "components", component)
    return [f"{base}.{key}" for key in _COMPONENT_KEYS]


def _touched(errors: list[Diagnostic], paths: list[str], exact: tuple[str, ...] = ()) -> bool:
    """Does any error lie at or below one of `paths`, or exactly at one of `exact`?"""
    return any(
        error.path in exact or any(error.path == path or _below(error.path, path) for path in paths) for error in errors
    )


def _below(path: str, parent: str) -> bool:
    return path.startswith(parent) and path[len(parent) : len(parent) + 1] in (".", "[")


def _ignored_warning(path: Path, errors: list[Diagnostic], spec: Spec, kept: tuple[str, ...]) -> Diagnostic:
    parts: dict[str, int] = {}
    for error in errors:
        parts.setdefault(_part(error.path, kept), error.line)
    ignored = ", ".join(f"{part} (line {line})" for part, line in parts.items())
    count = len(errors)
    message = (
        f"the spec does not validate ({count} error{'s' if count != 1 else ''}); using only "
        f"component{'s' if len(spec.components) != 1 else ''} {quoted(c.name for c in spec.components)} "
        f"and storage {quoted(t.name for t in spec.storage) or '(none)'} from it, and ignoring: {ignored}"
    )
    return Diagnostic(str(path), 1, 1, "", message, f"fix the spec when you can (drflow validate {path})", "warning")


def _part(path: str, kept: tuple[str, ...]) -> str:
    """`recovery_plans[failover].steps[2].node` → `recovery_plans[failover]`; a kept component's errors keep
    one more level (`components[orders].drills`)."""
    head, _, rest = path.partition(".")
    if head in kept and rest:
        return f"{head}.{rest.partition('.')[0].partition('[')[0]}"
    return head
