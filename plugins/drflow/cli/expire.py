"""`drflow expire` and `drflow backups pin/unpin`: retention enforced from the store (no Airflow needed)."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drflow.cli.common import err, fail, load_one, out


def _now(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise fail(f"--now {text!r} is not a time; write it as 2026-12-01T10:00:00+00:00") from None
    if when.tzinfo is None:
        raise fail(f"--now {text!r} has no timezone; write it as 2026-12-01T10:00:00+00:00")
    return when


def expire(spec_path: Path, component: str | None, dry_run: bool, now_text: str | None, as_json: bool) -> None:
    from drflow.jobs.config_retention import expire_config
    from drflow.jobs.retention import component_rules, component_target_names, expire_component

    now = _now(now_text)
    loaded = load_one(spec_path)
    spec = loaded.spec
    known = [c.name for c in spec.components]
    if component is not None and component not in known:
        raise fail(f"no component {component!r} in {spec_path}; known: {', '.join(known)}")
    reports: list[dict[str, Any]] = []
    problems: list[str] = []
    for chosen in spec.components:
        policies = chosen.backup_policies
        if component not in (None, chosen.name) or not (policies or chosen.config):
            continue
        targets = [spec.target(name).model_dump(mode="json") for name in component_target_names(policies)]
        snapshot_conn_id = chosen.snapshots.conn_id if chosen.snapshots is not None else None
        result = expire_component(
            spec.metadata.name,
            chosen.name,
            targets,
            component_rules(policies),
            now,
            dry_run=dry_run,
            snapshot_conn_id=snapshot_conn_id,
        )
        report = result.to_dict()
        problems += [f"{chosen.name}: {line}" for line in result.problems]
        if chosen.config is not None:
            retention = chosen.config.retention
            config_targets = [spec.target(name).model_dump(mode="json") for name in chosen.config.targets]
            config = expire_config(
                spec.metadata.name,
                chosen.name,
                config_targets,
                retention.days,
                retention.min_copies,
                now,
                dry_run=dry_run,
            )
            report["config"] = config.to_dict()
            problems += [f"{chosen.name}: {line}" for line in config.problems]
        reports.append(report)
    if as_json:
        out.print_json(json.dumps(reports))
    else:
        _print(reports, dry_run)
    if problems:
        raise fail(
            "some storage targets could not be expired: "
            + "; ".join(problems)
            + ". The other targets were expired on their own; fix access to these and run expire again"
        )


def _print(reports: list[dict[str, Any]], dry_run: bool) -> None:
    from drflow.jobs.snapshot_expiry import describe_regions

    verb = "would delete" if dry_run else "deleted"
    for report in reports:
        for target in report["targets"]:
            where = f"{report['component']} in {target['target']}"
            if target["error"]:
                err.print(f"{where}: cannot expire: {target['error']}", markup=False, highlight=False)
                continue
            for row in target["delete"]:
                snapshots = f" (snapshots: {describe_regions(row['snapshots'])})" if "snapshots" in row else ""
                line = f"{where}: {verb} {row['backup_id']}: {row['reason']}{snapshots}"
                out.print(line, markup=False, highlight=False)
            for row in target["keep"]:
                tag = "skip (locked)" if row["locked"] else "keep"
                out.print(f"{where}: {tag} {row['backup_id']}: {row['reason']}", markup=False, highlight=False)
            if not target["delete"] and not target["keep"]:
                out.print(f"{where}: no backups", markup=False, highlight=False)
        for deletion in report.get("snapshots", []):
            for region, error in deletion["errors"].items():
                err.print(
                    f"{report['component']}: snapshots of {deletion['backup_id']} in {region}: {error}",
                    markup=False,
                    highlight=False,
                )
        if report.get("config"):
            _print_config(report["component"], report["config"], dry_run)


def _print_config(component: str, config: dict[str, Any], dry_run: bool) -> None:
    verb = "would delete" if dry_run else "deleted"
    for target in config["targets"]:
        where = f"{component} config in {target['target']}"
        if target["error"]:
            err.print(f"{where}: cannot prune: {target['error']}", markup=False, highlight=False)
            continue
        for row in target["delete"]:
            out.print(f"{where}: {verb} version {row['version_id']}: {row['reason']}", markup=False, highlight=False)
        for row in target["keep"]:
            out.print(f"{where}: keep version {row['version_id']}: {row['reason']}", markup=False, highlight=False)
        if target["blobs"]:
            blobs = ", ".join(sha[:12] for sha in target["blobs"])
            line = f"{where}: {verb} {len(target['blobs'])} blobs no kept version names: {blobs}"
            out.print(line, markup=False, highlight=False)
        if not target["delete"] and not target["keep"]:
            out.print(f"{where}: no versions", markup=False, highlight=False)


def _catalogs_holding(spec_path: Path, component: str | None, backup_id: str) -> tuple[str, list[tuple[str, Any]]]:
    """(component, [(target, catalog)]) of every target holding the backup; the component is found when not given."""
    from drflow.store.base import StoreError
    from drflow.store.factory import target_catalogs

    loaded = load_one(spec_path, incident=True, component=component)
    spec = loaded.spec
    names = [c.name for c in spec.components]
    if component is not None and component not in names:
        raise fail(f"no component {component!r} in {spec_path}; known: {', '.join(names)}")
    holding: dict[str, list[tuple[str, Any]]] = {}
    unreadable = []
    for name, catalog in target_catalogs(spec.metadata.name, [t.model_dump(mode="json") for t in spec.storage]):
        try:
            for each in [component] if component else names:
                if catalog.store.exists(catalog.manifest_key(each, backup_id)):
                    holding.setdefault(each, []).append((name, catalog))
        except (StoreError, ValueError) as exc:
            unreadable.append(f"{name}: {exc}")
    if unreadable:
        raise fail(
            "cannot read every storage target, so the pin would miss a copy: "
            + "; ".join(unreadable)
            + ". Fix access to these targets and run the command again"
        )
    if not holding:
        raise fail(
            f"no storage target of {spec_path} holds backup {backup_id!r}"
            + (f" of {component}" if component else "")
            + f"; list them with `drflow backups list --spec {spec_path}`"
        )
    if len(holding) > 1:
        raise fail(f"backup {backup_id!r} exists for components {', '.join(holding)}; choose one with --component")
    [(found, catalogs)] = holding.items()
    return found, catalogs


def pin(spec_path: Path, component: str | None, backup_id: str, reason: str, by: str | None) -> None:
    from drflow.store.pins import Pin, write_pin

    if not reason.strip():
        raise fail("--reason is empty; say why the backup must be kept (an incident, an audit, a legal hold)")
    component, catalogs = _catalogs_holding(spec_path, component, backup_id)
    record = Pin(
        backup_id=backup_id,
        component=component,
        reason=reason.strip(),
        pinned_by=by or getpass.getuser(),
        pinned_at=datetime.now(UTC),
    )
    for name, catalog in catalogs:
        write_pin(catalog, record)
        out.print(f"pinned {backup_id} of {component} in {name}: {record.describe()}", markup=False, highlight=False)


def unpin(spec_path: Path, component: str | None, backup_id: str, reason: str, by: str | None) -> None:
    from drflow.store.pins import remove_pin

    if not reason.strip():
        raise fail("--reason is empty; say why the backup no longer needs to be kept")
    who, when = by or getpass.getuser(), datetime.now(UTC)
    component, catalogs = _catalogs_holding(spec_path, component, backup_id)
    for name, catalog in catalogs:
        removed = remove_pin(catalog, component, backup_id, who, reason.strip(), when)
        state = "unpinned" if removed else "was not pinned:"
        out.print(f"{state} {backup_id} of {component} in {name}", markup=False, highlight=False)
