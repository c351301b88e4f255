"""Checks of recovery plans across the spec: step graph, references, approvers, promotion safety.

Like the other reference checks these read the raw YAML values, so a reviewer sees them together with
the model's errors. Called from drflow.spec.check.check_references.
"""

from __future__ import annotations

from typing import Any

from drflow.spec.check_helpers import choices as _choices
from drflow.spec.check_helpers import duplicates as _duplicates
from drflow.spec.check_helpers import items as _items
from drflow.spec.check_helpers import names as _names
from drflow.spec.diagnostics import Diagnostic, quoted
from drflow.spec.source import Loc, Source
from drflow.units import parse_duration

# Task ids drflow adds to every plan DAG.
RESERVED = ("assess", "declare", "record", "status_updates")
DATASTORE_ACTIONS = frozenset({"assess", "gate_lag", "fence", "promote", "rebuild_replica", "restore", "validate_sql"})
NODE_FIELDS = {
    "gate_lag": ("node",),
    "fence": ("node",),
    "promote": ("node", "fence"),
    "rebuild_replica": ("node", "source"),
    "validate_sql": ("node",),
    "validate": ("node",),
}
VALIDATING_ACTIONS = ("validate_sql", "validate")


def check_plans(source: Source) -> list[Diagnostic]:
    data = source.data
    if not isinstance(data, dict):
        return []
    plans = _items(data, "recovery_plans")
    found = _duplicates(source, ("recovery_plans",), plans, "recovery plan")
    world = _World.of(data)
    for index, plan in plans:
        found += _check_plan(source, ("recovery_plans", index), plan, world)
    return found + _check_escalation(source, data, world)


def _check_escalation(source: Source, data: dict[str, Any], world: _World) -> list[Diagnostic]:
    """Escalation levels: unique names, channels that exist, each reached later than the one before."""
    levels = _items(data, "escalation")
    found = _duplicates(source, ("escalation",), levels, "escalation level")
    previous: tuple[str, Any] | None = None
    for index, level in levels:
        who = f"escalation level '{level.get('name')}'"
        found += _channel_refs(source, ("escalation", index, "channels"), level.get("channels"), world, who)
        try:
            after = parse_duration(level.get("after"))
        except (TypeError, ValueError):
            continue  # the model reports a malformed duration
        if previous is not None and after <= previous[1]:
            found.append(
                source.diagnostic(
                    ("escalation", index, "after"),
                    f"{who} is reached after {level.get('after')}, not later than level '{previous[0]}'",
                    "list the levels in the order they are reached, each with a longer 'after' than the one before",
                )
            )
        previous = (str(level.get("name")), after)
    return found


class _World:
    """The names plans may refer to; None where a list is malformed (the model reports that)."""

    def __init__(self) -> None:
        self.components: dict[str, dict[str, Any]] = {}
        self.regions: list[str] | None = []
        self.channels: list[str] | None = []
        self.storage: list[str] | None = []

    @classmethod
    def of(cls, data: dict[str, Any]) -> _World:
        world = cls()
        world.regions = _names(data, "regions")
        world.channels = _names(data, "notifications")
        world.storage = _names(data, "storage")
        for _, component in _items(data, "components"):
            name = component.get("name")
            if not isinstance(name, str):
                continue
            datastore = component.get("datastore")
            replicas = [r.get("name") for _, r in _items(datastore, "replicas")] if isinstance(datastore, dict) else []
            targets = [
                ref
                for _, policy in _items(component, "backups")
                for ref in _list(policy.get("targets"))
                if isinstance(ref, str)
            ]
            written = [policy.get("method") for _, policy in _items(component, "backups")]
            methods = {method for method in written if isinstance(method, str)}
            if any("preset" in policy for _, policy in _items(component, "backups")):
                methods.add("pg_receivewal")  # the database preset archives WAL hourly
            nodes: list[tuple[Any, Any]] = []
            if isinstance(datastore, dict):
                nodes = [("primary", datastore.get("primary"))]
                nodes += [(r.get("name"), r) for _, r in _items(datastore, "replicas")]
            world.components[name] = {
                "replication": [n for n, node in nodes if isinstance(node, dict) and node.get("replication_conn_id")],
                "methods": methods,
                "datastore": isinstance(datastore, dict),
                "nodes": ["primary", *(r for r in replicas if isinstance(r, str))],
                "targets": list(dict.fromkeys(targets)),
            }
        return world


