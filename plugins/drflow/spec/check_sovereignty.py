"""Data sovereignty: a component's `allowed_regions` bound where its data may live.

Its primary and replicas, the storage targets its backups, copies (`copy_to`) and config versions go to,
the S3 prefix it backs up and the regions its snapshots are copied into must all lie in those regions; so
must the replicas and physical backups that other components on the same PostgreSQL cluster declare (they
copy the whole cluster). Each place outside them, or of no known region, is an error at the line that puts
the data there. Like the other reference checks these
read the raw YAML values. Called from drflow.spec.check.check_references.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from drflow.spec.check_helpers import choices, items
from drflow.spec.diagnostics import Diagnostic, quoted
from drflow.spec.source import Loc, Source

_NO_REGION = object()  # a storage target that declares no region


def check_sovereignty(source: Source) -> list[Diagnostic]:
    data = source.data
    if not isinstance(data, dict):
        return []
    regions = [r for _, r in items(data, "regions")]
    declared = [str(r.get("name")) for r in regions if isinstance(r.get("name"), str)]
    secondary = [str(r.get("name")) for r in regions if r.get("role", "secondary") == "secondary"]
    targets = {str(t.get("name")): _target_region(t) for _, t in items(data, "storage")}
    found: list[Diagnostic] = []
    components = items(data, "components")
    for index, component in components:
        allowed = component.get("allowed_regions")
        if not isinstance(allowed, list):
            continue
        base: Loc = ("components", index)
        name = component.get("name")
        for region_index, region in enumerate(allowed):
            if isinstance(region, str) and declared and region not in declared:
                message = f"allowed_regions of component '{name}' names region '{region}', which is not declared"
                hint = choices(region, declared, "declared regions", "declare it under 'regions:'")
                found.append(source.diagnostic((*base, "allowed_regions", region_index), message, hint))
        allowed_names = [r for r in allowed if isinstance(r, str)]
        placements = [
            *_placements(component, base, targets, secondary),
            *_cluster_placements(component, index, components, targets),
        ]
        for loc, what, region in placements:
            if region is _NO_REGION:
                message = (
                    f"{what} declares no region, so drflow cannot tell whether the data of component '{name}' "
                    f"stays in its allowed_regions ({quoted(allowed_names)})"
                )
                hint = (
                    "give the storage target a region: (one of its allowed_regions), or use a target that has one"
                    if what.startswith("storage target")
                    else "give the datastore its region: (one of its allowed_regions)"
                )
                found.append(source.diagnostic(loc, message, hint))
            elif isinstance(region, str) and region not in allowed_names:
                message = (
                    f"{what} is in region '{region}', outside the regions component '{name}' may keep data in "
                    f"(allowed_regions: {quoted(allowed_names)})"
                )
                found.append(source.diagnostic(loc, message, _hint(what, allowed_names, targets)))
    return found


def _target_region(target: dict[str, Any]) -> Any:
    if isinstance(target.get("region"), str):
        return target["region"]
    # An S3 target must name its region: the model's error at the target says so, not one more per use.
    return None if target.get("type") == "s3" else _NO_REGION


def _placements(
    component: dict[str, Any], base: Loc, targets: dict[str, Any], secondary: list[str]
) -> Iterator[tuple[Loc, str, Any]]:
    """(where it is written, what it is, its region) for every place the component's data lives."""
    datastore = component.get("datastore")
    if isinstance(datastore, dict):
        primary = datastore.get("primary")
        if isinstance(primary, dict):
            yield (*base, "datastore", "primary", "region"), "the primary", primary.get("region")
        for index, replica in items(datastore, "replicas"):
            loc = (*base, "datastore", "replicas", index, "region")
            yield loc, f"replica '{replica.get('name')}'", replica.get("region")
        if datastore.get("type") == "s3-prefix":
            region = datastore.get("region")
            loc = (*base, "datastore", "region") if "region" in datastore else (*base, "datastore")
            yield loc, f"bucket '{datastore.get('bucket')}'", region if isinstance(region, str) else _NO_REGION
    for index, policy in items(component, "backups"):
        label = f"backup policy '{policy.get('name') or policy.get('preset')}'"
        for key, role in (("targets", "sends backups to"), ("copy_to", "copies backups to")):
            refs = policy.get(key)
            for ref_index, ref in enumerate(refs if isinstance(refs, list) else []):
                if isinstance(ref, str) and ref in targets:
                    loc = (*base, "backups", index, key, ref_index)
                    yield loc, f"storage target '{ref}', which {label} {role},", targets[ref]
    config = component.get("config")
    refs = config.get("targets") if isinstance(config, dict) else None
    for ref_index, ref in enumerate(refs if isinstance(refs, list) else []):
        if isinstance(ref, str) and ref in targets:
            loc = (*base, "config", "targets", ref_index)
            yield loc, f"storage target '{ref}', which keeps the config versions,", targets[ref]
    yield from _snapshot_placements(component.get("snapshots"), (*base, "snapshots"), secondary)


