"""Traffic steps of recovery plans: switch a Route53 record, call an HTTP endpoint, check a health URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from drflow.operators.step_base import PlanStepOperator
from drflow.spec.plans import HttpCallAction, SwitchDnsAction, ValidateHttpAction

DEFAULT_HTTP_TIMEOUT_S = 30.0


@contextmanager
def _refusals_fail() -> Iterator[None]:
    """A refusal fails the task at once; any other error is raised as is, so Airflow's retries apply."""
    from airflow.sdk.exceptions import AirflowFailException

    from drflow.actions.traffic import TrafficError

    try:
        yield
    except TrafficError as exc:
        if exc.refused:
            raise AirflowFailException(str(exc)) from exc
        raise


class SwitchDnsOperator(PlanStepOperator):
    """UPSERT a Route53 record to the recovery side's value; returns the old and new values."""

    ui_color = "#aed6f1"
    step_model = SwitchDnsAction

    def execute(self, context: Any) -> dict[str, Any]:
        from drflow.actions.traffic import switch_dns

        s = self.definition.spec_step(SwitchDnsAction)
        with _refusals_fail():
            result = switch_dns(s.conn_id, s.hosted_zone_id, s.record_name, s.record_type, s.value, s.ttl)
        if result["changed"]:
            self.log.info(
                "%s %s switched from %s to %s (change %s, %s after %.1fs)",
                result["record_name"],
                result["record_type"],
                result["old_values"],
                result["new_values"],
                result["change_id"],
                result["status"],
                result["switch_s"],
            )
        else:
            self.log.info("%s already points at %s; nothing changed", result["record_name"], result["new_values"])
        return {"step": s.name, **result}


class HttpCallOperator(PlanStepOperator):
    """Call an HTTP endpoint (a load balancer's API, say) and check the status is one the step expects."""

    ui_color = "#aed6f1"
    step_model = HttpCallAction

    def execute(self, context: Any) -> dict[str, Any]:
        from drflow.actions.traffic import http_call

        s = self.definition.spec_step(HttpCallAction)
        with _refusals_fail():
            result = http_call(
                s.conn_id,
                s.method,
                s.endpoint,
                json_body=s.json_body,
                expect_status=list(s.expect_status or (200, 201, 202, 204)),
                timeout_s=self.step_timeout_s() or DEFAULT_HTTP_TIMEOUT_S,
            )
        self.log.info("%s %s answered %d in %.2fs", result.method, result.url, result.status, result.elapsed_s)
        return {"step": s.name, **result.to_json()}


class ValidateHttpOperator(PlanStepOperator):
    """GET a health endpoint; passes when it answers with the expected status."""

    ui_color = "#abebc6"
    step_model = ValidateHttpAction

    def execute(self, context: Any) -> dict[str, Any]:
        from drflow.actions.traffic import check_http

        s = self.definition.spec_step(ValidateHttpAction)
        with _refusals_fail():
            result = check_http(
                s.conn_id,
                s.endpoint,
                expect_status=s.expect_status,
                timeout_s=self.step_timeout_s() or DEFAULT_HTTP_TIMEOUT_S,
            )
        self.log.info("health check %s answered %d as expected", result.url, result.status)
        return {"step": s.name, "passed": True, **result.to_json()}