def _check_plan(source: Source, loc: Loc, plan: dict[str, Any], world: _World) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    name = plan.get("name")
    within = f" in plan '{name}'"
    listed = plan.get("components")
    plan_components = [c for c in listed if isinstance(c, str)] if isinstance(listed, list) else []
    for c_index, ref in enumerate(listed if isinstance(listed, list) else []):
        if isinstance(ref, str) and ref not in world.components:
            hint = _choices(ref, list(world.components), "components of the spec", "declare it under 'components:'")
            message = f"plan '{name}' names component '{ref}', which the spec does not declare"
            found.append(source.diagnostic((*loc, "components", c_index), message, hint))
    for key in ("primary_region", "recovery_region"):
        ref = plan.get(key)
        if isinstance(ref, str) and world.regions is not None and ref not in world.regions:
            hint = _choices(ref, world.regions, "declared regions", "declare it under 'regions:'")
            found.append(
                source.diagnostic((*loc, key), f"plan '{name}' uses region '{ref}', which is not declared", hint)
            )
    found += _channel_refs(source, (*loc, "notify"), plan.get("notify"), world, f"plan '{name}'")
    found += _check_approval(source, loc, plan)
    if plan.get("status_every") is not None and not plan.get("notify"):
        found.append(
            source.diagnostic(
                (*loc, "status_every"),
                f"plan '{name}' sends status updates every {plan['status_every']} but has no channel to send them to",
                "list the channels under the plan's 'notify:', or remove 'status_every'",
            )
        )

    steps = _items(plan, "steps")
    found += _duplicates(source, (*loc, "steps"), steps, "step", within)
    names = [str(s["name"]) for _, s in steps if isinstance(s.get("name"), str)]
    reserved = [*RESERVED, *(f"assess-{c}" for c in plan_components)]
    for s_index, step in steps:
        if step.get("name") in reserved:
            message = f"step name '{step.get('name')}' is taken{within}: drflow adds tasks {quoted(RESERVED)} itself"
            found.append(source.diagnostic((*loc, "steps", s_index, "name"), message, "give the step another name"))
    upstream = _upstream(steps)
    for s_index, step in steps:
        step_loc = (*loc, "steps", s_index)
        deps = step.get("depends_on")
        for d_index, dep in enumerate(deps if isinstance(deps, list) else []):
            if not isinstance(dep, str):
                continue
            if dep == step.get("name"):
                message = f"step '{dep}' depends on itself"
                found.append(
                    source.diagnostic((*step_loc, "depends_on", d_index), message, "remove it from depends_on")
                )
            elif dep not in names:
                hint = _choices(
                    dep, [n for n in names if n != step.get("name")], f"steps{within}", "remove it from depends_on"
                )
                message = f"step '{step.get('name')}' depends on step '{dep}', which is not{within}"
                found.append(source.diagnostic((*step_loc, "depends_on", d_index), message, hint))
        found += _check_step(source, step_loc, step, plan_components, world, within, steps, upstream)
    found += _cycles(source, loc, steps, upstream, within)
    return found


def _check_approval(source: Source, loc: Loc, plan: dict[str, Any]) -> list[Diagnostic]:
    approval = plan.get("approval")
    if not isinstance(approval, dict):
        return []
    approvers = approval.get("approvers")
    if (
        isinstance(approvers, list)
        and len(set(map(repr, approvers))) == 1
        and approval.get("four_eyes", True) is not False
    ):
        message = (
            f"plan '{plan.get('name')}' has a single approver, '{approvers[0]}', and four eyes: a run that "
            f"{approvers[0]} triggers can never be declared (nobody else may approve it)"
        )
        hint = "add a second approver, or set four_eyes: false if one person may declare alone"
        return [source.diagnostic((*loc, "approval", "approvers"), message, hint, severity="warning")]
    return []


