"""The assessment every recovery-plan run starts with: health, lag, newest backup, what would happen.

It changes nothing. Its Markdown ``summary`` goes into the disaster declaration (the approval), so
the approvers see the state of the component when they decide.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from drflow.engines.postgres.failover import gate_lag
from drflow.engines.postgres.node import NodeLike, as_node, node_health, write_state
from drflow.engines.postgres.refusal import Refused
from drflow.units import human_duration


def assess(
    primary: NodeLike | str,
    replicas: Mapping[str, NodeLike | str],
    rpo_s: float,
    newest_backup: Mapping[str, Any] | None,
    *,
    component: str | None = None,
    plan_steps: Sequence[Mapping[str, Any]] | None = None,
    settle_s: float = 1.0,
) -> dict[str, Any]:
    """Assess a primary and its replicas against the RPO.

    ``newest_backup`` is ``{backup_id, finished_at, target, …}``, ``{"error": …}`` when the store
    could not be read, or None when there is no backup. ``plan_steps`` (``{name, type, action,
    description}`` items) are listed under "what the plan will do". Returns the facts plus a Markdown
    ``summary`` and ``candidates``: replicas that would pass the lag gate now, least lag first.

    A node given as a string is one that cannot even be addressed (its Airflow connection is
    missing, say): the string says why, and the node counts as unreachable.
    """
    checked_at = datetime.now(UTC)
    primary_node = None if isinstance(primary, str) else as_node(primary, "primary")
    if primary_node is None:
        primary_health: dict[str, Any] = {"node": "primary", "server": "?", "reachable": False, "error": primary}
    else:
        primary_health = node_health(primary_node)
        primary_health["write_state"] = write_state(primary_node)["state"]
    rows = []
    for name, conn in replicas.items():
        if isinstance(conn, str):
            health = {"node": name, "server": "?", "reachable": False, "error": conn}
            rows.append(
                _replica_row(
                    name,
                    health,
                    {},
                    Refused(f"replica {name} cannot be addressed: {conn}", "fix its Airflow connection"),
                )
            )
            continue
        replica = as_node(conn, name)
        try:
            gate = gate_lag(primary_node, replica, rpo_s, settle_s=settle_s)
            rows.append(_replica_row(name, gate["replica"], gate, None))
        except Refused as exc:
            health = exc.details.get("replica") or node_health(replica)
            rows.append(_replica_row(name, health, exc.details, exc))
    candidates = sorted((r for r in rows if r["gate"] == "passes"), key=lambda r: (r["lag_s"] or 0.0, r["name"]))
    backup = _backup_facts(newest_backup, checked_at)
    result = {
        "component": component,
        "checked_at": checked_at.isoformat(),
        "rpo_s": rpo_s,
        "primary": primary_health,
        "replicas": rows,
        "candidates": [r["name"] for r in candidates],
        "newest_backup": backup,
        "plan_steps": [dict(s) for s in plan_steps or []],
    }
    result["summary"] = summary_markdown(result)
    return result


def without_datastore(component: str, newest_backup: Mapping[str, Any] | None) -> dict[str, Any]:
    """The assessment of a component with no database nodes: only its newest backup."""
    checked_at = datetime.now(UTC)
    backup = _backup_facts(newest_backup, checked_at)
    summary = (
        f"### Assessment of `{component}` ({checked_at.isoformat()[:19]}Z)\n\n"
        "No database nodes in the spec: no health or lag to check.\n\n"
        f"**Newest backup**: {_backup_text(backup)}"
    )
    return {
        "component": component,
        "checked_at": checked_at.isoformat(),
        "primary": None,
        "replicas": [],
        "candidates": [],
        "newest_backup": backup,
        "summary": summary,
    }


def _replica_row(
    name: str, health: Mapping[str, Any], gate: Mapping[str, Any], refusal: Refused | None
) -> dict[str, Any]:
    return {
        "name": name,
        "health": dict(health),
        "lag_s": gate.get("lag_s"),
        "lag_bytes": gate.get("lag_bytes"),
        "lag_method": gate.get("method"),
        "lag_upper_bound": gate.get("upper_bound"),
        "gate": "passes" if refusal is None else "refused",
        "refusal": None if refusal is None else refusal.why,
        "unblock": None if refusal is None else refusal.unblock,
    }


def _backup_facts(backup: Mapping[str, Any] | None, now: datetime) -> dict[str, Any] | None:
    if backup is None or "error" in backup:
        return None if backup is None else dict(backup)
    facts = dict(backup)
    finished = facts.get("finished_at")
    if finished and "age_s" not in facts:
        when = datetime.fromisoformat(str(finished))
        facts["age_s"] = round((now - when).total_seconds(), 1)
    return facts


def summary_markdown(result: Mapping[str, Any]) -> str:
    """The assessment as Markdown, for the approval body and the task log."""
    title = f"### Assessment of `{result['component']}`" if result.get("component") else "### Assessment"
    lines = [f"{title} ({result['checked_at'][:19]}Z, RPO {human_duration(float(result['rpo_s']))})", ""]
    lines.append(f"**Primary**: {_primary_text(result['primary'])}")
    lines += ["", "| Replica | State | Lag | Lag gate |", "|---|---|---|---|"]
    for row in result["replicas"]:
        gate = "passes" if row["gate"] == "passes" else f"**refused**: {row['refusal']}"
        lines.append(f"| `{row['name']}` | {_replica_state(row['health'])} | {_lag_text(row)} | {gate} |")
    if not result["replicas"]:
        lines.append("| (none) | | | |")
    lines += ["", f"**Newest backup**: {_backup_text(result['newest_backup'])}", ""]
    lines.append("**What the plan will do**:")
    if result["candidates"]:
        best = next(r for r in result["replicas"] if r["name"] == result["candidates"][0])
        lines.append(
            f"- a promotion now would pass the lag gate on `{best['name']}` ({_lag_text(best)}); "
            "the split-brain guard still requires the old primary to be fenced first"
        )
    else:
        refusals = [f"`{r['name']}`: {r['unblock']}" for r in result["replicas"] if r["unblock"]]
        lines.append(
            "- **no replica passes the lag gate now**: a promotion step would be refused"
            + (" — to proceed, " + "; ".join(refusals) if refusals else "")
        )
    for index, step in enumerate(result.get("plan_steps") or [], start=1):
        what = step.get("action") or step.get("type") or ""
        about = f": {step['description']}" if step.get("description") else ""
        lines.append(f"{index}. `{step.get('name')}` ({what}){about}")
    return "\n".join(lines)


def _primary_text(health: Mapping[str, Any]) -> str:
    where = f"`{health['node']}` ({health['server']})"
    if not health["reachable"]:
        return f"{where} **unreachable**: {health.get('error')}"
    if health["in_recovery"]:
        return f"{where} is **in recovery** (a standby, not a primary); timeline {health['timeline']}"
    writes = {"writable": "accepts writes", "read-only": "**read-only** (fenced?)"}.get(
        str(health.get("write_state")), str(health.get("write_state"))
    )
    return (
        f"{where} reachable, {writes}, PostgreSQL {health['version']}, timeline {health['timeline']}, "
        f"WAL at {health['current_lsn']}"
    )


def _replica_state(health: Mapping[str, Any]) -> str:
    if not health.get("reachable"):
        return f"unreachable ({health.get('error')})"
    if not health.get("in_recovery"):
        return "**not in recovery** (a primary)"
    pause = health.get("replay_pause_state")
    replay = "replay **paused**" if pause in ("paused", "pause requested") else "replaying"
    return f"{health.get('wal_receiver') or 'not streaming'}, {replay}, timeline {health.get('timeline')}"


def _lag_text(row: Mapping[str, Any]) -> str:
    lag = row.get("lag_s")
    if lag is None:
        return "unknown"
    text = ("≤ " if row.get("lag_upper_bound") else "") + human_duration(float(lag))
    if row.get("lag_bytes"):
        text += f" ({row['lag_bytes']} bytes)"
    return text


def _backup_text(backup: Mapping[str, Any] | None) -> str:
    if backup is None:
        return "none in the store: a restore step would have nothing to restore"
    if "error" in backup:
        return f"could not read the store ({backup['error']})"
    age = f", {human_duration(float(backup['age_s']))} ago" if backup.get("age_s") is not None else ""
    where = f" in `{backup['target']}`" if backup.get("target") else ""
    return f"`{backup.get('backup_id')}` finished {backup.get('finished_at')}{age}{where}"
