"""`drflow slots list|drop`: the replication slots on the specs' primaries, who owns each, and orphans."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from drflow.cli.common import err, fail, friendly_errors, load_one, out

slots_app = typer.Typer(help="Replication slots drflow owns on the primaries: list them, drop orphans.")

SpecOption = Annotated[
    list[Path],
    typer.Option("--spec", help="Spec file; repeat it for every spec whose databases share the cluster."),
]


@slots_app.command("list")
@friendly_errors
def slots_list(
    spec: SpecOption,
    component: Annotated[str | None, typer.Option("--component", help="Only this component's primary.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Every slot on each primary: owner (policy or replica), WAL held back against its limit, orphans."""
    from drflow.engines.postgres.slots import assess_slots, read_slots

    specs = [load_one(path) for path in spec]
    clusters = _clusters(specs, component)
    result: list[dict[str, Any]] = []
    for conn_id, members in clusters.items():
        loaded, chosen = members[0]
        conn = _conn(conn_id, chosen.postgres.database)
        reports = assess_slots(
            read_slots(conn),
            _claims_on(specs, conn_id),
            orphan_limit_bytes=min(c.postgres.slot_retention_limit for _, c in members),
            components=[c.name for _, c in members],
            command=f"drflow slots drop --spec {loaded.path} --component {chosen.name} --slot {{slot}}",
        )
        result.append(
            {
                "primary": conn_id,
                "server": conn.describe(),
                "components": [c.name for _, c in members],
                "slots": [r.to_json() for r in reports],
            }
        )
        if not as_json:
            _print_cluster(conn_id, conn.describe(), [c.name for _, c in members], reports)
    if as_json:
        out.print_json(json.dumps(result))


@slots_app.command("drop")
@friendly_errors
def slots_drop(
    spec: SpecOption,
    component: Annotated[str, typer.Option("--component", help="Component whose primary holds the slot.")],
    slot: Annotated[str, typer.Option("--slot", help="Name of the slot to drop.")],
    force: Annotated[
        bool, typer.Option("--force", help="Drop it even though a current policy or replica of the spec uses it.")
    ] = False,
) -> None:
    """Drop a replication slot drflow owns (an orphan, or with --force one the spec still uses)."""
    from drflow.engines.postgres.slots import assess_slots, drop_slot, read_slots
    from drflow.spec.slots import DRFLOW_PREFIX
    from drflow.units import human_size

    specs = [load_one(path) for path in spec]
    [(conn_id, members)] = _clusters(specs, component).items()
    conn = _conn(conn_id, members[0][1].postgres.database)
    claims = _claims_on(specs, conn_id)
    owned = [c for c in claims if c.slot == slot]
    if owned and not force:
        owners = "; ".join(c.describe() for c in owned)
        raise fail(
            f"replication slot '{slot}' on {conn.describe()} is used by {owners}; nothing was dropped. Dropping it "
            "lets the primary recycle WAL that is not stored yet (a WAL policy then reports a gap and needs a new full "
            "backup; a replica may never catch up). Remove the policy or replica from the spec first, or pass --force"
        )
    if not owned and not slot.startswith(DRFLOW_PREFIX):
        raise fail(
            f"replication slot '{slot}' is not drflow's (its name does not start with {DRFLOW_PREFIX} and no policy "
            "or replica of the spec names it); nothing was dropped. Whoever created it must drop it "
            f"(SELECT pg_drop_replication_slot('{slot}'); on the primary) once nothing needs it"
        )
    found = [r for r in assess_slots(read_slots(conn), claims, orphan_limit_bytes=0) if r.name == slot]
    before = found[0] if found else None
    if before is None or before.state == "missing":
        raise fail(f"there is no replication slot '{slot}' on {conn.describe()}; nothing was dropped")
    drop_slot(conn, slot)
    held = f", which held back {human_size(before.retained_bytes)} of WAL" if before.retained_bytes else ""
    what = f"used by {before.owner}, dropped with --force" if owned else "an orphan"
    out.print(
        f"dropped replication slot '{slot}' ({what}) on {conn.describe()}{held}; the primary recycles that WAL at "
        "its next checkpoint"
        + (". The next run of the WAL policy creates the slot again, from the current WAL position" if owned else ""),
        highlight=False,
        markup=False,
    )


def _clusters(specs: list[Any], component: str | None) -> dict[str, list[tuple[Any, Any]]]:
    """(spec, component) pairs with a datastore, by primary conn_id; only the given component's primary."""
    clusters: dict[str, list[tuple[Any, Any]]] = {}
    for loaded in specs:
        for c in loaded.spec.components:
            if c.postgres is not None:
                clusters.setdefault(c.postgres.primary.conn_id, []).append((loaded, c))
    if component is None:
        return clusters
    for conn_id, members in clusters.items():
        for loaded, c in members:
            if c.name == component:
                # The named component first: its spec and database are the ones to connect with.
                return {conn_id: [(loaded, c), *[m for m in members if m[1] is not c]]}
    known = ", ".join(c.name for _, members in clusters.items() for _, c in members)
    raise fail(f"no component {component!r} with a datastore in the given spec(s); known: {known}")


def _claims_on(specs: list[Any], conn_id: str) -> list[Any]:
    from drflow.spec.slots import spec_claims

    return [claim for loaded in specs for claim in spec_claims(loaded.spec) if claim.conn_id == conn_id]


def _conn(conn_id: str, database: str) -> Any:
    from drflow.cli.methods import _primary_conn

    return _primary_conn(conn_id, database)


def _print_cluster(conn_id: str, server: str, components: list[str], reports: list[Any]) -> None:
    from rich.table import Table  # here, not at start-up: every command would import it

    from drflow.units import human_size

    table = Table(
        "slot",
        "state",
        "owner",
        "active",
        "WAL held",
        "limit",
        "wal_status",
        title=f"primary {conn_id} ({server}): {', '.join(components)}",
    )
    for r in reports:
        table.add_row(
            r.name,
            r.state + (f" ({r.note})" if r.note else ""),
            r.owner or "-",
            "-" if r.active is None else "yes" if r.active else "no",
            "-" if r.retained_bytes is None else human_size(r.retained_bytes),
            "-" if r.limit_bytes is None else human_size(r.limit_bytes),
            r.wal_status or "-",
        )
    out.print(table)
    for r in reports:
        for alert in r.alerts:
            err.print(f"{alert.severity}: {alert.code}: {alert.message}", highlight=False, markup=False)