def _check_step(
    source: Source,
    loc: Loc,
    step: dict[str, Any],
    plan_components: list[str],
    world: _World,
    within: str,
    steps: list[tuple[int, dict[str, Any]]],
    upstream: dict[str, list[str]],
) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    action, name = step.get("action"), step.get("name")
    if action == "notify":
        found += _channel_refs(source, (*loc, "channels"), step.get("channels"), world, f"step '{name}'")
    component = step.get("component")
    if not isinstance(component, str):
        return found
    facts = world.components.get(component)
    if facts is None:
        hint = _choices(component, list(world.components), "components of the spec", "declare it under 'components:'")
        message = f"step '{name}' acts on component '{component}', which the spec does not declare"
        return [*found, source.diagnostic((*loc, "component"), message, hint)]
    if component not in plan_components:
        message = f"step '{name}' acts on component '{component}', which the plan does not list as affected"
        hint = f"add '{component}' to the plan's components (its RTO, tags and assessment come from that list)"
        found.append(source.diagnostic((*loc, "component"), message, hint))
    if isinstance(action, str) and action in DATASTORE_ACTIONS and not facts["datastore"]:
        message = f"step '{name}' ({action}) needs a datastore, but component '{component}' has none"
        hint = f"add a datastore to component '{component}' or act on another component"
        return [*found, source.diagnostic((*loc, "action"), message, hint)]
    for field in NODE_FIELDS.get(str(action), ()):
        ref = step.get(field, "primary" if field in ("node", "fence") and action != "validate" else None)
        if not isinstance(ref, str) or ref in facts["nodes"]:
            continue
        if field == "node" and action in VALIDATING_ACTIONS and ref == "restored":
            if not _restores_before(str(name), component, steps, upstream):
                message = (
                    f"step '{name}' validates the restored database, but no restore of '{component}' runs before it"
                )
                hint = "add a restore step of that component that this step depends on (directly or through others)"
                found.append(source.diagnostic((*loc, field), message, hint))
            continue
        choices = [*facts["nodes"], *(["restored"] if action in VALIDATING_ACTIONS else [])]
        hint = _choices(
            ref, choices, f"nodes of '{component}'", f"declare it under the datastore's 'replicas:' of '{component}'"
        )
        message = f"step '{name}' names node '{ref}' ({field}), which component '{component}' does not have"
        found.append(source.diagnostic((*loc, field), message, hint))
    if action == "restore":
        found += _check_restore(source, loc, step, component, facts, world)
    rebuild_source = step.get("source")
    if action == "rebuild_replica" and rebuild_source in facts["nodes"] and rebuild_source not in facts["replication"]:
        message = (
            f"step '{name}' rebuilds a standby that follows node '{rebuild_source}' of '{component}', which names no "
            "replication_conn_id: the standby would have to stream with drflow's own admin credentials"
        )
        hint = (
            f"set replication_conn_id on node '{rebuild_source}': an Airflow postgres connection to it as a role "
            "WITH LOGIN REPLICATION (not a superuser)"
        )
        found.append(source.diagnostic((*loc, "source"), message, hint))
    if action == "promote" and not _guarded(str(name), component, steps, upstream):
        message = (
            f"step '{name}' promotes a replica of '{component}' with no fence or gate_lag step before it: the "
            "promotion's own checks refuse an unsafe promotion, but the plan offers no way past a still-writable "
            "old primary"
        )
        hint = "add a fence step (and a gate_lag step) of that component before it"
        found.append(source.diagnostic((*loc, "action"), message, hint, severity="warning"))
    return found


def _check_restore(
    source: Source, loc: Loc, step: dict[str, Any], component: str, facts: dict[str, Any], world: _World
) -> list[Diagnostic]:
    found = []
    name = step.get("name")
    if step.get("point_in_time") is True and step.get("before_incident") is True:
        message = f"step '{name}' restores both to a point in time and to before the incident"
        hint = "choose one: point_in_time (the form's target_time) or before_incident (incident_started_at)"
        found.append(source.diagnostic((*loc, "before_incident"), message, hint))
    if step.get("point_in_time") is True and "pg_receivewal" not in facts["methods"]:
        message = (
            f"step '{name}' restores '{component}' to a point in time, which needs WAL archiving, but the "
            "component has no backup policy of method pg_receivewal: the step could never run in an incident"
        )
        hint = "add an incremental pg_receivewal policy (or the 'database' preset) to the component"
        found.append(source.diagnostic((*loc, "point_in_time"), message, hint))
    target = step.get("target")
    if not facts["targets"]:
        message = f"step '{name}' restores '{component}', which has no backup policy to restore from"
        found.append(source.diagnostic((*loc, "component"), message, f"add a backup policy to '{component}'"))
    elif isinstance(target, str) and target not in facts["targets"]:
        hint = f"use one of the storage targets its backups go to: {quoted(facts['targets'])}"
        message = f"step '{name}' restores '{component}' from storage target '{target}', which gets none of its backups"
        found.append(source.diagnostic((*loc, "target"), message, hint))
    return found


