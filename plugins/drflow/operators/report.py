"""The RPO-compliance operator: measure, write the report to the store, fail when out of compliance."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import BaseOperator


class RpoComplianceOperator(BaseOperator):
    ui_color = "#e8daef"

    def __init__(
        self,
        *,
        spec_name: str,
        components: Sequence[Mapping[str, Any]],
        target: Mapping[str, Any],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.spec_name = spec_name
        self.components = [dict(c) for c in components]
        self.target = dict(target)

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from drflow.jobs.rpo import rpo_compliance
        from drflow.store.factory import target_catalogs

        now = datetime.now(UTC)
        report = rpo_compliance(self.spec_name, self.components, now)
        [(_, catalog)] = target_catalogs(self.spec_name, [self.target])
        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        for result in report["components"]:
            catalog.write_report(
                result["component"], "rpo-compliance", stamp, {**result, "checked_at": now.isoformat()}
            )
            best = result["achievable_rpo_s"]
            self.log.info(
                "%s: achievable RPO %s (from %s) against %ss -> %s",
                result["component"],
                f"{best:.0f}s" if best is not None else "none",
                result["best_source"],
                result["rpo_s"],
                "compliant" if result["compliant"] else "OUT OF COMPLIANCE",
            )
            for line in result["problems"] + result["notes"]:
                self.log.warning("%s: %s", result["component"], line)
        failing = [r for r in report["components"] if not r["compliant"]]
        if failing:
            raise AirflowFailException(
                "out of RPO compliance: "
                + "; ".join(
                    f"{r['component']} (RPO {r['rpo_s']}s, achievable "
                    + (f"{r['achievable_rpo_s']:.0f}s" if r["achievable_rpo_s"] is not None else "nothing")
                    + (f": {r['problems'][0]}" if r["problems"] else "")
                    + ")"
                    for r in failing
                )
                + ". Check the replicas and the backup and WAL DAGs of these components."
            )
        return report
