"""`drflow backups …`: the backup catalog read straight from the store (no Airflow needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from drflow.cli.common import DEFAULT_SPECS, err, fail, friendly_errors, load_one, out
from drflow.units import human_duration

backups_app = typer.Typer(help="Read the backup catalog straight from the store (no Airflow needed).")


@backups_app.command("list")
@friendly_errors
def backups_list(
    spec: Annotated[Path, typer.Option("--spec", help="Spec file whose storage targets to read.")] = (
        DEFAULT_SPECS / "api-marketplace.yaml"
    ),
    component: Annotated[str | None, typer.Option("--component", help="Only this component.")] = None,
    target: Annotated[str | None, typer.Option("--target", help="Only this storage target.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List complete backups, newest last, and which storage targets hold a copy, from the store alone."""
    from drflow.store.factory import target_catalogs

    loaded = load_one(spec, incident=True, component=component, target=target)
    targets = [t.model_dump(mode="json") for t in loaded.spec.storage if target in (None, t.name)]
    if not targets:
        raise fail(f"no storage target {target!r} in {spec}; known: {', '.join(t.name for t in loaded.spec.storage)}")
    known = [c.name for c in loaded.spec.components]
    if component is not None and component not in known:
        raise fail(f"no component {component!r} in {spec}; known: {', '.join(known)}")
    from drflow.store.base import StoreError
    from drflow.store.fanout import group_problems

    rows: list[dict[str, Any]] = []
    unreadable: list[tuple[str, str]] = []
    for name, catalog in target_catalogs(loaded.spec.metadata.name, targets):
        try:
            manifests = catalog.list_backups(component)
        except StoreError as exc:  # one unreachable target must not hide the copies in the others
            unreadable.append((name, str(exc)))
            continue
        rows.extend({"target": name, **manifest.model_dump(mode="json")} for manifest in manifests)
    for line in group_problems(unreadable):
        err.print(f"warning: cannot read storage target {line}", highlight=False, markup=False)
    if len(unreadable) == len(targets):  # not "no backups": nothing could be looked at
        raise fail(
            "no storage target could be read (see above), so no backup can be listed; fix their access and retry"
        )
    if as_json:
        out.print_json(json.dumps(rows))
        return
    if not rows:
        what = f"of {component} " if component else ""
        where = ", ".join(f"{t['name']}" for t in targets)
        err.print(f"no complete backups {what}in {where}; run the backup DAGs first (or check --spec/--target)")
        if unreadable:
            raise fail("some storage targets could not be read (see above); fix their access and retry")
        return
    # One row per backup, one column per target: which copies exist where ("-": missing, "?": unreadable).
    names = [str(t["name"]) for t in targets]
    broken = {name for name, _ in unreadable}
    backups: dict[tuple[str, str], dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: (r["finished_at"], r["backup_id"], r["component"])):
        entry = backups.setdefault((row["component"], row["backup_id"]), {**row, "copies": set()})
        entry["copies"].add(row["target"])
    from rich.table import Table  # here, not at start-up: every command would import it

    table = Table("component", "backup id", "type", "finished", "data", "stored", "duration", *names)
    for entry in backups.values():
        table.add_row(
            entry["component"],
            entry["backup_id"],
            f"{entry['backup_type']}/{entry['method']}",
            entry["finished_at"][:19],
            _size(entry["database_size_bytes"]),
            _size(entry["stored_bytes"]),
            f"{human_duration(entry['duration_s'])}",
            *("?" if name in broken else "yes" if name in entry["copies"] else "-" for name in names),
        )
    out.print(table)


def _size(value: int | None) -> str:
    from drflow.units import human_size

    return "-" if value is None else human_size(value)
