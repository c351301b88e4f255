"""The `validate` step of recovery plans: run a validation suite on a node, the restored server, or the network.

On ``node: restored`` the suite compares with what the restored backup recorded at backup time (its
manifest in the store) and may create what a check needs there (the restored copy is drflow's own); on a
node (a promoted replica, the primary) it only reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drflow.operators.failover import FailoverStepOperator
from drflow.spec.plans import ValidateAction

if TYPE_CHECKING:
    from drflow.contracts import PlanFacts
    from drflow.engines.postgres.conninfo import PgConnInfo
    from drflow.jobs.validation import SuiteTarget


def suite_target(
    step: ValidateAction, plan: PlanFacts, conn: PgConnInfo | None, restored: Mapping[str, Any] | None
) -> SuiteTarget:
    """Where the step's suite runs, and what it compares with: ``restored`` is the restore step's XCom result."""
    from drflow.jobs.validation import SuiteTarget
    from drflow.store.factory import target_catalogs

    facts = plan.component(step.component)
    bin_dir = Path(facts.bin_dir) if facts.bin_dir else None
    if step.node != "restored" or restored is None:
        return SuiteTarget(conn=conn, bin_dir=bin_dir, baseline_note=f"the checks run on node {step.node}")
    backup_id, target_name = restored.get("backup_id"), restored.get("target")
    if restored.get("point_in_time"):
        note = f"the copy was restored to {restored['point_in_time']}, not to the end of backup {backup_id}"
        return SuiteTarget(conn=conn, scratch=True, bin_dir=bin_dir, baseline_note=note)
    targets = [t for t in facts.targets if t.get("name") == target_name][:1]
    catalog = target_catalogs(plan.spec, targets)[0][1] if targets else None
    manifest = catalog.get(step.component, str(backup_id)) if catalog is not None and backup_id else None
    return SuiteTarget(
        conn=conn,
        scratch=True,
        bin_dir=bin_dir,
        recorded=manifest.validation_values if manifest else {},
        baseline=manifest.validation_baseline if manifest else None,
        baseline_note=f"backup {backup_id} in {target_name} recorded none",
    )


class ValidateSuiteOperator(FailoverStepOperator):
    """Run the step's suite; fail naming each check that failed and by how much."""

    ui_color = "#abebc6"
    step_model = ValidateAction

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from drflow.jobs.validation import run_suite

        step = self.definition.spec_step(ValidateAction)
        conn = self.target_conn(context, step.node) if step.node else None
        restored = None
        if step.node == "restored" and self.definition.restored_by:
            value = context["ti"].xcom_pull(task_ids=self.definition.restored_by)
            restored = value if isinstance(value, dict) else None
        suite = run_suite(step.suite, suite_target(step, self.facts, conn, restored))
        where = conn.describe() if conn else "the network"
        self.log.info("validation suite of %s on %s: %s", step.name, where, suite.summary())
        if (ti := context.get("ti")) is not None:
            ti.xcom_push(key="suite", value=suite.to_json())  # kept when the step fails, for the review
        if not suite.passed:
            raise AirflowFailException(
                f"validation suite {step.name} on {where}: {suite.summary()}; "
                + "; ".join(suite.problems())
                + ". Find out why before sending traffic to it, or fix the check in the spec"
            )
        return {"step": step.name, "passed": True, "summary": suite.summary(), "checks": suite.to_json()}
