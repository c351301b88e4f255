"""`drflow config history|diff|restore`: a component's configuration versions, read from the store alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from drflow.cli.common import fail, friendly_errors, load_one, out
from drflow.units import format_size

config_app = typer.Typer(help="Configuration versions (backed up after each change): history, diff, restore.")

SpecOption = Annotated[Path, typer.Option("--spec", help="The spec file.")]
ComponentOption = Annotated[str, typer.Option("--component", help="The component whose config it is.")]
TargetOption = Annotated[
    str | None, typer.Option("--target", help="Storage target to read (default: the first of config.targets).")
]


def _versions(spec: Path, component: str, target: str | None) -> Any:
    from drflow.jobs.config import component_versions

    loaded = load_one(spec, incident=True, component=component, target=target)
    names = [c.name for c in loaded.spec.components]
    if component not in names:
        raise fail(f"no component {component!r} in {spec}; known: {', '.join(names)}")
    settings = loaded.spec.component(component).config
    if settings is None:
        raise fail(f"component {component!r} of {spec} has no config: section; add one to back its config up")
    name = target or settings.targets[0]
    if name not in settings.targets:
        raise fail(f"{name!r} is not one of {component}'s config targets ({', '.join(settings.targets)})")
    return component_versions(loaded.spec.metadata.name, component, loaded.spec.target(name).model_dump(mode="json"))


@config_app.command("history")
@friendly_errors
def history(
    spec: SpecOption,
    component: ComponentOption,
    target: TargetOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Every stored version: id, time, hash, size, files (oldest first)."""
    versions = _versions(spec, component, target).versions()
    if as_json:
        out.print_json(json.dumps([v.to_json() | {"files": len(v.files)} for v in versions]))
        return
    if not versions:
        raise fail(f"no config version of {component} stored yet; the config backup DAG stores the first one")
    from rich.table import Table  # here, not at start-up: every command would import it

    table = Table("version", "taken at", "sha256", "size", "files")
    for v in versions:
        table.add_row(v.version_id, v.taken_at, v.sha256[:16], format_size(v.size), str(len(v.files)))
    out.print(table)


@config_app.command("diff")
@friendly_errors
def diff(
    spec: SpecOption,
    component: ComponentOption,
    version: Annotated[str | None, typer.Option("--version", help="The newer version (default: the newest).")] = None,
    base: Annotated[
        str | None, typer.Option("--from", help="The older version (default: the one before --version).")
    ] = None,
    target: TargetOption = None,
) -> None:
    """A unified diff between two versions (ids or unique prefixes of ids or hashes)."""
    from drflow.jobs.config import ConfigJobError, diff_versions, resolve_version

    versions = _versions(spec, component, target)
    new = resolve_version(versions, version)
    if base is None:
        older = [v for v in versions.versions() if v.version_id < new.version_id]
        if not older:
            raise ConfigJobError(f"{new.version_id} is the first version; give --from to compare with another")
        old = older[-1]
    else:
        old = resolve_version(versions, base)
    typer.echo(diff_versions(versions, old, new), nl=False)


@config_app.command("restore")
@friendly_errors
def restore(
    spec: SpecOption,
    component: ComponentOption,
    to: Annotated[Path, typer.Option("--to", help="A new or empty directory to write the files into.")],
    version: Annotated[str | None, typer.Option("--version", help="The version (default: the newest).")] = None,
    target: TargetOption = None,
) -> None:
    """Write a version's files into --to, each checked against its sha256; prints the tree's hash."""
    from drflow.jobs.config import resolve_version, restore_version

    versions = _versions(spec, component, target)
    chosen = resolve_version(versions, version)
    restored = restore_version(versions, chosen, to)
    verdict = "matches" if restored == chosen.sha256 else f"DIFFERS from the recorded {chosen.sha256}"
    out.print(f"restored config version {chosen.version_id} ({len(chosen.files)} files) into {to}; hash {verdict}")
    if restored != chosen.sha256:
        raise typer.Exit(1)
