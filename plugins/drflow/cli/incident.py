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
    stored: dict[str, Any] | None = None
    stored_where: str | None = None
    down: dict[str, str] = {}
    if spec is not None:
        stored, stored_where, down = _stored_record(spec, plans, run_id)
        for name, why in down.items():  # the failed region's bucket: the record is in the others, or ask Airflow
            err.print(f"note: the recovery record could not be read from storage target {name}: {why}", markup=False)
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
        if down:
            where = f"in the store of {spec_path} (storage target(s) {', '.join(down)} could not be read, see above)"
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


def _stored_record(
    spec: Any, plans: list[Any], run_id: str
) -> tuple[dict[str, Any] | None, str | None, dict[str, str]]:
    """The record the run's `record` task wrote (a copy under each affected component in every target of
    them): the first copy found, where it is, and the targets that could not be read (each on its own)."""
    from drflow.plan.recovery import plan_facts
    from drflow.store.base import StoreError
    from drflow.store.catalog import Catalog
    from drflow.store.factory import open_store
    from drflow.store.report_copies import distinct_targets, target_label

    down: dict[str, str] = {}
    for plan in plans:
        facts = plan_facts(spec, plan)
        for target in distinct_targets([t for c in facts.components.values() for t in c.targets]):
            name = target_label(target)
            if name in down:
                continue
            try:
                catalog = Catalog(open_store(target), facts.spec)
                for component in facts.components:
                    for report in catalog.read_reports(component, RECOVERY_REPORTS):
                        if report.get("run_id") == run_id and report.get("plan", plan.name) == plan.name:
                            where = f"storage target {name} ({facts.spec}/{component}/reports/{RECOVERY_REPORTS}/)"
                            return report, where, down
            except StoreError as exc:
                down[name] = str(exc)
    return None, None, down


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
