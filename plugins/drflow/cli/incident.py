"""`drflow incident-report`: the post-incident report of one plan run, from its recovery record and Airflow's API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from drflow.cli.common import err, fail, load_one, out

RECOVERY_REPORTS = "recovery"
PLAN_TAG = "kind:recovery-plan"


def incident_report(run_id: str, spec_path: Path | None, plan_name: str | None, fmt: str, output: Path | None) -> None:
    from drflow.audit.incident import FORMATS, render_incident

    if fmt not in FORMATS:
        raise fail(f"--format {fmt} is not known; use one of {', '.join(FORMATS)}")
    spec = load_one(spec_path).spec if spec_path is not None else None
    plans = list(spec.recovery_plans) if spec is not None else []
    if plan_name is not None:
        plans = [p for p in plans if p.name == plan_name]
        if spec is not None and not plans:
            known = ", ".join(p.name for p in spec.recovery_plans) or "none"
            raise fail(f"spec {spec_path} has no recovery plan {plan_name!r} (its plans: {known})")
    sources: list[str] = []
    stored, stored_where, unreadable = None, None, False
    if spec is not None:
        from drflow.store.base import StoreError

        try:
            stored, stored_where = _stored_record(spec, plans, run_id)
        except StoreError as exc:  # the region that holds the record may be the one that failed: ask Airflow
            err.print(f"note: the recovery record could not be read from the store: {exc}", markup=False)
            unreadable = True
    if stored is not None:
        sources.append(f"the recovery record at {stored_where}")
    live, live_note = _live_record(spec, plans, plan_name, run_id)
    if live is not None:
        sources.append("Airflow's REST API, read now")
    elif live_note:
        err.print(f"note: {live_note}", markup=False, highlight=False)
    record = _merge(stored, live)
    if record is None:
        where = f"in the store of {spec_path}" if spec_path else "(no --spec: the store was not searched)"
        if unreadable:
            where = f"(the store of {spec_path} could not be read, see above)"
        raise fail(
            f"no recovery record of run {run_id!r} {where}, and Airflow's API could not tell ({live_note}); give "
            "--spec (and --plan) of the plan that ran, and export the audit connection "
            "(AIRFLOW_CONN_DRFLOW_AIRFLOW_API)"
        )
    text = render_incident(record, fmt, sources=sources)
    if output is None:
        out.print(text, markup=False, highlight=False, soft_wrap=True, end="")
    else:
        output.write_text(text)
        out.print(f"wrote the report of run {run_id} to {output}", markup=False, highlight=False)


def _stored_record(spec: Any, plans: list[Any], run_id: str) -> tuple[dict[str, Any] | None, str | None]:
    """The record the run's `record` task wrote: the first component with a target, its first target."""
    from drflow.plan.recovery import plan_facts
    from drflow.store.factory import target_catalogs

    for plan in plans:
        facts = plan_facts(spec, plan)
        for component, component_facts in facts.components.items():
            if not component_facts.targets:
                continue
            [(name, catalog)] = target_catalogs(facts.spec, component_facts.targets[:1])
            for report in catalog.read_reports(component, RECOVERY_REPORTS):
                if report.get("run_id") == run_id:
                    return report, f"storage target {name} ({facts.spec}/{component}/reports/{RECOVERY_REPORTS}/)"
            break
    return None, None


def _live_record(
    spec: Any, plans: list[Any], plan_name: str | None, run_id: str
) -> tuple[dict[str, Any] | None, str | None]:
    """The record built afresh from Airflow's REST API, or None and why not."""
    from drflow.audit.api import DEFAULT_CONN_ID, AirflowApi, ApiNotFoundError, AuditError, get_all
    from drflow.audit.gather import gather_run
    from drflow.audit.record import build_record
    from drflow.connections import get_connection

    conn_id = (spec.defaults.audit_conn_id if spec is not None else None) or DEFAULT_CONN_ID
    try:
        api = AirflowApi.from_fields(conn_id, get_connection(conn_id))
        if spec is not None:
            candidates = [(f"dr.{spec.metadata.name}.plan.{p.name}", p) for p in plans]
        else:
            dags = get_all(api, "/api/v2/dags", "dags", {"tags": PLAN_TAG})
            names = [d["dag_id"] for d in dags if plan_name is None or d["dag_id"].endswith(f".plan.{plan_name}")]
            candidates = [(dag_id, None) for dag_id in names]
        for dag_id, plan in candidates:
            try:
                facts = gather_run(api, dag_id, run_id)
            except ApiNotFoundError:
                continue
            params, meta = _plan_params(spec, plan, dag_id)
            return build_record(params, facts, steps_meta=meta), None
        return None, f"Airflow has no run {run_id!r} of {', '.join(d for d, _ in candidates) or 'any recovery plan'}"
    except (AuditError, LookupError) as exc:
        return None, f"Airflow's API was not read: {exc}"


def _plan_params(spec: Any, plan: Any, dag_id: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The plan facts and each step's type/action/verification, from the spec when given."""
    if spec is None or plan is None:
        _, spec_name, _, plan_name = dag_id.split(".", 3)
        return {"spec": spec_name, "plan": plan_name}, {}
    from drflow.plan.recovery import plan_facts, plan_graph
    from drflow.plan.runbook import steps_meta

    meta = steps_meta(plan_graph(spec, plan, "spec"))
    return plan_facts(spec, plan).to_params(), meta


def _merge(stored: dict[str, Any] | None, live: dict[str, Any] | None) -> dict[str, Any] | None:
    """Airflow's current view of the run, with what only the record task saw (step results, overrides,
    notifications that failed, the data lost) kept from the stored record."""
    if live is None or stored is None:
        return live or stored
    merged = dict(live)
    for key in ("override", "notification_failures", "data_loss", "report_key"):
        if stored.get(key) is not None:
            merged[key] = stored[key]
    merged["problems"] = list(dict.fromkeys([*live.get("problems", []), *stored.get("problems", [])]))
    return merged