def _channel_refs(source: Source, loc: Loc, refs: Any, world: _World, who: str) -> list[Diagnostic]:
    found = []
    for index, ref in enumerate(refs if isinstance(refs, list) else []):
        if isinstance(ref, str) and world.channels is not None and ref not in world.channels:
            hint = _choices(ref, world.channels, "notification channels", "define it under 'notifications:'")
            message = f"{who} notifies channel '{ref}', which is not defined"
            found.append(source.diagnostic((*loc, index), message, hint))
    return found


def _upstream(steps: list[tuple[int, dict[str, Any]]]) -> dict[str, list[str]]:
    """Each step's direct upstream steps: its depends_on, or the previous step (none for the first)."""
    graph: dict[str, list[str]] = {}
    previous: str | None = None
    for _, step in steps:
        name = step.get("name")
        if not isinstance(name, str):
            previous = None
            continue
        deps = step.get("depends_on")
        explicit = [d for d in deps if isinstance(d, str)] if isinstance(deps, list) else []
        graph.setdefault(name, explicit or ([previous] if previous else []))
        previous = name
    return graph


def _ancestors(name: str, upstream: dict[str, list[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(upstream.get(name, []))
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(upstream.get(current, []))
    return seen


def _steps_before(name: str, steps: list[tuple[int, dict[str, Any]]], upstream: dict[str, list[str]]) -> list[dict]:
    before = _ancestors(name, upstream)
    return [step for _, step in steps if isinstance(step.get("name"), str) and step["name"] in before]


def _restores_before(name: str, component: str, steps: list[tuple[int, dict[str, Any]]], upstream: Any) -> bool:
    return any(
        s.get("action") == "restore" and s.get("component") == component for s in _steps_before(name, steps, upstream)
    )


def _guarded(name: str, component: str, steps: list[tuple[int, dict[str, Any]]], upstream: Any) -> bool:
    return any(
        s.get("action") in ("fence", "gate_lag") and s.get("component") == component
        for s in _steps_before(name, steps, upstream)
    )


def _cycles(
    source: Source, loc: Loc, steps: list[tuple[int, dict[str, Any]]], upstream: dict[str, list[str]], within: str
) -> list[Diagnostic]:
    """One error per dependency cycle, at its first step in the file, naming the whole cycle."""
    index_of = {step.get("name"): index for index, step in steps if isinstance(step.get("name"), str)}
    reported: set[frozenset[str]] = set()
    found = []
    for start in index_of:
        cycle = _cycle_from(str(start), upstream)
        # A step that depends on itself has its own message ("depends on itself"): no cycle of one.
        if cycle is None or len(cycle) == 1 or frozenset(cycle) in reported:
            continue
        reported.add(frozenset(cycle))
        first = min(cycle, key=lambda n: index_of.get(n, 0))
        at = cycle.index(first)
        ordered = cycle[at:] + cycle[:at]
        chain = " → ".join([*ordered, ordered[0]])
        message = f"steps{within} depend on each other in a cycle: {chain} (each depends on the next)"
        hint = "remove one of these depends_on entries (a step without depends_on follows the step before it)"
        found.append(source.diagnostic((*loc, "steps", index_of[first], "depends_on"), message, hint, key=True))
    return found


def _cycle_from(start: str, upstream: dict[str, list[str]]) -> list[str] | None:
    """A cycle through `start` following depends_on edges, as [start, dep, dep-of-dep, …], or None."""
    path: list[str] = [start]
    on_path = {start}
    iterators = [iter(upstream.get(start, []))]
    while iterators:
        nxt = next(iterators[-1], None)
        if nxt is None:
            iterators.pop()
            on_path.discard(path.pop())
            continue
        if nxt == start:
            return list(path)
        if nxt in on_path or nxt not in upstream:
            continue
        path.append(nxt)
        on_path.add(nxt)
        iterators.append(iter(upstream.get(nxt, [])))
    return None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
