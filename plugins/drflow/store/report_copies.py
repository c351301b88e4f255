"""One JSON report written into every storage target, under each component it concerns, each target on its own.

Exercise results and recovery records (with their incident reports) are written this way: a target that
cannot be opened or written (the failed region's bucket) is reported with its cause and never stops the
others, so the report survives as long as one target does. Readers see one report in several targets and
components, and count it once (by its run, see the readers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def target_label(target: Mapping[str, Any]) -> str:
    return str(target.get("name") or target.get("path") or target.get("bucket"))


def distinct_targets(targets: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The targets in the order given, each once (by name)."""
    found: dict[str, Mapping[str, Any]] = {}
    for target in targets:
        found.setdefault(target_label(target), target)
    return list(found.values())


def write_everywhere(
    spec: str,
    components: Sequence[str],
    kind: str,
    name: str,
    report: Mapping[str, Any],
    targets: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """Store ``report`` as ``<component>/reports/<kind>/<name>.json`` for every component in every target.

    Returns ``{"written": {target: [keys]}, "failed": {target: why}}``; a retry replaces, never adds.
    """
    from drflow.store.catalog import Catalog
    from drflow.store.factory import open_store

    written: dict[str, list[str]] = {}
    failed: dict[str, str] = {}
    for target in distinct_targets(targets):
        label = target_label(target)
        try:
            catalog = Catalog(open_store(target), spec)
            written[label] = [catalog.write_report(component, kind, name, dict(report)) for component in components]
        except Exception as exc:  # any failure of one target (network, permissions, key) must not stop the others
            failed[label] = f"{type(exc).__name__}: {exc}".strip()
    return {"written": written, "failed": failed}


def first_key(outcome: Mapping[str, Any]) -> str | None:
    """The first key written (the first target that took the report), or None."""
    return next((keys[0] for keys in outcome["written"].values() if keys), None)


def written_summary(outcome: Mapping[str, Any], nowhere: str) -> str:
    """One line for logs and errors: where the report went, which targets failed and why (``nowhere``: the
    line when there was no target at all)."""
    parts = [f"{target}: {len(keys)} report(s)" for target, keys in outcome["written"].items()]
    parts += [f"{target}: NOT written ({why})" for target, why in outcome["failed"].items()]
    return "; ".join(parts) or nowhere