PHYSICAL_METHODS = frozenset({"pg_basebackup", "pg_receivewal", "pgbackrest"})


def _cluster(component: dict[str, Any]) -> tuple[str, str] | None:
    """The PostgreSQL cluster a component's database lives on: its primary's connection and host."""
    datastore = component.get("datastore")
    primary = datastore.get("primary") if isinstance(datastore, dict) and datastore.get("type") == "postgres" else None
    if not isinstance(primary, dict) or not isinstance(primary.get("conn_id"), str):
        return None
    return primary["conn_id"], repr(primary.get("host", "local"))


def _cluster_placements(
    component: dict[str, Any], index: int, components: list[tuple[int, dict[str, Any]]], targets: dict[str, Any]
) -> Iterator[tuple[Loc, str, Any]]:
    """Where the other components on the same cluster put physical copies: each holds this one's database too.

    A streaming replica, a base backup, archived WAL and a pgBackRest backup copy the whole cluster,
    whichever component's database the spec lists them under.
    """
    cluster = _cluster(component)
    if cluster is None:
        return
    for other_index, other in components:
        if other_index == index or _cluster(other) != cluster:
            continue
        base: Loc = ("components", other_index)
        also = (
            f"(a copy of the whole PostgreSQL cluster of component '{other.get('name')}', which holds the database "
            f"of component '{component.get('name')}' too)"
        )
        for replica_index, replica in items(other["datastore"], "replicas"):
            loc = (*base, "datastore", "replicas", replica_index, "region")
            yield loc, f"replica '{replica.get('name')}' {also}", replica.get("region")
        for policy_index, policy in items(other, "backups"):
            physical = policy.get("preset") == "database" or policy.get("method") in PHYSICAL_METHODS
            label = f"backup policy '{policy.get('name') or policy.get('preset')}' of component '{other.get('name')}'"
            for key in ("targets", "copy_to") if physical else ():
                refs = policy.get(key)
                for ref_index, ref in enumerate(refs if isinstance(refs, list) else []):
                    if isinstance(ref, str) and ref in targets:
                        loc = (*base, "backups", policy_index, key, ref_index)
                        yield loc, f"storage target '{ref}', which {label} writes {also},", targets[ref]


def _snapshot_placements(snapshots: Any, loc: Loc, secondary: list[str]) -> Iterator[tuple[Loc, str, Any]]:
    if not isinstance(snapshots, dict):
        return
    region = snapshots.get("region")
    yield (*loc, "region"), "the snapshot source (its volumes or instance)", region
    copy_to = snapshots.get("copy_to")
    if isinstance(copy_to, list):
        for index, target in enumerate(copy_to):
            yield (*loc, "copy_to", index), "a snapshot copy", target
        return
    # No copy_to: every secondary region but the source's gets a copy (plan/snapshot.py copy_regions).
    for target in secondary:
        if target != region:
            yield loc, "a snapshot copy (by default every secondary region gets one)", target


def _hint(what: str, allowed: list[str], targets: dict[str, Any]) -> str:
    if "whole PostgreSQL cluster" in what:
        return (
            f"keep every replica and physical backup (base backup, WAL, pgBackRest) of that cluster in "
            f"{quoted(allowed)}, or give the component a cluster of its own"
        )
    if what.startswith("storage target"):
        inside = [name for name, region in targets.items() if region in allowed]
        use = f"add a target in {quoted(allowed)}"
        if inside:
            use = f"use a target in {quoted(allowed)} ({quoted(inside)})"
        return f"{use}, or add the region to allowed_regions if the data may live there"
    if what.startswith("a snapshot copy (by default"):
        return f"set snapshots.copy_to to regions in {quoted(allowed)}, or add the region to allowed_regions"
    return f"move it to one of {quoted(allowed)}, or add the region to allowed_regions if the data may live there"
