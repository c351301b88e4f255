"""Helpers shared by the spec checks: the named items of a list, duplicates, did-you-mean choices."""

from __future__ import annotations

from typing import Any

from drflow.spec.diagnostics import Diagnostic, did_you_mean, quoted
from drflow.spec.source import Loc, Source


def items(parent: Any, key: str) -> list[tuple[int, dict[str, Any]]]:
    """The mappings of a list under `key`, with their indexes (other items are the model's business)."""
    value = parent.get(key) if isinstance(parent, dict) else None
    if not isinstance(value, list):
        return []
    return [(index, item) for index, item in enumerate(value) if isinstance(item, dict)]


def names(data: dict[str, Any], key: str) -> list[str] | None:
    """Names of the items under `key`, or None when the list is malformed or an item has no usable
    name: references to it cannot be judged, and the model reports what is wrong with the list."""
    items = data.get(key, [])
    if not isinstance(items, list):
        return None
    names = [item.get("name") if isinstance(item, dict) else None for item in items]
    if not all(isinstance(name, str) for name in names):
        return None
    return list(dict.fromkeys(str(name) for name in names))


def duplicates(
    source: Source, loc: Loc, items: list[tuple[int, dict[str, Any]]], noun: str, within: str = ""
) -> list[Diagnostic]:
    found = []
    first: dict[str, int] = {}
    for index, item in items:
        name = item.get("name")
        if not isinstance(name, str):
            continue
        if name in first:
            line, _ = source.position((*loc, first[name], "name"))
            message = f"{noun} name '{name}' is used twice{within}"
            hint = f"the first is on line {line}; give each {noun} its own name"
            found.append(source.diagnostic((*loc, index, "name"), message, hint))
        else:
            first[name] = index
    return found


def choices(ref: str, names: list[str], label: str, otherwise: str) -> str:
    if not names:
        return otherwise
    return " ".join(filter(None, [did_you_mean(ref, names), f"{label}: {quoted(names)}"]))
